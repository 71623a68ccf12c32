"""The one reader of weight and pickle files: every ``torch.load``, safetensors read and ``np.load`` of the project.

:func:`read_file` is the entry point. It takes a local path, an ``http(s)://`` URL (downloaded once into the cache
of :mod:`mixcore.weights.download`, then read like a local file) or a file object (bytes from a storage backend),
and reads by the file's kind:

* ``.safetensors`` — safetensors (no pickled code at all): a flat dict of tensors;
* ``.npy`` — ``np.load(allow_pickle=False)``, optionally memory-mapped;
* anything else — ``torch.load(weights_only=True)`` with the allow-list of :mod:`mixcore.weights.safe_globals`
  (the mmengine/numpy types of our and OpenMMLab checkpoints): a file carrying code is refused, never loaded.

Every failure is a :class:`~mixcore.weights.errors.CheckpointError` naming the file (and the URL it came from) and
what is wrong with it; torch's advice to switch safe loading off is never repeated. :func:`read_header` reads a
safetensors header alone; :func:`mixcore.weights.state_dict.read_weights` turns any supported file into
``(state_dict, meta)``.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Mapping

import torch

from .errors import CheckpointError, WeightFileNotFoundError



def read_file(source, map_location='cpu', *, name: str | None = None, mmap: bool = False):
    """The content of the weight or pickle file ``source`` (see the module doc), read safely.

    ``name``: how errors call the file (default: its path; for a file object, give one). ``mmap``: memory-map
    the file where its format allows (a zip-format ``torch.save`` file, ``.npy``), else read it whole.
    """
    from .download import is_url, redact
    if is_url(source):
        return read_url(source, map_location, mmap=mmap)
    if not isinstance(source, (str, os.PathLike)):  # a file object
        return _torch_load(source, map_location, name or repr(source))
    if '://' in str(source):
        raise CheckpointError(f'{redact(source)}: only local files and http(s):// URLs are read as weights')
    path = Path(source).expanduser()
    name = name or str(path)
    if not path.is_file():
        raise WeightFileNotFoundError(f'{name}: weight file not found')
    if path.suffix == '.safetensors':
        return _read_safetensors(path, name, map_location)
    if path.suffix == '.npy':
        return _read_npy(path, name, mmap)
    if mmap:
        try:
            return _torch_load(path, map_location, name, mmap=True)
        except CheckpointError:
            pass  # (mmap needs the zip format: a legacy file is read whole)
    return _torch_load(path, map_location, name)


def read_url(url: str, map_location='cpu', *, mmap: bool = False, **download_args):
    """The file at ``url`` (http(s)), read from its cached download (:func:`mixcore.weights.download.download`,
    which takes ``download_args``) like a local file; errors name the URL and the cache folder to delete."""
    from .download import redact
    return read_download(url, lambda cached: read_file(cached, map_location, mmap=mmap,
                                                        name=f'{cached} (from {redact(url)})'), **download_args)


def read_header(path) -> dict[str, str]:
    """The metadata of the safetensors file ``path`` (its header's ``__metadata__``; no tensor is read)."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework='pt', device='cpu') as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f'{path}: not a readable safetensors file ({e})') from e


def read_download(url: str, read, **download_args):
    """``read(cached copy of url)``; an unreadable file's error says which cache folder to delete."""
    from .download import download, redact
    cached = download(url, **download_args)
    try:
        return read(cached)
    except CheckpointError as e:
        raise CheckpointError(f'{e}\n  (the cached download of {redact(url)}: if it is damaged or not what the URL '
                              f'serves now, delete {cached.parent} to download it again)') from e


def _read_safetensors(path: Path, name: str, map_location) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(str(path), device='cpu')
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f'{name}: not a readable safetensors file ({e})') from e
    if isinstance(map_location, (str, torch.device)) and str(map_location) != 'cpu':
        state = {k: v.to(map_location) for k, v in state.items()}
    return state


def _read_npy(path: Path, name: str, mmap: bool):
    import numpy as np
    try:
        return np.load(path, mmap_mode='r' if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{name}: not a readable .npy array without pickles ({type(e).__name__}: {e})') from e


def _torch_load(file, map_location, name: str, mmap: bool = False):
    """``torch.load(file, weights_only=True)`` under the allow-list; any failure a :class:`CheckpointError`."""
    from .safe_globals import safe_globals
    # (only what is not allowed already: leaving the context takes its globals out of torch's list again)
    installed = torch.serialization.get_safe_globals()
    missing = [g for g in safe_globals() if g not in installed]
    try:
        with torch.serialization.safe_globals(missing):
            return torch.load(file, map_location=map_location, weights_only=True, **({'mmap': True} if mmap else {}))
    except Exception as e:
        raise CheckpointError(f'{name}: cannot be loaded safely: {_refusal_reason(e)}; nothing was loaded. '
                              f'Only tensors and the types mmengine stores are accepted: re-export the weights '
                              f'from their source with torch.save(state_dict) or as .safetensors') from e


def _refusal_reason(error: Exception) -> str:
    """What torch's error says about the file, without its advice to switch safe loading off."""
    text = str(error)
    if isinstance(error, pickle.UnpicklingError):
        m = re.search(r'GLOBAL ([\w.]+)', text)
        if m and m.group(1) == 'torch.storage._load_from_bytes':
            return ('refused by torch.load(weights_only=True): it is a plain pickle (pickle.dump) holding tensors, '
                    'not a torch.save file (its tensors would be unpickled without restriction)')
        if m:
            return (f'refused by torch.load(weights_only=True): it refers to the global {m.group(1)} (code or an '
                    f'object that is not plain data; Unsupported global: GLOBAL {m.group(1)})')
        m = re.search(r'Unsupported operand (\d+)', text)
        if m:
            return (f'refused by torch.load(weights_only=True): it is a plain or legacy pickle, not a torch.save '
                    f'file (pickle opcode {m.group(1)} is not allowed)')
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _is_torch_advice(ln)]
        return 'refused by torch.load(weights_only=True)' + (f': {lines[0]}' if lines else '')
    if 'Invalid magic number' in text:
        return 'not a torch.save file (invalid magic number: a plain pickle, or a corrupt file)'
    if isinstance(error, (KeyError, EOFError)) or 'zip archive' in text or 'central directory' in text:
        return f'not a complete torch.save file (truncated or of another format: {type(error).__name__}: {text})'
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _is_torch_advice(ln)]
    return f'{type(error).__name__}: {lines[0] if lines else text}'


def _is_torch_advice(line: str) -> bool:
    low = line.lower()
    return ('weights_only' in low and ('false' in low or 're-running' in low)) or 'add_safe_globals' in low \
        or 'safe_globals(' in low or 'trust the source' in low or 'weights only load failed' in low

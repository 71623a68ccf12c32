"""The backbone file: the one contract between stage 1 (pretraining) and stage 2 (transfer).

A backbone file is a ``.safetensors`` file holding the backbone weights (no classifier head) in the timm
model's key layout (our PVT v1 keeps the original PVT layout), with header metadata::

    format=mixseg-backbone, format_version, arch, img_size, patch_size, method, epochs, top1,
    source_config, mixseg_version

Safetensors holds no pickled code, so reading a backbone file can never execute anything. Stage 2 also
accepts official timm/DeiT/PVT ``.pth`` files and mmengine checkpoints (``state_dict`` with a ``backbone.``
prefix); those are read with ``torch.load(weights_only=True)``.

Everything that reads or writes weights goes through this module, so the rules (safe loading, atomic
writes, strict matching with a precise error) hold in one place.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from .safe_load import CheckpointError, torch_load_safely  # noqa: F401  (part of this module's API)

FORMAT = 'mixseg-backbone'
FORMAT_VERSION = 1
META_KEYS = ('arch', 'img_size', 'patch_size', 'method', 'epochs', 'top1', 'source_config')

# Keys under which known checkpoint formats nest the weights, in the order they are tried.
# timm/DeiT release files: 'model' (DeiT), 'state_dict' (timm train script), 'state_dict_ema';
# mmengine: 'state_dict'. PVT release files are flat.
_NESTED_KEYS = ('state_dict', 'model', 'module', 'state_dict_ema', 'model_ema')
# Prefixes stripped from foreign keys: mmengine/mmseg/mmdet wrap the backbone as 'backbone.',
# DDP adds 'module.'; our stage-1 MixClassifier stores the timm model under 'model.'.
_PREFIXES = ('module.', 'backbone.', 'model.')


class CheckpointMismatchError(CheckpointError):
    """A weight file whose keys/shapes do not match the model it is loaded into."""

    def __init__(self, source, missing, unexpected, mismatched, model_name=''):
        self.source, self.missing, self.unexpected, self.mismatched = source, missing, unexpected, mismatched
        lines = [f'{source}: weights do not fit {model_name or "the model"}']
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {_short(missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {_short(unexpected)}')
        for key, got, want in mismatched:
            lines.append(f'  shape mismatch: {key}: file {tuple(got)} vs model {tuple(want)}')
        lines.append('  (is the file from another architecture or embedding size? nothing was loaded)')
        super().__init__('\n'.join(lines))


def _short(keys, n=12):
    keys = list(keys)
    return ', '.join(keys[:n]) + (f', ... (+{len(keys) - n} more)' if len(keys) > n else '')


@dataclass
class BackboneFile:
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str | None:
        return self.meta.get('arch')


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``.

    The temporary file lives in the destination folder (rename is atomic only within one file system);
    a killed or failing write leaves the previous ``path`` untouched and removes its temporary file. The
    file gets the permissions ``open()`` would give it (``0666 & ~umask``), also when ``write`` creates the
    file itself (the safetensors writer does, with mode 0600). A full disk is reported as
    :class:`DiskFullError` naming ``path`` (torch's own message is "unexpected pos ...").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.part', dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask)  # after `write`: a writer may have replaced the file (mkstemp: 0600)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if is_disk_full(e):
            raise DiskFullError(path, e) from e
        raise
    return path


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that failed for lack of space: ``OSError(ENOSPC)`` (or a quota,
    ``EDQUOT``), or torch's zip writer's ``RuntimeError`` ("unexpected pos", "file write failed"), which
    carries no errno."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, RuntimeError):
        text = str(error)
        return any(s in text for s in ('unexpected pos', 'file write failed', 'No space left on device'))
    return False


class DiskFullError(OSError):
    """A file could not be written because its disk (or quota) is full; the previous file is intact."""

    def __init__(self, path, cause: BaseException | None = None):
        import shutil
        path = Path(path)
        try:
            free = f'{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free'
        except OSError:
            free = 'free space unknown'
        why = f'{type(cause).__name__}: {str(cause).strip().splitlines()[0]}' if cause is not None and str(cause) \
            else ''
        super().__init__(errno.ENOSPC, f'{path}: not written: the disk is full (no space left on device in '
                                       f'{path.parent}, {free}). The previous {path.name}, if any, is intact; '
                                       f'free some space and continue with --resume' + (f' [{why}]' if why else ''),
                         str(path))

    def __str__(self):
        return self.strerror

def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    return atomic_write(path, write)


def save_backbone_file(path, state_dict: Mapping[str, torch.Tensor], *, arch: str, img_size, patch_size,
                       method: str | None = None, epochs: int | None = None, top1: float | None = None,
                       source_config: str | None = None, **extra) -> Path:
    """Write a backbone file atomically. Values of the metadata are stored JSON-encoded."""
    from safetensors.torch import save_file

    from . import __version__
    tensors = {k: v.detach().to('cpu').contiguous() for k, v in state_dict.items()}
    if not tensors:
        raise CheckpointError(f'{path}: refusing to write a backbone file without weights')
    meta = dict(format=FORMAT, format_version=FORMAT_VERSION, arch=arch, img_size=img_size,
                patch_size=patch_size, method=method, epochs=epochs, top1=top1,
                source_config=source_config, mixseg_version=__version__, **extra)
    header = {k: json.dumps(v) for k, v in meta.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def load_backbone_file(path) -> BackboneFile:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: backbone file not found')
    try:
        with safe_open(str(path), framework='pt', device='cpu') as f:
            header = f.metadata() or {}
            state_dict = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f'{path}: not a readable safetensors file ({e})') from e
    return BackboneFile(state_dict, _parse_meta(header, path))


def _decode_header(header: dict) -> dict:
    """safetensors header strings → values (JSON where they are JSON)."""
    meta = {}
    for k, v in header.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v
    return meta


#: ``format`` of plain safetensors weights (Hugging Face's convention, e.g. timm's hub files): no metadata of ours
PLAIN_FORMATS = (None, 'pt')

#: ``timm.create_model`` keyword arguments a backbone file's ``model_kwargs`` may carry: the network's shape only
#: (no file, URL or pretrained switch: ``checkpoint_path``/``pretrained_cfg`` would make timm read another file).
#: Each maps to its check: 'int' (1..MAX_INT_KWARG), 'ints' (an int or list of them), 'num' (finite, 0..1e3),
#: 'nums', 'bool', or a tuple of the allowed strings.
MODEL_KWARGS = dict(
    patch_size='ints', embed_dim='ints', embed_dims='ints', depth='int', depths='ints', num_heads='ints',
    window_size='ints', sr_ratios='ints', mlp_ratio='num', mlp_ratios='nums', init_values='num', eta='num',
    qkv_bias='bool', class_token='bool', no_embed_class='bool', fc_norm='bool', dynamic_img_size='bool',
    dynamic_img_pad='bool', linear='bool', reg_tokens='int0', in_chans='int', num_stages='int', img_size='size',
    depth_token_only='int', global_pool=('', 'token', 'avg', 'max', 'avgmax', 'map'), pos_embed=('learn', 'none', ''))
MAX_INT_KWARG = 8192
#: largest image side a backbone file may name (timm allocates the position embedding for it at once)
MAX_IMG_SIZE = 4096


def _parse_meta(header: dict, path) -> dict:
    meta = _decode_header(header)
    if meta.get('format') not in (*PLAIN_FORMATS, FORMAT):
        raise CheckpointError(f'{path}: format {meta.get("format")!r} is not {FORMAT!r} (a backbone file of this '
                              f'project) nor plain safetensors weights: refused; export the weights again with '
                              f'tools/export_backbone.py, or save them as plain safetensors')
    check_meta(meta, path)
    return meta


def check_meta(meta: Mapping, path, *, what: str = 'metadata ',
               advice: str = 'was it written by tools/export_backbone.py / a mixseg run? re-export it') -> None:
    """Refuse backbone-file metadata whose types or ranges are wrong before anything is built from it (timm would
    allocate a 60000-pixel position embedding, or read a file ``model_kwargs`` names); errors name file and key.
    (The same check guards a stored config's backbone arguments: ``what``/``advice`` word the message.)"""
    def bad(key, why):
        raise CheckpointError(f'{path}: {what}{key} = {meta_value(key)!r}: {why}; the file is refused ({advice})')

    def meta_value(key):
        node = meta
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    version = meta.get('format_version')
    if meta.get('format') == FORMAT and not (isinstance(version, int) and 1 <= version <= FORMAT_VERSION):
        bad('format_version', f'this mixseg reads format_version 1..{FORMAT_VERSION} (a newer mixseg wrote it?)')
    arch = meta.get('arch')
    if arch is not None and not (isinstance(arch, str) and _is_name(arch)):
        bad('arch', 'not a model name (a string of letters, digits, "_", "-", ".")')
    for key in ('img_size', 'patch_size'):
        if meta.get(key) is not None and _check_value('size', meta[key]) is not None:
            bad(key, _check_value('size', meta[key]))
    for key in ('epochs', 'iters', 'stage', 'num_classes'):
        v = meta.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**9):
            bad(key, 'not a count (an integer >= 0)')
    top1 = meta.get('top1')
    if top1 is not None and not (_is_number(top1) and 0 <= top1 <= 100):
        bad('top1', 'not an accuracy in 0..100')
    for key in ('method', 'source_config', 'task', 'finetuned_from', 'mixseg_version'):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(key, 'not a string')
    kwargs = meta.get('model_kwargs')
    if kwargs is None:
        return
    if not isinstance(kwargs, Mapping):
        bad('model_kwargs', 'not a mapping of timm.create_model arguments')
    for key, value in kwargs.items():
        if key not in MODEL_KWARGS:
            bad(f'model_kwargs.{key}', f'not an argument a backbone file may give timm.create_model (allowed: '
                                      f'{", ".join(sorted(MODEL_KWARGS))})')
        why = _check_value(MODEL_KWARGS[key], value)
        if why:
            bad(f'model_kwargs.{key}', why)


def _is_name(text: str) -> bool:
    import re
    return bool(re.fullmatch(r'[A-Za-z0-9_.\-]{1,200}', text))


def _is_number(v) -> bool:
    import math
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(kind, v):
    """Why ``v`` is not of ``kind`` (see :data:`MODEL_KWARGS`), or ``None``."""
    def is_int(x, low=1, high=MAX_INT_KWARG):
        return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high
    if kind == 'size':
        ok = is_int(v, 1, MAX_IMG_SIZE) or (isinstance(v, (list, tuple)) and len(v) == 2
                                            and all(is_int(x, 1, MAX_IMG_SIZE) for x in v))
        return None if ok else f'not a size (an integer or [h, w] in 1..{MAX_IMG_SIZE})'
    if kind in ('int', 'int0'):
        low = 0 if kind == 'int0' else 1
        return None if is_int(v, low) else f'not an integer in {low}..{MAX_INT_KWARG}'
    if kind == 'ints':
        ok = is_int(v) or (isinstance(v, (list, tuple)) and 0 < len(v) <= 64 and all(is_int(x) for x in v))
        return None if ok else f'not an integer (or list of integers) in 1..{MAX_INT_KWARG}'
    if kind == 'num':
        return None if v is None or (_is_number(v) and 0 <= v <= 1e3) else 'not a number in 0..1000'
    if kind == 'nums':
        ok = (_is_number(v) and 0 < v <= 1e3) or (isinstance(v, (list, tuple)) and 0 < len(v) <= 64
                                                   and all(_is_number(x) and 0 < x <= 1e3 for x in v))
        return None if ok else 'not a number (or list of numbers) in 0..1000'
    if kind == 'bool':
        return None if v is None or isinstance(v, bool) else 'not true/false'
    return None if v in kind else f'not one of {", ".join(map(repr, kind))}'


def read_backbone_meta(path) -> dict[str, Any]:
    """The metadata of a backbone file, from its header only (no tensors read); ``{}`` when ``path`` is not a
    readable local ``.safetensors`` file or its metadata is not this project's (another ``format``, wrong types or
    ranges: reading the weights then refuses the file, naming the problem). An http(s) URL is read from its cached
    copy, if there is one (:mod:`mixseg.remote`; nothing is downloaded here)."""
    from safetensors import SafetensorError, safe_open

    from .remote import cache_entry, cached_source, is_url
    if is_url(path):
        from urllib.parse import urlsplit
        cached = cache_entry(path) / Path(urlsplit(path).path).name
        path = cached if cached_source(cached) else None
    if not path or '://' in str(path) or not str(path).endswith('.safetensors') or not Path(path).is_file():
        return {}
    try:
        with safe_open(str(path), framework='pt', device='cpu') as f:
            header = f.metadata() or {}
        return _parse_meta(header, path)
    except (SafetensorError, OSError, ValueError, CheckpointError):
        return {}


def _unwrap(obj, path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(f'{path}: no state dict found (looked for tensors at the top level and under '
                          f'{", ".join(_NESTED_KEYS)})')


def strip_prefixes(state_dict: Mapping[str, torch.Tensor], prefixes: Iterable[str] = _PREFIXES):
    """Strip wrapper prefixes; keys under a known prefix win over others (mmengine checkpoints of a
    whole segmentor keep only the ``backbone.`` part)."""
    out = dict(state_dict)
    for prefix in prefixes:
        inner = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
        if inner:
            out = inner
    return out


def read_weights(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read any supported weight file into ``(state_dict, meta)`` with wrapper prefixes removed.

    ``.safetensors``: a backbone file (metadata in ``meta``). Anything else: ``torch.load`` with
    ``weights_only=True`` (a pickle carrying code is refused by torch), unwrapped from the known nesting
    keys; ``meta`` then holds the non-tensor top-level entries mmengine stores (``meta``) if present.
    An ``http(s)://`` URL is downloaded into torch's hub cache first (:func:`mixseg.remote.download`) and the
    cached file read the same way; other schemes are refused.
    """
    from .remote import download, is_url, read_download, redact
    if is_url(path):
        return read_download(path, download(path), reader=read_weights)
    elif isinstance(path, str) and '://' in path:
        raise CheckpointError(f'{redact(path)}: only local files and http(s):// URLs are read as backbone weights')
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: weight file not found')
    if path.suffix == '.safetensors':
        bf = load_backbone_file(path)
        return strip_prefixes(bf.state_dict), bf.meta
    obj = torch_load_safely(path)
    meta = dict(obj.get('meta') or {}) if isinstance(obj, Mapping) and isinstance(obj.get('meta'), Mapping) else {}
    return strip_prefixes(_unwrap(obj, path)), meta


def load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, source='state dict',
                ignore_missing: Iterable[str] = (), ignore_unexpected: Iterable[str] = ()) -> None:
    """Load ``state_dict`` into ``model`` or raise :class:`CheckpointMismatchError` and load nothing.

    ``ignore_*`` are key prefixes allowed to be missing from the file (e.g. a fresh head) or present in
    the file but not in the model (e.g. a classifier head the backbone drops).
    """
    ignore_missing, ignore_unexpected = tuple(ignore_missing), tuple(ignore_unexpected)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.startswith(ignore_missing or ('\0',))]
    unexpected = [k for k in state_dict if k not in own and not k.startswith(ignore_unexpected or ('\0',))]
    mismatched = [(k, state_dict[k].shape, own[k].shape) for k in own
                  if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(source, missing, unexpected, mismatched, type(model).__name__)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)


def resize_pos_embed(posemb: torch.Tensor, new_grid, num_prefix_tokens: int = 1, old_grid=None) -> torch.Tensor:
    """Bicubic resize of an absolute position embedding ``1×(prefix+h·w)×C`` to ``new_grid`` (timm's)."""
    from timm.layers import resample_abs_pos_embed
    return resample_abs_pos_embed(posemb, list(new_grid), old_size=list(old_grid) if old_grid else None,
                                  num_prefix_tokens=num_prefix_tokens, antialias=False)

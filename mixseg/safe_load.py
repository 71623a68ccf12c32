"""Safe loading of mmengine checkpoints under torch >= 2.6 (``weights_only=True`` by default).

mmengine 0.10.7 resumes with a plain ``torch.load``; its checkpoints hold, besides tensors, the message
hub's :class:`~mmengine.logging.HistoryBuffer` objects and the numpy arrays/scalars they keep. Torch's safe
unpickler refuses those, which breaks ``--resume``. The fix is to allow exactly these types, never to turn
safe loading off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``): a checkpoint carrying any other global (code) is
still refused.

One more obstacle: ``HistoryBuffer.__getstate__`` stores its class-level table of statistics functions
(``min``/``max``/``current``/``mean``), which pickle (protocol 2, as ``torch.save`` uses) writes as
``getattr(HistoryBuffer, 'min')``. Allowing ``getattr`` would let a crafted file reach any attribute of any
allowed object (``builtins`` through a builtin's ``__self__``), so instead the buffer's state is written
without the four default functions — they are class attributes, re-registered here on import — and only
user-registered statistics are still pickled (and refused on load, with torch's message naming them).
Checkpoints written this way still load in a stock mmengine.

mmengine's checkpoint readers (``load_from``, ``--resume``, ``init_cfg=Pretrained``; local files, URLs and the
model-zoo schemes) are replaced by ones that pass ``weights_only=True`` explicitly and name the refused file
(:func:`torch_load_safely`, which :mod:`mixseg.checkpoint` re-exports; :mod:`mixseg.remote`). This module imports
nothing of mixseg; ``import mixseg`` installs both.
"""
from __future__ import annotations

import numpy as np
import torch


def _numpy_globals():
    # numpy pickles arrays through ``_reconstruct`` and scalars through ``scalar``; both live in
    # numpy.core.multiarray (numpy 1.x) / numpy._core.multiarray (numpy 2.x).
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    dtypes = [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8',
                                          'uint8', 'bool')]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def safe_globals() -> list:
    """The types mmengine checkpoints need beyond torch's own allow-list."""
    out = _numpy_globals()
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        out.append(HistoryBuffer)
    except ImportError:  # stage-1 mixing code can run without mmengine
        pass
    return out


class CheckpointError(RuntimeError):
    """A weight file that cannot be read or does not fit; the message names the file. (Defined here, where the
    loading starts, and part of :mod:`mixseg.checkpoint`'s API.)"""


def torch_load_safely(path, map_location='cpu', *, name=None, **kwargs):
    """``torch.load(path, weights_only=True)`` with the allow-list of this module; any failure
    becomes a :class:`CheckpointError` naming the file (``name``, for a file object) and what is wrong with it.
    torch's own message names neither the file nor, in its first lines, the refused global, and it advises
    re-running with ``weights_only=False`` (or allow-listing the refused global): our message never repeats
    that advice. Every pickle-based load of the project goes through here."""
    name = name or path
    try:
        return torch.load(path, map_location=map_location, weights_only=True, **kwargs)
    except Exception as e:
        raise CheckpointError(f'{name}: cannot be loaded safely: {_refusal_reason(e)}; nothing was loaded. '
                              f'Only tensors and the types mmengine stores are accepted: re-export the weights '
                              f'from their source with torch.save(state_dict) or as .safetensors') from e


def _refusal_reason(error: Exception) -> str:
    """What torch's error says about the file, without its advice to switch safe loading off."""
    import pickle
    import re
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

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _patch_history_buffer() -> None:
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:
        return
    if getattr(HistoryBuffer.__getstate__, '_mixseg', False):
        return
    for name in _DEFAULT_STATISTICS:
        HistoryBuffer._statistics_methods.setdefault(name, getattr(HistoryBuffer, name))

    def __getstate__(self) -> dict:
        custom = {k: f for k, f in self._statistics_methods.items()
                  if not (k in _DEFAULT_STATISTICS and f is getattr(HistoryBuffer, k))}
        return dict(self.__dict__, statistics_methods=custom)

    __getstate__._mixseg = True
    HistoryBuffer.__getstate__ = __getstate__


def install_safe_globals() -> None:
    """Allow the mmengine/numpy types of our checkpoints in torch's ``weights_only`` loading (a patch of
    :mod:`mixseg.patches`)."""
    torch.serialization.add_safe_globals(safe_globals())


def install() -> None:
    install_safe_globals()
    _patch_history_buffer()

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

mmengine's local checkpoint reader (``load_from``, ``--resume``, ``init_cfg=Pretrained``) is replaced by one
that passes ``weights_only=True`` explicitly and names the refused file
(:func:`torch_load_safely`, which :mod:`mixseg.checkpoint` uses too; this module imports nothing of mixseg).
"""
from __future__ import annotations

import os

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


def torch_load_safely(path, map_location='cpu'):
    """``torch.load(path, weights_only=True)`` with the allow-list of this module; any failure
    becomes a :class:`CheckpointError` naming the file (torch's own message names neither the file nor, in
    its first line, the refused global). Every pickle-based load of the project goes through here."""
    import pickle

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if 'GLOBAL' in ln or 'global' in ln.lower()]
        reason = lines[0] if lines else str(e).splitlines()[0]
        raise CheckpointError(f'{path}: cannot be loaded safely: refused by torch.load(weights_only=True): '
                              f'{reason} Only tensors and the types mmengine stores are accepted; nothing was '
                              f'loaded.') from e
    except Exception as e:  # RuntimeError/EOFError/zipfile errors of a truncated or foreign file
        raise CheckpointError(f'{path}: cannot be loaded safely ({type(e).__name__}: {e})') from e


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


def _register_mmengine_loader() -> None:
    """mmengine reads local checkpoints (``load_from``, ``--resume``, ``init_cfg=Pretrained``) through
    ``CheckpointLoader``'s scheme ``''``; replace it with one that loads with ``weights_only=True``
    explicitly and names the file when a checkpoint is refused."""
    try:
        from mmengine.runner.checkpoint import CheckpointLoader
    except ImportError:
        return

    def load_from_local(filename, map_location):
        filename = os.path.expanduser(filename)
        if not os.path.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        return torch_load_safely(filename, map_location=map_location)

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


def install() -> None:
    torch.serialization.add_safe_globals(safe_globals())
    _patch_history_buffer()
    _register_mmengine_loader()


install()

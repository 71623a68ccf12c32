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
without the four default functions — they are class attributes, re-registered by :func:`patch_history_buffer` — and only
user-registered statistics are still pickled (and refused on load, with torch's message naming them).
Checkpoints written this way still load in a stock mmengine.

The project's reader (:func:`mixcore.weights.read.read_file`) applies this allow-list to each read it makes;
:func:`install_safe_globals` adds it to torch's global list for reads outside the project's code (patches
``safe-globals`` and ``history-buffer-state`` of :mod:`mixcore.patches`).
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


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def patch_history_buffer() -> None:
    """Pickle a HistoryBuffer without its default statistics functions (see the module doc)."""
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
    """Allow the mmengine/numpy types of our checkpoints in torch's ``weights_only`` loading everywhere (a patch
    of :mod:`mixcore.patches`)."""
    torch.serialization.add_safe_globals(safe_globals())

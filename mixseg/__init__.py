"""mixseg: attention-guided mix augmentations (TransMix, MixPro, TokenMix) and their downstream transfer.

Importing the package applies the safe-loading allow-list for mmengine checkpoints and routes every
checkpoint scheme through the safe reader (see :mod:`mixseg.safe_load`, :mod:`mixseg.remote`); it imports neither mmseg nor mmdet.
"""
__version__ = '0.1.0'

from . import safe_load  # noqa: E402,F401
from . import remote  # noqa: E402

remote.install()  # every CheckpointLoader scheme (local, URLs, model zoos) reads through safe_load.torch_load_safely

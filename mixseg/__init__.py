"""mixseg: attention-guided mix augmentations (TransMix, MixPro, TokenMix) and their downstream transfer.

Importing the package applies the safe-loading allow-list for mmengine checkpoints (see
:mod:`mixseg.safe_load`); it imports neither mmseg nor mmdet.
"""
__version__ = '0.1.0'

from . import safe_load  # noqa: E402,F401

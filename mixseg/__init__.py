"""mixseg: attention-guided mix augmentations (TransMix, MixPro, TokenMix) and their downstream transfer.

Importing the package changes nothing global: the patches of torch/mmengine (safe loading, checkpoint schemes,
auto-resume, ...) are listed in :mod:`mixcore.patches` and applied by :func:`mixcore.patches.install` (the tools call
it; configs name :mod:`mixseg.install_patches` in ``custom_imports``). It imports neither mmseg nor mmdet.
"""
__version__ = '0.1.0'

"""Stage-1 patches of timm, added to :data:`mixcore.patches.PATCHES` (the one list) on import.

Importing this module only extends that list; :func:`install` (or :mod:`pretrain.install_patches`) applies them.
"""
from mixcore.patches import Patch, install as _install, register

STAGE1_PATCHES = [
    Patch('timm-posterize', "timm's RandAugment posterize keeping 0 bits (magnitude 10 of 'rand-m9-mstd0.5-inc1') "
          'raises ValueError with Pillow >= 11 and kills a data-loader worker; older Pillow returned a black '
          'image, which the DeiT recipe trained on', 'timm 1.0.31, Pillow 13', 'pretrain.data:install_posterize'),
]
register(*STAGE1_PATCHES)


def install() -> list[str]:
    """Apply the patches of both stages."""
    return _install()

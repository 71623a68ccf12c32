"""mixseg: attention-guided mix augmentations (TransMix, MixPro, TokenMix) and their downstream transfer.

Importing the package applies the safe-loading allow-list for mmengine checkpoints and routes every
checkpoint scheme through the safe reader (see :mod:`mixseg.safe_load`, :mod:`mixseg.remote`); it imports neither mmseg nor mmdet.
"""
__version__ = '0.1.0'

import warnings  # noqa: E402

# mmengine's Config resolves `mmdet::` bases (configs/_base_/models/mask-rcnn_pvt-s_fpn.py) through
# mmengine.utils.package_utils.is_installed / get_installed_path, which import pkg_resources and reload it on every
# call; setuptools (80.9 pinned: torch 2.14 needs >= 77) warns on every such import, 1-4 times per tool start. Only
# that message is silenced, and only while mmengine still uses pkg_resources (mmengine 0.10.7).
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API', category=UserWarning)

from . import safe_load  # noqa: E402,F401
from . import remote  # noqa: E402

remote.install()  # every CheckpointLoader scheme (local, URLs, model zoos) reads through safe_load.torch_load_safely

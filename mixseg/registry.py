"""mixseg's child registry (scope ``'mixseg'``) of mmengine's root ``TRANSFORMS``: the checked loaders of the
stage-2 pipelines, used by mmseg and mmdet configs alike (``dict(type='mixseg.CheckSegLabels')``; mmengine imports
this module for the scope). The stage-2 backbones and datasets register into mmseg's/mmdet's own registries, as
OpenMMLab projects do.
"""
from mmengine import registry as _root
from mmengine.registry import Registry

SCOPE = 'mixseg'

#: CheckedLoadImageFromFile, CheckSegLabels
TRANSFORMS = Registry('transform', parent=_root.TRANSFORMS, scope=SCOPE, locations=['mixseg.datasets.transforms'])

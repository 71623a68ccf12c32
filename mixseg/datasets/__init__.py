"""Input validation for the stage-2 data pipelines (registered on import; configs reach them through
``custom_imports=dict(imports=['mixseg.datasets'])``).

* ``CheckedLoadImageFromFile`` (mmcv TRANSFORMS): mmcv's loader, refusing truncated/corrupt files by name.
* ``CheckSegLabels`` (mmcv TRANSFORMS): annotation values outside the dataset's classes, by file.
* ``CheckedCocoDataset`` (mmdet DATASETS, imported only where mmdet is): broken polygons, boxes outside
  the image, unreadable JSON — by annotation id, image and file.
"""
from .transforms import CheckedLoadImageFromFile, CheckSegLabels  # noqa: F401

try:
    from .coco import CheckedCocoDataset  # noqa: F401
except ModuleNotFoundError as e:  # mmdet not installed: segmentation-only environments
    if not (e.name or '').split('.')[0] == 'mmdet':
        raise

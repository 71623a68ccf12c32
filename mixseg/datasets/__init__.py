"""Input validation for the stage-2 data pipelines (registered on import; configs reach them through
``custom_imports=dict(imports=['mixseg.datasets'])``).

* ``CheckedLoadImageFromFile`` (mmcv TRANSFORMS): mmcv's loader, refusing truncated/corrupt files by name.
  Decodes by content: a PNG named ``.jpg`` is read as the PNG it is.
* ``CheckSegLabels`` (mmcv TRANSFORMS): label maps that are not single-channel, not the size of their
  image, or hold values outside the dataset's classes, by file.
* ``CheckedCocoDataset`` (mmdet DATASETS, imported only where mmdet is): broken polygons, boxes outside
  the image, degenerate boxes, unknown category ids, classes not in the file, unreadable JSON — by
  annotation id, image and file. ``CheckedCocoMetric`` (mmdet METRICS): ``CocoMetric`` with annotation
  ids renumbered from 1 where a file starts them at 0 (pycocotools reads 0 as "unmatched").
  ``coco_self_check`` (mixseg.datasets.coco; tools/check_coco_annotations.py): an annotation file evaluated
  against itself must score AP 1.0; the report names the cause where it does not.
* ``convert_pascal_context`` (mixseg.datasets.pascal_context; tools/convert_pascal_context.py): Pascal Context 59
  from the official downloads.
"""
from .transforms import CheckedLoadImageFromFile, CheckSegLabels  # noqa: F401

try:
    from .seg import FolderSegDataset  # noqa: F401
except ModuleNotFoundError as e:  # mmseg not installed: detection-only environments
    if not (e.name or '').split('.')[0] == 'mmseg':
        raise

try:
    from .coco import CheckedCocoDataset, CheckedCocoMetric  # noqa: F401
except ModuleNotFoundError as e:  # mmdet not installed: segmentation-only environments
    if not (e.name or '').split('.')[0] == 'mmdet':
        raise

"""Robustness benchmarks of stage-1 classifiers: occlusion, patch shuffling, ImageNet-A, ImageNet-O, ImageNet-R
(``tools/robustness.py`` is the command line; Table E of :mod:`mixseg.tables` collects the results)."""
from .classes import class_indices, folder_classes, imagenet_wnids, model_classes
from .metrics import aupr, auroc, msp_anomaly_score, restricted_top1
from .shuffle import GRIDS, shuffle_patches, shuffle_perms

__all__ = ['class_indices', 'folder_classes', 'imagenet_wnids', 'model_classes', 'aupr', 'auroc',
           'msp_anomaly_score', 'restricted_top1', 'GRIDS', 'shuffle_patches', 'shuffle_perms']

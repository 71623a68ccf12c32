"""Pascal Context 59 from the official downloads, without ``trainval_merged.json`` and the ``detail`` package.

mmseg's converter (tools/dataset_converters/pascal_context.py) reads a JSON file hosted elsewhere through the
``detail`` API. The Pascal Context release itself (https://cs.stanford.edu/~roozbeh/pascal-context/,
``trainval.tar.gz``) holds one ``<image id>.mat`` per VOC2010 train/val image, whose ``LabelMap`` gives each
pixel one of the 459 labels of the release's ``labels.txt`` (1-based; 0 = unlabelled). This module writes
what mmseg's ``PascalContextDataset59`` reads:

* ``SegmentationClassContext/<id>.png``: 0 = background (unlabelled and the 400 rarer labels; ignored by the
  59-class protocol through ``reduce_zero_label``), 1..59 = the 59 classes in ``PascalContextDataset59``'s order;
* ``ImageSets/SegmentationContext/{train,val}.txt``: VOC2010's ``ImageSets/Main/{train,val}.txt`` (the
  Pascal Context split: 4998 + 5105 = the release's 10103 images), the ids that have a ``.mat``.
"""
from __future__ import annotations

import os
import os.path as osp

import numpy as np

#: The 459-label ids (labels.txt) of background (0) and the 59 classes, ascending, so that the position in
#: this list is the 59-class label. Source: mmsegmentation, tools/dataset_converters/pascal_context.py
#: (``_mapping``, sorted there as here); the same ids as the Detail API's category ids it reads.
PASCAL_CONTEXT_59_IDS = tuple(sorted((
    0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162, 420, 454, 295,
    296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355, 85, 347,
    220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115)))
SPLITS = ('train', 'val')
HOW_TO_MAKE = ('made from the official downloads (VOCtrainval_03-May-2010.tar and Pascal Context\'s '
               'trainval.tar.gz) by `python tools/convert_pascal_context.py data/VOCdevkit/VOC2010 '
               '--context DIR_WITH_MAT_FILES` (docs/DATASETS.md "Pascal Context")')


def _lookup_table() -> np.ndarray:
    """label459 -> label59 for every uint16 value (0 where the label is none of the 59 classes)."""
    table = np.zeros(2 ** 16, np.uint8)
    table[np.asarray(PASCAL_CONTEXT_59_IDS)] = np.arange(len(PASCAL_CONTEXT_59_IDS), dtype=np.uint8)
    return table


def convert_label_map(label_map: np.ndarray) -> np.ndarray:
    """A ``LabelMap`` of the release (459 labels) as the 0..59 map of ``PascalContextDataset59``."""
    if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(f'LabelMap must be a 2-D integer array, got {label_map.dtype} {label_map.shape}')
    if label_map.min() < 0 or label_map.max() > 459:
        raise ValueError(f'LabelMap values must lie in 0..459 (Pascal Context labels.txt), found '
                         f'{int(label_map.min())}..{int(label_map.max())}')
    return _lookup_table()[label_map.astype(np.int64)]


def read_mat(path: str) -> np.ndarray:
    import scipy.io
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for a damaged file
        raise ValueError(f'{path}: not a readable .mat file ({e})') from e
    if 'LabelMap' not in mat:
        raise ValueError(f'{path}: no LabelMap in the file (keys: {sorted(k for k in mat if not k.startswith("_"))}); '
                         f'expected a .mat file of Pascal Context\'s trainval.tar.gz')
    return mat['LabelMap']


def _split_ids(voc2010: str, split: str) -> list[str]:
    path = osp.join(voc2010, 'ImageSets', 'Main', f'{split}.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: {voc2010} must be the VOC2010 folder of '
                                f'VOCtrainval_03-May-2010.tar (VOCdevkit/VOC2010)')
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def convert_pascal_context(voc2010: str, context: str | None = None, log=print) -> dict:
    """Write ``SegmentationClassContext/`` and ``ImageSets/SegmentationContext/{train,val}.txt`` under
    ``voc2010`` from the ``.mat`` files in ``context`` (default ``<voc2010>/trainval``); returns the number of
    images per split. The split files are written last (each atomically): an interrupted run leaves none, and
    a rerun converts again."""
    from PIL import Image

    from mixcore.atomic_write import atomic_write, atomic_write_text
    context = context or osp.join(voc2010, 'trainval')
    if not osp.isdir(context):
        raise FileNotFoundError(f'{context}: no such folder; extract Pascal Context\'s trainval.tar.gz '
                                f'(https://cs.stanford.edu/~roozbeh/pascal-context/) there, or name its folder '
                                f'of <image id>.mat files with --context')
    ids = {split: _split_ids(voc2010, split) for split in SPLITS}
    mats = {osp.splitext(f)[0] for f in os.listdir(context) if f.endswith('.mat')}
    if not mats:
        raise FileNotFoundError(f'{context}: no .mat files (expected <image id>.mat from trainval.tar.gz)')
    missing_img = [i for s in SPLITS for i in ids[s] if i in mats
                   and not osp.isfile(osp.join(voc2010, 'JPEGImages', f'{i}.jpg'))]
    if missing_img:
        raise FileNotFoundError(f'{voc2010}/JPEGImages lacks {len(missing_img)} images that have annotations, '
                                f'e.g. {missing_img[:3]}: extract VOCtrainval_03-May-2010.tar')
    out_dir = osp.join(voc2010, 'SegmentationClassContext')
    counts = {}
    for split in SPLITS:
        kept = [i for i in ids[split] if i in mats]
        if len(kept) < len(ids[split]):
            log(f'{split}: {len(ids[split]) - len(kept)} of {len(ids[split])} VOC2010 images have no .mat in '
                f'{context}; left out')
        for n, image_id in enumerate(kept):
            label = convert_label_map(read_mat(osp.join(context, f'{image_id}.mat')))
            atomic_write(osp.join(out_dir, f'{image_id}.png'),
                         lambda tmp, a=label: Image.fromarray(a).save(tmp, format='PNG'))
            if (n + 1) % 1000 == 0:
                log(f'{split}: {n + 1}/{len(kept)}')
        counts[split] = kept
    for split in SPLITS:
        atomic_write_text(osp.join(voc2010, 'ImageSets', 'SegmentationContext', f'{split}.txt'),
                          ''.join(f'{i}\n' for i in counts[split]))
    return {split: len(v) for split, v in counts.items()}

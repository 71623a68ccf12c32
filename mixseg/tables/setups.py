"""The paper's setup of each table: the data and schedule a result must have been trained and tested with to
stand beside the published numbers (``mixcore.provenance`` records them with each result), and how a result's
recorded setup compares with it (:func:`check_setup`: paper, demo, non-standard or unknown)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperSetup:
    dataset: str
    train_images: int
    val_images: int
    total_batch: int               # images per step over all GPUs
    max_iters: int | None = None   # the schedule: iterations or epochs
    max_epochs: int | None = None
    source: str = ''


#: dataset sizes: loaders may drop a few images (mmdet's CocoDataset drops the 1021 train2017 images without
#: annotations, 0.9 %), so a count within this fraction of the paper's is the paper's dataset
SIZE_TOLERANCE = 0.015
_IMAGENET = dict(dataset='ImageNet-1k', train_images=1281167, val_images=50000)  # ILSVRC-2012 train / val
PAPER_SETUPS = {
    # configs/segmenter/segmenter-{linear,mask}_deit-*_8xb2-80k_pascal-context-59-480x480.py (8 GPUs × 2,
    # 80k iterations, as mmseg's segmenter/FCN Pascal Context 59 configs); PASCAL-Context 59: 4996 train (VOC2010
    # train) / 5104 val (VOC2010 val) images, mmseg's dataset docs
    'A': PaperSetup('Pascal Context 59', 4996, 5104, total_batch=16, max_iters=80000,
                    source='configs/segmenter/*_8xb2-80k_pascal-context-59-480x480.py; mmseg dataset docs'),
    # configs/mask_rcnn/mask-rcnn_pvt-s*_fpn_8xb2-1x_coco.py (8 GPUs × 2, 12 epochs: PVT paper, Mask R-CNN 1x);
    # COCO 2017: 118287 train2017 / 5000 val2017 images (cocodataset.org)
    'B': PaperSetup('COCO 2017', 118287, 5000, total_batch=16, max_epochs=12,
                    source='configs/mask_rcnn/mask-rcnn_pvt-s*_fpn_8xb2-1x_coco.py; cocodataset.org'),
    # configs/segmenter/segmenter-mask_deit-*_8xb1-160k_ade20k-512x512.py (8 GPUs × 1, 160k iterations: mmseg's
    # Segmenter ADE20K configs, the TokenMix paper's setting); ADEChallengeData2016: 20210 train / 2000 val
    'C': PaperSetup('ADE20K', 20210, 2000, total_batch=8, max_iters=160000,
                    source='configs/segmenter/segmenter-mask_deit-*_8xb1-160k_ade20k-512x512.py; ADE20K release'),
}
#: Table D: the pretraining configs configs/pretrain/<model>_<method>_8xb128-<epochs>e_in1k.py: 8 GPUs × 128,
#: 300 epochs (DeiT recipe, PVT, Swin), 400 for CaiT and XCiT (their papers' ImageNet recipes)
_D_EPOCHS = (('cait-', 400, 'CaiT'), ('xcit-', 400, 'XCiT'), ('', 300, 'the others'))


def paper_setup(table: str, key: tuple) -> PaperSetup:
    """The paper's data and schedule of a row of ``table`` (Tables D and E: the pretraining of the row's model)."""
    if table not in ('D', 'E'):
        return PAPER_SETUPS[table]
    model = str(dict(key).get('model', ''))
    epochs = next(e for prefix, e, _ in _D_EPOCHS if model.startswith(prefix))
    return PaperSetup(total_batch=1024, max_epochs=epochs, **_IMAGENET,
                      source=f'configs/pretrain/{model}_*_8xb128-{epochs}e_in1k.py')


def _differs(n, expected: int) -> bool:
    return abs(n - expected) > SIZE_TOLERANCE * expected


def _schedule_text(iters, epochs) -> str:
    return f'{epochs} epochs' if epochs is not None else f'{iters} iterations'


def _count(record: dict, key: str) -> int | None:
    """A whole number of a setup record; anything else (missing, null, a hand-edited string) is unknown."""
    v = record.get(key)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def paper_text(table: str) -> str:
    """The paper's setup of a table in words (for the notes)."""
    if table in ('D', 'E'):
        other = ', '.join(f'{name}: {e}' for p, e, name in _D_EPOCHS if p)
        exp = paper_setup('D', (('model', 'deit-s'),))
        return (f'{exp.dataset}, {exp.train_images} training / {exp.val_images} evaluated images, '
                f'{exp.max_epochs} epochs ({other}), total batch {exp.total_batch}')
    exp = PAPER_SETUPS[table]
    return (f'{exp.dataset}, {exp.train_images} training / {exp.val_images} evaluated images, '
            f'{_schedule_text(exp.max_iters, exp.max_epochs)}, total batch {exp.total_batch}')


def _train_deviations(train: dict, exp: PaperSetup) -> tuple[list, list]:
    differs, unknown = [], []
    n = _count(train, 'train_images')
    if n is None:
        unknown.append('training images not recorded')
    elif _differs(n, exp.train_images):
        differs.append(f'{n} training images (paper: {exp.train_images}, {exp.dataset})')
    iters, epochs = _count(train, 'max_iters'), _count(train, 'max_epochs')
    if iters is None and epochs is None:
        unknown.append('schedule not recorded')
    elif (iters, epochs) != (exp.max_iters, exp.max_epochs):
        differs.append(f'{_schedule_text(iters, epochs)} (paper: {_schedule_text(exp.max_iters, exp.max_epochs)})')
    total = _count(train, 'total_batch')
    if total is None:
        unknown.append('GPUs not recorded' if train.get('batch_size') else 'batch size not recorded')
    elif total != exp.total_batch:
        differs.append(f'total batch {total} = {train.get("gpus")} GPU(s) × {train.get("batch_size")} '
                       f'(paper: {exp.total_batch})')
    return differs, unknown


def check_setup(table: str, key: tuple, setup) -> tuple[str, list[str]]:
    """How a result's ``setup`` (:func:`mixcore.provenance.result_setup`) compares with the paper's setup of its
    row: ``('paper', [])``; ``('demo', reasons)`` (generated demo data); ``('nonstandard', reasons)`` (data or
    schedule differs); ``('unknown', reasons)`` (not recorded, e.g. a results file of an older mixseg)."""
    if not isinstance(setup, dict):
        return 'unknown', ['no data/schedule recorded (a results file written before mixseg recorded them)']
    exp = paper_setup(table, key)
    train, test = (setup.get(k) if isinstance(setup.get(k), dict) else None for k in ('train', 'test'))
    if train is not None:
        differs, unknown = _train_deviations(train, exp)
    else:
        differs, unknown = [], ['the training run recorded no data/schedule (a checkpoint of an older run)']
    val = _count(test or {}, 'images')
    val = val if val is not None else _count(train or {}, 'val_images')
    if val is None:
        unknown.append('evaluated images not recorded')
    elif _differs(val, exp.val_images):
        differs.append(f'evaluated on {val} images (paper: {exp.val_images}, {exp.dataset})')
    demo = (train or {}).get('demo') or (test or {}).get('demo')
    if isinstance(demo, dict):
        return 'demo', [f'generated demo data ({demo.get("dataset")}, size {demo.get("size")})'] + differs
    return ('nonstandard' if differs else 'unknown' if unknown else 'paper'), differs + unknown


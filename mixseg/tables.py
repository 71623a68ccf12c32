"""The papers' downstream tables: published numbers, and our results collected from work dirs.

A run belongs to a table row through the ``table_row`` entry of its config, e.g.
``table_row = dict(table='A', model='deit-s', method='transmix', decoder='mask')``; ``tools/test.py``
copies it into ``<work_dir>/results/<tag>.json`` (tag ``ss`` single-scale, ``ms`` multi-scale + flip).
:func:`collect` scans work dirs for those files and :func:`build_tables` lays them out like the papers,
with three numbers per cell: published, ours, difference.

Published numbers: ``docs/paper_facts.md#published-numbers`` (TransMix and MixPro papers for A and B, TokenMix paper for C).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# ---------------------------------------------------------------------------------------------------------
# Published numbers. A row is identified by its key (the fields of ``table_row`` minus ``table``).


@dataclass(frozen=True)
class Column:
    name: str          # header as in the paper
    tag: str           # which results file: 'ss' or 'ms'
    metric: str        # key in the metrics dict (without evaluator prefix)
    scale: float = 1.0  # mmdet's CocoMetric reports AP in [0, 1]; the papers in percent


@dataclass(frozen=True)
class Row:
    key: tuple          # e.g. (('decoder', 'linear'), ('method', 'baseline'), ('model', 'deit-s'))
    label: tuple        # the row's leading cells as printed, e.g. ('DeiT-S + TransMix', 'Linear')
    published: tuple    # one number per column (None where the paper gives none)
    reference: bool = False  # a row the papers quote for context; not something this project runs
    extra: bool = False      # a row of ours that the paper's table has not (a result matching no row)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    label_headers: tuple
    columns: tuple
    rows: tuple


def _key(**kw) -> tuple:
    return tuple(sorted(kw.items()))


_SEG_SS = Column('mIoU', 'ss', 'mIoU')
_SEG_MS = Column('+MS', 'ms', 'mIoU')
_METHOD_NAME = {'baseline': '', 'transmix': ' + TransMix', 'mixpro': ' + MixPro', 'tokenmix': ' + TokenMix'}

TABLE_A = Table(
    'A', 'Pascal Context 59, DeiT-S, mIoU single-scale / multi-scale (TransMix, MixPro papers)',
    ('pretrained', 'decoder'), (_SEG_SS, _SEG_MS),
    tuple(Row(_key(model='deit-s', method=m, decoder=d), (f'DeiT-S{_METHOD_NAME[m]}', dn), pub)
          for d, dn, rows in (
              ('linear', 'Linear', (('baseline', (49.1, 49.6)), ('transmix', (49.7, 50.3)), ('mixpro', (50.3, 50.9)))),
              ('mask', 'Segmenter', (('baseline', (49.7, 50.5)), ('transmix', (50.6, 51.2)), ('mixpro', (51.1, 51.6)))))
          for m, pub in rows)
    + (Row(_key(model='resnet-101', method='baseline', decoder='deeplabv3plus'), ('ResNet-101', 'DeepLabv3+'),
           (47.3, 48.5), reference=True),))

_DET_COLUMNS = tuple(Column(n, 'ss', m, 100.0) for n, m in (
    ('AP^b', 'bbox_mAP'), ('AP^b_50', 'bbox_mAP_50'), ('AP^b_75', 'bbox_mAP_75'),
    ('AP^m', 'segm_mAP'), ('AP^m_50', 'segm_mAP_50'), ('AP^m_75', 'segm_mAP_75')))

TABLE_B = Table(
    'B', 'COCO, Mask R-CNN 1x (TransMix, MixPro papers)', ('backbone',), _DET_COLUMNS,
    (Row(_key(model='resnet-50', method='baseline'), ('ResNet-50',), (38.0, 58.6, 41.4, 34.4, 57.1, 36.7), True),
     Row(_key(model='resnet-101', method='baseline'), ('ResNet-101',), (40.4, 61.1, 44.2, 36.4, 57.7, 38.8), True),
     Row(_key(model='pvt-s', method='baseline'), ('PVT-S',), (40.4, 62.9, 43.8, 37.8, 60.1, 40.3)),
     Row(_key(model='pvt-s', method='transmix'), ('TransMix-PVT-S',), (40.9, 63.8, 44.0, 38.4, 60.7, 41.3)),
     Row(_key(model='pvt-s', method='mixpro'), ('MixPro-PVT-S',), (41.4, 64.2, 44.4, 38.9, 61.1, 41.7))))

TABLE_C = Table(
    'C', 'ADE20K, Segmenter, mIoU / mAcc single-scale and +MS (TokenMix paper)', ('model', 'TokenMix'),
    (Column('mIoU', 'ss', 'mIoU'), Column('mAcc', 'ss', 'mAcc'),
     Column('+MS mIoU', 'ms', 'mIoU'), Column('+MS mAcc', 'ms', 'mAcc')),
    tuple(Row(_key(model=m, method=meth), (name, '✓' if meth == 'tokenmix' else '✗'), pub)
          for m, name, rows in (
              ('deit-t', 'DeiT-T', (('baseline', (36.4, 46.7, 37.5, 47.1)), ('tokenmix', (37.1, 47.5, 38.6, 48.2)))),
              ('deit-s', 'DeiT-S', (('baseline', (42.3, 52.8, 43.7, 53.8)), ('tokenmix', (44.5, 55.0, 45.9, 56.1)))),
              ('deit-b', 'DeiT-B', (('baseline', (46.3, 56.5, 47.7, 57.6)), ('tokenmix', (46.8, 56.9, 48.2, 58.1)))))
          for meth, pub in rows))

TABLES = {t.name: t for t in (TABLE_A, TABLE_B, TABLE_C)}

# Table D: ImageNet-1k top-1 of stage 1 (context for every downstream row), the papers' rows.
# MixPro paper, Table 1 (baseline and TransMix columns quoted from the TransMix paper): the models by their
# parameters/FLOPs there — XCiT-T 12M/2.3G = XCiT-T24, XCiT-S 26M/4.8G = XCiT-S12, XCiT-M 84M = XCiT-M24,
# XCiT-L 189M = XCiT-L24, CaiT-XXS 17.3M/3.8G = CaiT-XXS-36 (the XCiT/CaiT papers' 224² numbers agree:
# 79.4, 82.0, 82.7, 82.9; 79.1), so the rows name them so. CA-Swin: Swin with class-attention layers.
_D_MIXPRO = (  # (model, name, baseline, TransMix, MixPro)
    ('deit-t', 'DeiT-T', 72.2, 72.6, 73.8), ('pvt-t', 'PVT-T', 75.1, 75.5, 76.7),
    ('xcit-t24', 'XCiT-T24', 79.4, 80.1, 81.2), ('ca-swin-t', 'CA-Swin-T', 81.6, 81.8, 82.8),
    ('cait-xxs36', 'CaiT-XXS-36', 79.1, 79.8, 80.6), ('deit-s', 'DeiT-S', 79.8, 80.7, 81.3),
    ('pvt-s', 'PVT-S', 79.8, 80.5, 81.2), ('xcit-s12', 'XCiT-S12', 82.0, 82.3, 82.9),
    ('ca-swin-s', 'CA-Swin-S', 82.8, 83.2, 83.7), ('pvt-m', 'PVT-M', 81.2, 82.1, 82.7),
    ('pvt-l', 'PVT-L', 81.7, 82.4, 82.9), ('xcit-m24', 'XCiT-M24', 82.7, 83.4, 84.1),
    ('deit-b', 'DeiT-B', 81.8, 82.4, 82.9), ('xcit-l24', 'XCiT-L24', 82.9, 83.8, 84.7))
# TokenMix paper, Table 1 (CutMix → TokenMix). Its "CutMix" baselines are the models' own recipes (DeiT's
# Mixup + CutMix), i.e. our `baseline` pretraining: the shared rows agree with the MixPro table's baselines.
_D_TOKENMIX = (  # (model, name, CutMix, TokenMix)
    ('deit-t', 'DeiT-T', 72.2, 73.2), ('pvt-t', 'PVT-T', 75.1, 75.6), ('cait-xxs24', 'CaiT-XXS-24', 77.6, 78.0),
    ('deit-s', 'DeiT-S', 79.8, 80.8), ('swin-t', 'Swin-T', 81.2, 81.6), ('deit-b', 'DeiT-B', 81.8, 82.9))
_D_METHOD = {'baseline': 'baseline', 'transmix': 'TransMix', 'mixpro': 'MixPro', 'tokenmix': 'TokenMix'}


def _table_d_rows() -> tuple:
    """One row per (model, method), grouped by model (the MixPro table's order, then the TokenMix table's
    other models); a number both papers give must agree."""
    pub: dict = {}     # (model, method) -> (number, papers)
    names: dict = {}
    for paper, rows, methods in (('MixPro', _D_MIXPRO, ('baseline', 'transmix', 'mixpro')),
                                 ('TokenMix', _D_TOKENMIX, ('baseline', 'tokenmix'))):
        for model, name, *nums in rows:
            names.setdefault(model, name)
            for m, v in zip(methods, nums):
                old = pub.get((model, m))
                if old is not None and old[0] != v:
                    raise ValueError(f'table D: {name} {m}: {old[1][0]} gives {old[0]}, {paper} {v}')
                pub[(model, m)] = (v, (old[1] if old else ()) + (paper,))
    order = list(names)
    keys = sorted(pub, key=lambda k: (order.index(k[0]), list(_D_METHOD).index(k[1])))
    return tuple(Row(_key(model=model, method=m), (names[model], _D_METHOD[m], ', '.join(pub[(model, m)][1])),
                     (pub[(model, m)][0],)) for model, m in keys)


TOP1 = Column('top-1', 'ss', 'top1')
TABLE_D = Table('D', 'ImageNet-1k top-1 of the pretrained backbones (MixPro and TokenMix papers)',
                ('model', 'method', 'paper'), (TOP1,), _table_d_rows())
TABLES[TABLE_D.name] = TABLE_D

# Table E: robustness of the pretrained classifiers (tools/robustness.py writes one results file per benchmark,
# tag = the benchmark). Rows: the seed papers' robustness comparisons on DeiT-S (TransMix paper: DeiT-S vs
# TransMix on occlusion, patch shuffling, ImageNet-A and ImageNet-O; MixPro paper: MixPro vs TransMix on such
# benchmarks; TokenMix paper, Fig. 4: occlusion, a figure without a table). ImageNet-R is ours (users expect it
# beside A and O). Occlusion and shuffling are curves; the table shows one point of each (50 % dropped, 4×4 grid)
# and tools/tables.py plots the curves.
E_COLUMNS = (Column('IN-A top-1', 'imagenet-a', 'top1'), Column('IN-O AUPR', 'imagenet-o', 'aupr'),
             Column('IN-O AUROC', 'imagenet-o', 'auroc'), Column('IN-R top-1', 'imagenet-r', 'top1'),
             Column('occl. 50%', 'occlusion', 'top1@0.5'), Column('shuffle 4×4', 'shuffle', 'top1@g4'))
#: why the published cells are empty (printed under the table)
E_PUBLISHED_NOTE = ('published values left empty: the papers\' robustness tables and figures (TransMix paper, '
                    'robustness analysis; MixPro paper, robustness comparison with TransMix; TokenMix paper, Fig. 4) '
                    'could not be read from a source opened for this table; fill them in from the papers')
TABLE_E = Table('E', 'Robustness of the pretrained DeiT-S classifiers (TransMix, MixPro, TokenMix papers)',
                ('model', 'method'), E_COLUMNS,
                tuple(Row(_key(model='deit-s', method=m), ('DeiT-S', _D_METHOD[m]), (None,) * len(E_COLUMNS))
                      for m in ('baseline', 'transmix', 'mixpro', 'tokenmix')))
TABLES[TABLE_E.name] = TABLE_E

# ---------------------------------------------------------------------------------------------------------
# The paper's setup of each table: the data and schedule a result must have been trained and tested with to
# stand beside the published numbers (mixseg.provenance records them with each result).


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
    """How a result's ``setup`` (:func:`mixseg.provenance.result_setup`) compares with the paper's setup of its
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


def write_top1_result(backbone, dest, table_row: dict) -> Path:
    """Table D's cell of one pretraining as a results file (``dest``, the layout :func:`read_result` reads): the
    top-1 that the backbone file's metadata carries (the pretraining's last validation on ImageNet val,
    :class:`pretrain.export.BackboneExportHook`). A file without a top-1 is an error naming it."""
    from mixcore.atomic_write import atomic_write_text
    from mixcore.weights.backbone_file import read_backbone_meta
    meta = read_backbone_meta(backbone)
    top1 = meta.get('top1')
    if not isinstance(top1, (int, float)) or not math.isfinite(top1):
        raise ValueError(f'{backbone}: no top-1 in the backbone file\'s metadata (top1={top1!r}): the '
                         'pretraining ran without validation')
    record = dict(config=meta.get('source_config'), checkpoint=str(backbone), tag=TOP1.tag, tta=False,
                  table_row=dict(table_row), metrics={'accuracy/top1': float(top1)},
                  source='backbone file metadata', epochs=meta.get('epochs'), method=meta.get('method'),
                  setup=dict(train=meta['setup'], test=None) if isinstance(meta.get('setup'), dict) else None)
    return atomic_write_text(dest, json.dumps(record, indent=2) + '\n')

# ---------------------------------------------------------------------------------------------------------
# Collecting our results.


@dataclass
class Result:
    table: str
    key: tuple
    tag: str
    metrics: dict
    path: Path
    setup: dict | None = None      # what it was trained/tested on (mixseg.provenance.result_setup)
    status: str = 'unknown'        # check_setup: 'paper' | 'demo' | 'nonstandard' | 'unknown'
    reasons: tuple = ()            # check_setup: how the setup differs from the paper's, or what is unknown


#: how the tables mark our number of a result that is not of the paper's setup
MARKS = {'paper': '', 'unknown': '?', 'demo': '†', 'nonstandard': '*'}
_MARK_TEXT = {'unknown': 'data/schedule unknown', 'demo': 'demo run: generated data, toy schedule',
              'nonstandard': "not the paper's data/schedule (shown with --include-nonstandard)"}
_RANK = {'paper': 0, 'unknown': 1, 'demo': 2, 'nonstandard': 2}   # which result fills a cell (then newest)


@dataclass
class Collection:
    results: dict = field(default_factory=dict)   # (table, key, tag) -> Result (best setup, then newest file)
    skipped: list = field(default_factory=list)   # (path, reason)
    left_out: list = field(default_factory=list)  # Results not of the paper's setup, left out of the tables


def _metric(metrics: dict, name: str, missing=None):
    """Look a metric up with or without an evaluator prefix ('coco/bbox_mAP' for 'bbox_mAP')."""
    if name in metrics:
        return metrics[name]
    for k, v in metrics.items():
        if k.rsplit('/', 1)[-1] == name:
            return v
    return missing


def read_result(path: Path) -> Result:
    """Read one ``results/<tag>.json``; ``ValueError`` names the file and what is wrong with it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'{path}: unreadable results file ({e})') from e
    if not isinstance(record, dict) or not isinstance(record.get('metrics'), dict):
        raise ValueError(f'{path}: no "metrics" dict')
    row = record.get('table_row')
    if not isinstance(row, dict) or row.get('table') not in TABLES:
        raise ValueError(f'{path}: no table_row naming one of the tables {sorted(TABLES)} '
                         '(set `table_row` in the config or with --cfg-options)')
    row = dict(row)
    table = row.pop('table')
    key = _key(**row)
    status, reasons = check_setup(table, key, record.get('setup'))
    return Result(table, key, record.get('tag') or Path(path).stem, record['metrics'], Path(path),
                  record.get('setup'), status, tuple(reasons))


def collect(work_dirs: Iterable[str | Path], include_nonstandard: bool = False) -> Collection:
    """Scan work dirs (recursively) for ``results/*.json`` files. A cell takes the result of the paper's setup
    over one of unknown setup over a demo or non-standard one, then the newest. Results whose data or schedule
    differ from the paper's (:func:`check_setup`) go to ``left_out`` unless ``include_nonstandard``; demo
    results (generated data) always show, marked."""
    col = Collection()
    files = []
    for wd in work_dirs:
        wd = Path(wd)
        if wd.is_file():
            files.append(wd)
        elif wd.is_dir():
            files.extend(p for p in wd.rglob('results/*.json'))
        else:
            col.skipped.append((wd, 'no such file or directory'))
    for f in sorted(files, key=lambda p: p.stat().st_mtime):
        try:
            r = read_result(f)
        except ValueError as e:
            col.skipped.append((f, str(e)))
            continue
        if r.status == 'nonstandard' and not include_nonstandard:
            col.left_out.append(r)
            continue
        old = col.results.get((r.table, r.key, r.tag))
        if old is None or _RANK[r.status] <= _RANK[old.status]:
            col.results[(r.table, r.key, r.tag)] = r
    return col


def unmatched(col: Collection) -> list[Result]:
    """The results whose row their table has not (shown as extra rows, without published numbers)."""
    return [r for (t, key, _), r in sorted(col.results.items(), key=lambda kv: str(kv[0]))
            if key not in {row.key for row in TABLES[t].rows}]


def describe_key(key: tuple) -> str:
    """A row key in words: ``deit-t + TransMix`` (other fields appended, e.g. ``decoder=mask``)."""
    k = dict(key)
    method = k.pop('method', None)
    text = str(k.pop('model', '?')) + (_METHOD_NAME.get(str(method), f' + {method}') if method else '')
    return ' '.join([text, *(f'{f}={v}' for f, v in k.items())])


# ---------------------------------------------------------------------------------------------------------
# Which row a transfer run belongs to: the backbone file's metadata decides the method (and the model).

#: architecture names stage 1 writes into backbone files (timm; our PVT) → the tables' ``model`` keys
ARCH_MODELS = {'deit_tiny_patch16_224': 'deit-t', 'deit_small_patch16_224': 'deit-s',
               'deit_base_patch16_224': 'deit-b', 'pvt_tiny': 'pvt-t', 'pvt_small': 'pvt-s', 'pvt_medium': 'pvt-m',
               'pvt_large': 'pvt-l'}
# model_kwargs that make another network than the architecture's name says (the demo models)
_SIZE_KWARGS = ('embed_dim', 'embed_dims', 'depth', 'depths', 'num_heads', 'patch_size', 'mlp_ratio', 'mlp_ratios',
                'sr_ratios')


class TableRowError(ValueError):
    """The table row given for a run contradicts the backbone the run was trained from."""


def row_from_backbone(meta: dict) -> dict:
    """The ``table_row`` fields a backbone file's metadata decides: ``method``, and ``model`` when ``arch`` is
    one of the papers' architectures at its own size."""
    out = {}
    if meta.get('method'):
        out['method'] = str(meta['method'])
    kwargs = meta.get('model_kwargs') or {}
    if meta.get('arch') in ARCH_MODELS and not any(k in kwargs for k in _SIZE_KWARGS):
        out['model'] = ARCH_MODELS[meta['arch']]
    return out


def resolve_table_row(row, derived: dict, *, explicit: dict, source: str, config: str):
    """The run's table row: the config's ``row`` with the fields ``derived`` from the backbone (``source``, its
    file) put in. A field given explicitly (``--cfg-options table_row.<field>=...``) that contradicts the backbone
    raises :class:`TableRowError` naming both; a config default it replaces is reported in the notes.
    Returns ``(row, notes)``; ``row`` stays ``None`` when the config is no row of the tables."""
    notes = []
    for k, v in derived.items():
        if k in explicit and str(explicit[k]) != str(v):
            raise TableRowError(
                f'--cfg-options table_row.{k}={explicit[k]} contradicts the backbone the run was trained from: '
                f'{source} says {k}={v!r}. Leave table_row.{k} out (it follows the backbone), or use the backbone '
                f'of {k} {explicit[k]!r}')
    if row is None:
        return None, notes
    out = dict(row)
    for k, v in derived.items():
        if out.get(k) is not None and str(out[k]) != str(v):
            notes.append(f'table_row.{k} = {v!r} from {source} (the config {config} says {out[k]!r})')
        out[k] = v
    return out, notes


def explicit_row_options(cfg_options: dict) -> dict:
    """The ``table_row`` fields set on the command line (``table_row.method=...`` or ``table_row={...}``)."""
    out = {}
    for key, value in (cfg_options or {}).items():
        if key == 'table_row' and isinstance(value, dict):
            out.update(value)
        elif str(key).startswith('table_row.'):
            out[str(key).split('.', 1)[1]] = value
    return out


def backbone_checkpoint(model_cfg) -> str | None:
    """The weight file a config's backbone starts from (``checkpoint``, or ``init_cfg=Pretrained``)."""
    backbone = (model_cfg or {}).get('backbone') or {}
    if isinstance(backbone, dict):
        if backbone.get('checkpoint'):
            return backbone['checkpoint']
        init = backbone.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            return init.get('checkpoint')
    return None


#: top-level config entry in which tools/train.py records the backbone file a run starts from (its metadata at
#: training time); it is stored with the config in every checkpoint, where tools/test.py finds it
BACKBONE_RECORD = 'pretrained_backbone'


def backbone_record(model_cfg) -> dict | None:
    """``dict(file=..., arch=..., method=..., ...)`` of the backbone file a training config starts from, or
    ``None`` (no backbone file, or one without metadata)."""
    from mixcore.weights.backbone_file import read_backbone_meta
    path = backbone_checkpoint(model_cfg)
    meta = read_backbone_meta(path) if path else {}
    if not meta:
        return None
    keep = ('arch', 'method', 'model_kwargs', 'img_size', 'patch_size', 'epochs', 'top1', 'source_config')
    return dict(file=str(path), **{k: meta.get(k) for k in keep})


def derived_row_of_checkpoint(checkpoint: str) -> tuple[dict, str | None]:
    """The row fields of the run that wrote ``checkpoint``: from the backbone record its stored training config
    carries (:data:`BACKBONE_RECORD`, written by ``tools/train.py``), else from the metadata of the backbone file
    that config names (checkpoints of older runs). The stored config is read as data
    (:func:`mixseg.config_guard.plain_config`)."""
    from mixcore.weights.backbone_file import read_backbone_meta
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.read import read_file
    from .config_guard import plain_config
    try:
        ckpt = read_file(checkpoint, mmap=True)
        text = ((ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}).get('cfg')
        stored = plain_config(text, checkpoint).to_dict() if text else {}
    except CheckpointError:
        return {}, None  # the run itself reports the file
    record = stored.get(BACKBONE_RECORD)
    if isinstance(record, dict) and record:
        return row_from_backbone(record), f'{record.get("file")} (the backbone the run that wrote {checkpoint} ' \
                                          f'started from)'
    path = backbone_checkpoint(stored.get('model'))
    meta = read_backbone_meta(path) if path else {}
    if meta:
        return row_from_backbone(meta), f'{path} (the backbone file named by the config stored in {checkpoint})'
    return {}, None


@dataclass
class Cell:
    published: float | None
    ours: float | None
    status: str | None = None   # the setup of our result (Result.status); None: no result
    na: bool = False            # the result says the metric does not apply (e.g. top-5 of < 5 classes)

    @property
    def diff(self):
        if self.published is None or self.ours is None:
            return None
        return self.ours - self.published


def table_rows(table: Table, col: Collection) -> tuple:
    """The paper's rows, then an extra row (no published numbers) per result key the table has no row for."""
    known = {row.key for row in table.rows}
    extra = sorted({key for (t, key, _) in col.results if t == table.name and key not in known}, key=str)
    blank = ('',) * (len(table.label_headers) - 1)
    return table.rows + tuple(Row(key, (f'{describe_key(key)} (no paper row)', *blank),
                                  (None,) * len(table.columns), extra=True) for key in extra)


def build_table(table: Table, col: Collection) -> list[tuple[Row, list[Cell]]]:
    out = []
    for row in table_rows(table, col):
        cells = []
        for c, pub in zip(table.columns, row.published):
            r = col.results.get((table.name, row.key, c.tag))
            v = _metric(r.metrics, c.metric, missing=Ellipsis) if r else Ellipsis
            ours = float(v) * c.scale if isinstance(v, (int, float)) and math.isfinite(v) else None
            # present but no number ('n/a', null): the metric does not apply to the run
            cells.append(Cell(pub, ours, r.status if r else None, na=v is not Ellipsis and ours is None))
        out.append((row, cells))
    return out


def _fmt(v, signed=False):
    if v is None:
        return '—'
    return f'{v:+.1f}' if signed else f'{v:.1f}'


def cell_text(cell: Cell, reference: bool) -> str:
    if reference:
        return f'{_fmt(cell.published)} (ref.)'
    if cell.ours is None:
        return f'{_fmt(cell.published)} / {"n/a" if cell.na else "not run"}'
    mark = MARKS.get(cell.status or 'paper', '')
    return f'{_fmt(cell.published)} / {_fmt(cell.ours)}{mark} / {_fmt(cell.diff, True)}'


def _where(r: Result) -> str:
    return f'{describe_key(r.key)} [{r.tag}]: {"; ".join(r.reasons)} — {r.path}'


def table_notes(table: Table, col: Collection) -> list[str]:
    """What a reader of the table must know: results of no paper row (shown as extra rows), results left out
    or marked because their data or schedule is not the paper's, results whose setup is unknown."""
    mine = [r for (t, _, _), r in sorted(col.results.items(), key=lambda kv: str(kv[0])) if t == table.name]
    notes = [E_PUBLISHED_NOTE] if table.name == 'E' else []
    notes += [f'not in any table: Table {table.name} has no row {describe_key(r.key)} [{r.tag}] — {r.path} '
             '(shown as an extra row, without published numbers)' for r in unmatched(col) if r.table == table.name]
    paper = paper_text(table.name)
    demo = [r for r in mine if r.status == 'demo']
    if demo:
        notes.append(f'{MARKS["demo"]} {_MARK_TEXT["demo"]} ({len(demo)} result(s); the paper: {paper}): '
                     f'{"; ".join(demo[0].reasons)}')
    notes += [f'{MARKS[r.status]} {_MARK_TEXT[r.status]}: {_where(r)}' for r in mine
              if r.status in ('nonstandard', 'unknown')]
    notes += [f'left out, not the paper\'s data/schedule ({paper}; --include-nonstandard shows it marked '
              f'{MARKS["nonstandard"]}): {_where(r)}' for r in col.left_out if r.table == table.name]
    return notes


def render(table: Table, col: Collection, fmt: str = 'md', note: str = '') -> str:
    built = build_table(table, col)
    notes = table_notes(table, col)
    if fmt == 'json':
        return json.dumps(dict(table=table.name, title=table.title, note=note, notes=notes, rows=[
            dict(row=dict(row.key), label=list(row.label), reference=row.reference, extra=row.extra,
                 cells={c.name: dict(published=cell.published, ours=cell.ours, diff=cell.diff, setup=cell.status,
                                     na=cell.na)
                        for c, cell in zip(table.columns, cells)}) for row, cells in built]), indent=2)
    headers = list(table.label_headers) + [c.name for c in table.columns]
    if fmt == 'csv':
        lines = [','.join(headers + ['kind'])]
        for row, cells in built:
            for kind in ('published', 'ours', 'diff'):
                vals = [getattr(cell, kind) for cell in cells]
                lines.append(','.join([*row.label, *('' if v is None else f'{v:.2f}' for v in vals), kind]))
            lines.append(','.join([*row.label, *(cell.status or '' for cell in cells), 'setup']))
        return '\n'.join(lines)
    if fmt != 'md':
        raise ValueError(f'unknown format {fmt!r} (md, csv, json)')
    lines = [f'### Table {table.name}: {table.title}', '',
             'cells: published / ours / ours − published' + (f' — {note}' if note else ''), '',
             '| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for row, cells in built:
        lines.append('| ' + ' | '.join([*row.label, *(cell_text(c, row.reference) for c in cells)]) + ' |')
    if notes:
        lines += [''] + [f'* {n}' for n in notes]
    return '\n'.join(lines)


def render_tables(work_dirs: Iterable[str | Path], tables: Iterable[str], fmt: str = 'md', note: str = '',
                  warn=None, include_nonstandard: bool = False) -> tuple[Collection, str]:
    """Collect the results under ``work_dirs`` and render the named tables as one text; every file or work dir
    that :func:`collect` skipped, every result of no paper row and every result left out (not the paper's data
    or schedule, unless ``include_nonstandard``) is reported through ``warn`` (default: a line on stderr)."""
    tables = list(tables)
    col = collect(work_dirs, include_nonstandard=include_nonstandard)
    say = warn or (lambda msg: print(msg, file=sys.stderr))
    for path, why in col.skipped:
        say(f'warning: skipped {path}: {why}')
    for r in unmatched(col):
        if r.table in tables:
            say(f'note: not in any table: Table {r.table} has no row {describe_key(r.key)} — {r.path} (shown as '
                'an extra row)')
    for r in col.left_out:
        if r.table in tables:
            say(f'note: left out of Table {r.table} (not the paper\'s data/schedule; --include-nonstandard shows it): '
                f'{_where(r)}')
    texts = [render(TABLES[t], col, fmt, note) for t in tables]
    return col, ('[\n' + ',\n'.join(texts) + '\n]' if fmt == 'json' else '\n\n'.join(texts))


def missing_cells(table: Table, col: Collection) -> list[tuple[tuple, str]]:
    """(row label, column) of every cell of a paper row (not a reference) without a result."""
    return [(row.label, c.name) for row, cells in build_table(table, col) if not row.reference and not row.extra
            for c, cell in zip(table.columns, cells) if cell.ours is None and not cell.na]


def baseline_deltas(table: Table, col: Collection) -> list[tuple[str, str, float | None, float | None]]:
    """The papers' claim, per method row and column: (row label, column, published Δ, our Δ) with
    Δ = method − baseline of the same model/decoder (the row whose key has ``method='baseline'``)."""
    built = {row.key: (row, cells) for row, cells in build_table(table, col) if not row.reference}
    out = []
    for key, (row, cells) in built.items():
        k = dict(key)
        if k.get('method') in (None, 'baseline'):
            continue
        base = built.get(_key(**dict(k, method='baseline')))
        if base is None:
            continue
        for c, cell, bcell in zip(table.columns, cells, base[1]):
            pub = None if cell.published is None or bcell.published is None else cell.published - bcell.published
            ours = None if cell.ours is None or bcell.ours is None else cell.ours - bcell.ours
            out.append((' '.join(row.label).strip(), c.name, pub, ours))
    return out


def plot(tables: Iterable[Table], col: Collection, out: str | Path, note: str = '') -> Path:
    """Per table: the absolute values (published vs ours, every run row and column) and beside them the gain over
    the baseline, Δ = method − baseline, published vs ours. Legends sit outside the axes, never over a bar. With
    Table E, its occlusion and shuffling curves go beside: ``<out stem>_E_curves.png``
    (:func:`plot_robustness_curves`)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    tables = list(tables)
    ours_name = 'ours' + (f' ({note})' if note else '')
    fig, axes = plt.subplots(len(tables), 2, figsize=(15, 4.2 * len(tables)), squeeze=False,
                             gridspec_kw=dict(width_ratios=(3, 2)))
    for (ax, dax), table in zip(axes, tables):
        labels, pub, ours, marks = [], [], [], set()
        for row, cells in build_table(table, col):
            if row.reference:
                continue
            for c, cell in zip(table.columns, cells):
                labels.append(f'{" ".join(row.label).strip()}\n{c.name}{MARKS.get(cell.status or "paper", "")}')
                marks.add(cell.status)
                pub.append(cell.published if cell.published is not None else float('nan'))
                ours.append(cell.ours if cell.ours is not None else float('nan'))
        _bars(ax, labels, pub, ours, ours_name)
        legend = ', '.join(f'{MARKS[m]} {_MARK_TEXT[m]}' for m in ('demo', 'nonstandard', 'unknown') if m in marks)
        ax.set_title(f'Table {table.name}: {table.title}' + (f'\nours marked: {legend}' if legend else ''),
                     fontsize=9, loc='left')
        ax.set_ylabel('value')
        deltas = baseline_deltas(table, col)
        _bars(dax, [f'{r}\n{c}' for r, c, _, _ in deltas], [d[2] if d[2] is not None else float('nan') for d in deltas],
              [d[3] if d[3] is not None else float('nan') for d in deltas], ours_name)
        dax.axhline(0, color='black', lw=0.6)
        dax.set_title(f'Table {table.name}: gain over the baseline, Δ = method − baseline', fontsize=9, loc='left')
        dax.set_ylabel('Δ')
    # one legend for the figure, above every axes: it cannot cover a bar
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc='upper center', ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (4.2 * len(tables))))

    def write(tmp):
        fig.savefig(tmp, dpi=110, format='png')
    path = atomic_write(out, write)
    plt.close(fig)
    if any(t.name == 'E' for t in tables):
        plot_robustness_curves(col, curves_path(out), note)
    return path


def curves_path(out: str | Path) -> Path:
    """Where :func:`plot` puts Table E's curves, beside its ``out``."""
    out = Path(out)
    return out.with_name(f'{out.stem}_E_curves.png')


def _bars(ax, labels, pub, ours, ours_name):
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], pub, width=0.4, label='published')
    ax.bar([x + 0.2 for x in xs], ours, width=0.4, label=ours_name)
    for x, v in zip(xs, ours):
        if v != v:  # NaN: no result for this cell
            ax.annotate('not run', (x + 0.2, 0), ha='center', va='bottom', fontsize=5, rotation=90, color='grey')
    ax.set_xticks(xs, labels, rotation=60, ha='right', fontsize=6)


def plot_robustness_curves(col: Collection, out: str | Path, note: str = '') -> Path | None:
    """Table E's curves: top-1 against the share of patches dropped (occlusion) and against the shuffle grid,
    one line per (model, method) with results. None when there are no curve results."""
    curves = {}
    for (t, key, tag), r in sorted(col.results.items(), key=lambda kv: str(kv[0])):
        if t != 'E' or tag not in ('occlusion', 'shuffle'):
            continue
        pts = sorted((float(k.split('@', 1)[1].lstrip('g')), float(v)) for k, v in r.metrics.items()
                     if k.startswith('top1@') and isinstance(v, (int, float)))
        curves.setdefault(tag, []).append((describe_key(key) + MARKS.get(r.status, ''), pts))
    if not curves:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, tag, xlabel in ((axes[0], 'occlusion', 'share of patches dropped'),
                            (axes[1], 'shuffle', 'shuffle grid side g (g×g cells)')):
        for label, pts in curves.get(tag, []):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', ms=3, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('top-1 (%)')
        ax.set_title(f'Table E: {tag}' + (f' ({note})' if note else ''), fontsize=9, loc='left')
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)

    def write(tmp):
        fig.savefig(tmp, dpi=100, format='png')
    fig.tight_layout()
    path = atomic_write(out, write)
    plt.close(fig)
    return path

"""The papers' downstream tables A-E as published: their columns, their rows and the published numbers.

A row is identified by its key (the fields of a run's ``table_row`` minus ``table``, e.g. ``table_row =
dict(table='A', model='deit-s', method='transmix', decoder='mask')``). The numbers and their sources:
``docs/paper_facts.md#published-numbers`` (TransMix and MixPro papers for A and B, TokenMix paper for C, MixPro
and TokenMix papers for D; E: the seed papers' robustness rows, published cells empty, see its note).
"""
from __future__ import annotations

from dataclasses import dataclass

from pretrain.mix.methods import list_mix_methods, method_title


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


def row_key(**kw) -> tuple:
    """The key of a row: its fields, sorted."""
    return tuple(sorted(kw.items()))


#: The papers' mixing methods and their titles, in the papers' row order (Tables D and E), read from the method
#: registry (pretrain.mix.methods: each method declares itself next to its code); a method of no paper (a user's)
#: shows as an extra row under its registered title (:func:`with_method`).
METHOD_TITLES = {m.name: m.title for m in list_mix_methods(papers_only=True)}


def with_method(model: str, method) -> str:
    """A model's name with its method, as the papers' row labels: ``DeiT-S + TransMix``; the baseline (or no
    method) adds nothing, a method the tables do not know by its own name."""
    if not method or method == 'baseline':
        return model
    return f'{model} + {method_title(str(method))}'


def describe_key(key: tuple) -> str:
    """A row key in words: ``deit-t + TransMix`` (other fields appended, e.g. ``decoder=mask``)."""
    k = dict(key)
    text = with_method(str(k.pop('model', '?')), k.pop('method', None))
    return ' '.join([text, *(f'{f}={v}' for f, v in k.items())])


_SEG_SS = Column('mIoU', 'ss', 'mIoU')
_SEG_MS = Column('+MS', 'ms', 'mIoU')

TABLE_A = Table(
    'A', 'Pascal Context 59, DeiT-S, mIoU single-scale / multi-scale (TransMix, MixPro papers)',
    ('pretrained', 'decoder'), (_SEG_SS, _SEG_MS),
    tuple(Row(row_key(model='deit-s', method=m, decoder=d), (with_method('DeiT-S', m), dn), pub)
          for d, dn, rows in (
              ('linear', 'Linear', (('baseline', (49.1, 49.6)), ('transmix', (49.7, 50.3)), ('mixpro', (50.3, 50.9)))),
              ('mask', 'Segmenter', (('baseline', (49.7, 50.5)), ('transmix', (50.6, 51.2)), ('mixpro', (51.1, 51.6)))))
          for m, pub in rows)
    + (Row(row_key(model='resnet-101', method='baseline', decoder='deeplabv3plus'), ('ResNet-101', 'DeepLabv3+'),
           (47.3, 48.5), reference=True),))

_DET_COLUMNS = tuple(Column(n, 'ss', m, 100.0) for n, m in (
    ('AP^b', 'bbox_mAP'), ('AP^b_50', 'bbox_mAP_50'), ('AP^b_75', 'bbox_mAP_75'),
    ('AP^m', 'segm_mAP'), ('AP^m_50', 'segm_mAP_50'), ('AP^m_75', 'segm_mAP_75')))

TABLE_B = Table(
    'B', 'COCO, Mask R-CNN 1x (TransMix, MixPro papers)', ('backbone',), _DET_COLUMNS,
    (Row(row_key(model='resnet-50', method='baseline'), ('ResNet-50',), (38.0, 58.6, 41.4, 34.4, 57.1, 36.7), True),
     Row(row_key(model='resnet-101', method='baseline'), ('ResNet-101',), (40.4, 61.1, 44.2, 36.4, 57.7, 38.8), True),
     Row(row_key(model='pvt-s', method='baseline'), ('PVT-S',), (40.4, 62.9, 43.8, 37.8, 60.1, 40.3)),
     Row(row_key(model='pvt-s', method='transmix'), ('TransMix-PVT-S',), (40.9, 63.8, 44.0, 38.4, 60.7, 41.3)),
     Row(row_key(model='pvt-s', method='mixpro'), ('MixPro-PVT-S',), (41.4, 64.2, 44.4, 38.9, 61.1, 41.7))))

TABLE_C = Table(
    'C', 'ADE20K, Segmenter, mIoU / mAcc single-scale and +MS (TokenMix paper)', ('model', 'TokenMix'),
    (Column('mIoU', 'ss', 'mIoU'), Column('mAcc', 'ss', 'mAcc'),
     Column('+MS mIoU', 'ms', 'mIoU'), Column('+MS mAcc', 'ms', 'mAcc')),
    tuple(Row(row_key(model=m, method=meth), (name, '✓' if meth == 'tokenmix' else '✗'), pub)
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
_D_MIXPRO_METHODS = ('baseline', 'transmix', 'mixpro')   # the methods of its number columns
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
_D_TOKENMIX_METHODS = ('baseline', 'tokenmix')
_D_TOKENMIX = (  # (model, name, CutMix, TokenMix)
    ('deit-t', 'DeiT-T', 72.2, 73.2), ('pvt-t', 'PVT-T', 75.1, 75.6), ('cait-xxs24', 'CaiT-XXS-24', 77.6, 78.0),
    ('deit-s', 'DeiT-S', 79.8, 80.8), ('swin-t', 'Swin-T', 81.2, 81.6), ('deit-b', 'DeiT-B', 81.8, 82.9))


def _table_d_rows() -> tuple:
    """One row per (model, method), grouped by model (the MixPro table's order, then the TokenMix table's
    other models); a number both papers give must agree."""
    pub: dict = {}     # (model, method) -> (number, papers)
    names: dict = {}
    for paper, rows, methods in (('MixPro', _D_MIXPRO, _D_MIXPRO_METHODS),
                                 ('TokenMix', _D_TOKENMIX, _D_TOKENMIX_METHODS)):
        for model, name, *nums in rows:
            names.setdefault(model, name)
            for m, v in zip(methods, nums):
                old = pub.get((model, m))
                if old is not None and old[0] != v:
                    raise ValueError(f'table D: {name} {m}: {old[1][0]} gives {old[0]}, {paper} {v}')
                pub[(model, m)] = (v, (old[1] if old else ()) + (paper,))
    order = list(names)
    keys = sorted(pub, key=lambda k: (order.index(k[0]), list(METHOD_TITLES).index(k[1])))
    return tuple(Row(row_key(model=model, method=m), (names[model], METHOD_TITLES[m],
                                                      ', '.join(pub[(model, m)][1])), (pub[(model, m)][0],))
                 for model, m in keys)


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
                tuple(Row(row_key(model='deit-s', method=m), ('DeiT-S', METHOD_TITLES[m]), (None,) * len(E_COLUMNS))
                      for m in METHOD_TITLES))
TABLES[TABLE_E.name] = TABLE_E


def method_row(table: Table, key: tuple):
    """The row of a method of no paper (a user's: ``--method``) in ``table``, made from the table's baseline row with
    the same other fields: its label with the method's title, published cells empty; None for a paper's method or
    when the table has no such baseline row."""
    k = dict(key)
    base_key = row_key(**dict(k, method='baseline'))
    base = next((r for r in table.rows if r.key == base_key and not r.reference), None)
    if base is None or k.get('method') in (None, *METHOD_TITLES):   # (a paper's method: not this kind of row)
        return None
    title, base_title = method_title(str(k['method'])), METHOD_TITLES['baseline']
    if base_title in base.label:   # a method column (D, E): the title there, no paper
        label = tuple(title if c == base_title else c for c in base.label)
        label = label[:2] + ('—',) * (len(label) - 2) if table.name == 'D' else label
    else:                          # the model cell names the method (A, B, C)
        label = (with_method(base.label[0], k['method']),) + base.label[1:]
    return Row(key, label, (None,) * len(table.columns), extra=True)


def method_rows(table: Table, method: str) -> tuple:
    """One row of ``method`` (a method the papers do not have) per baseline row of ``table``, in its order."""
    rows = (method_row(table, row_key(**dict(dict(r.key), method=method))) for r in table.rows
            if not r.reference and dict(r.key).get('method') == 'baseline')
    return tuple(r for r in rows if r is not None)

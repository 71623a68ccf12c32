"""The papers' downstream tables: published numbers, and our results collected from work dirs.

A run belongs to a table row through the ``table_row`` entry of its config, e.g.
``table_row = dict(table='A', model='deit-s', method='transmix', decoder='mask')``; ``tools/test.py``
copies it into ``<work_dir>/results/<tag>.json`` (tag ``ss`` single-scale, ``ms`` multi-scale + flip).
:func:`collect` scans work dirs for those files and :func:`build_tables` lays them out like the papers,
with three numbers per cell: published, ours, difference.

Published numbers: ``shared/PAPERS.md`` (TransMix and MixPro papers for A and B, TokenMix paper for C).
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

# ---------------------------------------------------------------------------------------------------------
# Collecting our results.


@dataclass
class Result:
    table: str
    key: tuple
    tag: str
    metrics: dict
    path: Path


@dataclass
class Collection:
    results: dict = field(default_factory=dict)   # (table, key, tag) -> Result (newest file wins)
    skipped: list = field(default_factory=list)   # (path, reason)


def _metric(metrics: dict, name: str):
    """Look a metric up with or without an evaluator prefix ('coco/bbox_mAP' for 'bbox_mAP')."""
    if name in metrics:
        return metrics[name]
    for k, v in metrics.items():
        if k.rsplit('/', 1)[-1] == name:
            return v
    return None


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
    return Result(table, _key(**row), record.get('tag') or Path(path).stem, record['metrics'], Path(path))


def collect(work_dirs: Iterable[str | Path]) -> Collection:
    """Scan work dirs (recursively) for ``results/*.json`` files."""
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
        col.results[(r.table, r.key, r.tag)] = r
    return col


@dataclass
class Cell:
    published: float | None
    ours: float | None

    @property
    def diff(self):
        if self.published is None or self.ours is None:
            return None
        return self.ours - self.published


def build_table(table: Table, col: Collection) -> list[tuple[Row, list[Cell]]]:
    out = []
    for row in table.rows:
        cells = []
        for c, pub in zip(table.columns, row.published):
            r = col.results.get((table.name, row.key, c.tag))
            v = _metric(r.metrics, c.metric) if r else None
            ours = float(v) * c.scale if isinstance(v, (int, float)) and math.isfinite(v) else None
            cells.append(Cell(pub, ours))
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
        return f'{_fmt(cell.published)} / not run'
    return f'{_fmt(cell.published)} / {_fmt(cell.ours)} / {_fmt(cell.diff, True)}'


def render(table: Table, col: Collection, fmt: str = 'md', note: str = '') -> str:
    built = build_table(table, col)
    if fmt == 'json':
        return json.dumps(dict(table=table.name, title=table.title, note=note, rows=[
            dict(row=dict(row.key), label=list(row.label), reference=row.reference,
                 cells={c.name: dict(published=cell.published, ours=cell.ours, diff=cell.diff)
                        for c, cell in zip(table.columns, cells)}) for row, cells in built]), indent=2)
    headers = list(table.label_headers) + [c.name for c in table.columns]
    if fmt == 'csv':
        lines = [','.join(headers + ['kind'])]
        for row, cells in built:
            for kind in ('published', 'ours', 'diff'):
                vals = [getattr(cell, kind) for cell in cells]
                lines.append(','.join([*row.label, *('' if v is None else f'{v:.2f}' for v in vals), kind]))
        return '\n'.join(lines)
    if fmt != 'md':
        raise ValueError(f'unknown format {fmt!r} (md, csv, json)')
    lines = [f'### Table {table.name}: {table.title}', '',
             'cells: published / ours / ours − published' + (f' — {note}' if note else ''), '',
             '| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for row, cells in built:
        lines.append('| ' + ' | '.join([*row.label, *(cell_text(c, row.reference) for c in cells)]) + ' |')
    return '\n'.join(lines)


def render_tables(work_dirs: Iterable[str | Path], tables: Iterable[str], fmt: str = 'md', note: str = '',
                  warn=None) -> tuple[Collection, str]:
    """Collect the results under ``work_dirs`` and render the named tables as one text; every file or work dir
    that :func:`collect` skipped is reported through ``warn`` (default: a line on stderr)."""
    col = collect(work_dirs)
    for path, why in col.skipped:
        (warn or (lambda msg: print(msg, file=sys.stderr)))(f'warning: skipped {path}: {why}')
    texts = [render(TABLES[t], col, fmt, note) for t in tables]
    return col, ('[\n' + ',\n'.join(texts) + '\n]' if fmt == 'json' else '\n\n'.join(texts))


def missing_cells(table: Table, col: Collection) -> list[tuple[tuple, str]]:
    """(row label, column) of every non-reference cell without a result."""
    return [(row.label, c.name) for row, cells in build_table(table, col) if not row.reference
            for c, cell in zip(table.columns, cells) if cell.ours is None]


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
            out.append((' '.join(row.label), c.name, pub, ours))
    return out


def plot(tables: Iterable[Table], col: Collection, out: str | Path, note: str = '') -> Path:
    """Per table: the absolute values (published vs ours, every run row and column) and beside them the gain over
    the baseline, Δ = method − baseline, published vs ours. Legends sit outside the axes, never over a bar."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from .checkpoint import atomic_write
    tables = list(tables)
    ours_name = 'ours' + (f' ({note})' if note else '')
    fig, axes = plt.subplots(len(tables), 2, figsize=(15, 4.2 * len(tables)), squeeze=False,
                             gridspec_kw=dict(width_ratios=(3, 2)))
    for (ax, dax), table in zip(axes, tables):
        labels, pub, ours = [], [], []
        for row, cells in build_table(table, col):
            if row.reference:
                continue
            for c, cell in zip(table.columns, cells):
                labels.append(f'{" ".join(row.label)}\n{c.name}')
                pub.append(cell.published if cell.published is not None else float('nan'))
                ours.append(cell.ours if cell.ours is not None else float('nan'))
        _bars(ax, labels, pub, ours, ours_name)
        ax.set_title(f'Table {table.name}: {table.title}', fontsize=9, loc='left')
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
    return path


def _bars(ax, labels, pub, ours, ours_name):
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], pub, width=0.4, label='published')
    ax.bar([x + 0.2 for x in xs], ours, width=0.4, label=ours_name)
    for x, v in zip(xs, ours):
        if v != v:  # NaN: no result for this cell
            ax.annotate('not run', (x + 0.2, 0), ha='center', va='bottom', fontsize=5, rotation=90, color='grey')
    ax.set_xticks(xs, labels, rotation=60, ha='right', fontsize=6)

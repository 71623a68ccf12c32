"""The tables as the papers lay them out, with three numbers per cell: published, ours, difference (markdown,
csv or json), with the notes a reader needs (results of no paper row, results not of the paper's setup); the
papers' claim per cell (:func:`baseline_deltas`) and the cells still without a result (:func:`missing_cells`).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .published import E_PUBLISHED_NOTE, TABLES, Row, Table, describe_key, method_row, method_rows, row_key
from .results import Collection, Result, collect, metric_value, unmatched
from .setups import paper_text


#: how the tables mark our number of a result that is not of the paper's setup
MARKS = {'paper': '', 'unknown': '?', 'demo': '†', 'nonstandard': '*'}
MARK_TEXT = {'unknown': 'data/schedule unknown', 'demo': 'demo run: generated data, toy schedule',
              'nonstandard': "not the paper's data/schedule (shown with --include-nonstandard)"}


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


def table_rows(table: Table, col: Collection, methods=()) -> tuple:
    """The paper's rows, the rows of ``methods`` (methods of no paper, e.g. ``--method``: one per baseline row, run
    or not), then an extra row (no published numbers) per result key the table has no row for yet."""
    planned = tuple(r for m in methods for r in method_rows(table, m))
    known = {row.key for row in table.rows + planned}
    extra = sorted({key for (t, key, _) in col.results if t == table.name and key not in known}, key=str)
    blank = ('',) * (len(table.label_headers) - 1)
    # a method the paper has not, on a row the paper has for the baseline: that row's label with the method's title
    return table.rows + planned + tuple(
        method_row(table, key) or Row(key, (f'{describe_key(key)} (no paper row)', *blank), (None,) * len(table.columns),
                                      extra=True) for key in extra)


def build_table(table: Table, col: Collection, methods=()) -> list[tuple[Row, list[Cell]]]:
    out = []
    for row in table_rows(table, col, methods):
        cells = []
        for c, pub in zip(table.columns, row.published):
            r = col.results.get((table.name, row.key, c.tag))
            v = metric_value(r.metrics, c.metric, missing=Ellipsis) if r else Ellipsis
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
        notes.append(f'{MARKS["demo"]} {MARK_TEXT["demo"]} ({len(demo)} result(s); the paper: {paper}): '
                     f'{"; ".join(demo[0].reasons)}')
    notes += [f'{MARKS[r.status]} {MARK_TEXT[r.status]}: {_where(r)}' for r in mine
              if r.status in ('nonstandard', 'unknown')]
    notes += [f'left out, not the paper\'s data/schedule ({paper}; --include-nonstandard shows it marked '
              f'{MARKS["nonstandard"]}): {_where(r)}' for r in col.left_out if r.table == table.name]
    return notes


def render(table: Table, col: Collection, fmt: str = 'md', note: str = '', methods=()) -> str:
    built = build_table(table, col, methods)
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
                  warn=None, include_nonstandard: bool = False, methods=()) -> tuple[Collection, str]:
    """Collect the results under ``work_dirs`` and render the named tables as one text; every file or work dir
    that :func:`collect` skipped, every result of no paper row and every result left out (not the paper's data
    or schedule, unless ``include_nonstandard``) is reported through ``warn`` (default: a line on stderr)."""
    tables = list(tables)
    col = collect(work_dirs, include_nonstandard=include_nonstandard)
    say = warn or (lambda msg: print(msg, file=sys.stderr))
    for path, why in col.skipped:
        say(f'warning: skipped {path}: {why}')
    for r in unmatched(col):
        if r.table in tables and method_row(TABLES[r.table], r.key) is None:   # (a method of no paper: its row)
            say(f'note: not in any table: Table {r.table} has no row {describe_key(r.key)} — {r.path} (shown as '
                'an extra row)')
    for r in col.left_out:
        if r.table in tables:
            say(f'note: left out of Table {r.table} (not the paper\'s data/schedule; --include-nonstandard shows it): '
                f'{_where(r)}')
    texts = [render(TABLES[t], col, fmt, note, methods) for t in tables]
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
        base = built.get(row_key(**dict(k, method='baseline')))
        if base is None:
            continue
        for c, cell, bcell in zip(table.columns, cells, base[1]):
            pub = None if cell.published is None or bcell.published is None else cell.published - bcell.published
            ours = None if cell.ours is None or bcell.ours is None else cell.ours - bcell.ours
            out.append((' '.join(row.label).strip(), c.name, pub, ours))
    return out

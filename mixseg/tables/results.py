"""Our results: the ``<work_dir>/results/<tag>.json`` files that ``tools/test.py`` (and ``tools/robustness.py``,
Table D's :func:`write_top1_result`) write, read back and collected by table row.

A run belongs to a table row through the ``table_row`` entry of its config, which the results file copies (tag
``ss`` single-scale, ``ms`` multi-scale + flip, Table E: the benchmark). :func:`collect` scans work dirs for
those files; each result carries how its setup compares with the paper's (:func:`.setups.check_setup`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .published import TABLES, TOP1, row_key
from .setups import check_setup


@dataclass
class Result:
    table: str
    key: tuple
    tag: str
    metrics: dict
    path: Path
    setup: dict | None = None      # what it was trained/tested on (mixcore.provenance.result_setup)
    status: str = 'unknown'        # check_setup: 'paper' | 'demo' | 'nonstandard' | 'unknown'
    reasons: tuple = ()            # check_setup: how the setup differs from the paper's, or what is unknown


_RANK = {'paper': 0, 'unknown': 1, 'demo': 2, 'nonstandard': 2}   # which result fills a cell (then newest)


@dataclass
class Collection:
    results: dict = field(default_factory=dict)   # (table, key, tag) -> Result (best setup, then newest file)
    skipped: list = field(default_factory=list)   # (path, reason)
    left_out: list = field(default_factory=list)  # Results not of the paper's setup, left out of the tables


def metric_value(metrics: dict, name: str, missing=None):
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
    key = row_key(**row)
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

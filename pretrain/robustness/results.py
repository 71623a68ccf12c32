"""A benchmark record as a results file ``<work_dir>/results/<benchmark>.json`` (the layout of
:func:`mixcore.runtime.write_results`, which :mod:`mixseg.tables` collects into Table E); the full record (per
ratio / grid, images, model) goes to ``<work_dir>/robustness/<benchmark>.json``."""
from __future__ import annotations

import json
from pathlib import Path

from mixcore.atomic_write import atomic_write_text


def flat_metrics(record: dict) -> dict:
    """The numbers of a record under flat names: ``top1`` (ImageNet-A/-R), ``aupr``/``auroc`` (ImageNet-O),
    ``top1@<ratio>``/``confidence@<ratio>`` (occlusion), ``top1@g<g>`` (shuffle)."""
    bench = record['benchmark']
    if bench == 'occlusion':
        out = {}
        for r in record['results']:
            out[f'top1@{r["ratio"]:g}'] = r['top1']
            out[f'confidence@{r["ratio"]:g}'] = r['confidence']
        return out
    if bench == 'shuffle':
        return {f'top1@g{r["grid"]}': r['top1'] for r in record['results']}
    if bench == 'imagenet-o':
        return dict(aupr=record['aupr'], auroc=record['auroc'])
    return dict(top1=record['top1'])


def write_robustness_result(work_dir, record: dict, loaded, table_row: dict) -> Path:
    """``table_row``: Table E's row of the model (:func:`mixseg.tables.rows.robustness_row`, which knows the
    papers' names; stage 1 does not)."""
    from mixcore.runtime import write_results
    from mixcore.provenance import checkpoint_setup
    setup = dict(train=checkpoint_setup(loaded.source), test=None, benchmark_images=record.get('images'))
    path = write_results(str(work_dir), record['benchmark'], config=None, checkpoint=loaded.source, tta=False,
                         metrics=flat_metrics(record), table_row=table_row, setup=setup)
    # the full record (images, grid, model description) beside, out of results/ (which holds results files only)
    atomic_write_text(Path(work_dir) / "robustness" / f"{record['benchmark']}.json",
                      json.dumps(record, indent=2) + "\n")
    return path

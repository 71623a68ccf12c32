"""A benchmark record as a results file ``<work_dir>/results/<benchmark>.json`` (the layout of
:func:`mixseg.engine.write_results`, which :mod:`mixseg.tables` collects into Table E); the full record (per
ratio / grid, images, model) goes to ``<work_dir>/robustness/<benchmark>.json``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

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


def table_row(loaded, model: Optional[str] = None) -> dict:
    """Table E's row of a model: ``model`` (given, else the papers' name of its architecture at its own size,
    else the architecture) and ``method`` (what the checkpoint records; 'baseline' for official weights)."""
    from mixseg.tables.rows import row_from_backbone
    derived = row_from_backbone(dict(arch=loaded.arch, model_kwargs=loaded.model_kwargs))
    return dict(table='E', model=model or derived.get('model', loaded.arch), method=loaded.method or 'baseline')


def write_robustness_result(work_dir, record: dict, loaded, model: Optional[str] = None) -> Path:
    from mixseg.engine import write_results
    from mixseg.provenance import checkpoint_setup
    setup = dict(train=checkpoint_setup(loaded.source), test=None, benchmark_images=record.get('images'))
    path = write_results(str(work_dir), record['benchmark'], config=None, checkpoint=loaded.source, tta=False,
                         metrics=flat_metrics(record), table_row=table_row(loaded, model), setup=setup)
    # the full record (images, grid, model description) beside, out of results/ (which holds results files only)
    atomic_write_text(Path(work_dir) / "robustness" / f"{record['benchmark']}.json",
                      json.dumps(record, indent=2) + "\n")
    return path

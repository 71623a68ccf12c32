"""Table E's steps: each robustness benchmark (``tools/robustness.py``) on the final training checkpoint of a
pretraining (the classifier: a backbone file has no head), into ``<work root>/robustness/<model>_<method>/results/
<benchmark>.json`` under the row's ``table_row``.

Data: ImageNet val for occlusion and shuffling, ImageNet-A/-R/-O in their released layouts under ``data/``
(``data/imagenet-a``, ``data/imagenet-r``, ``data/imagenet-o``); the demo reads the generated ones
(:mod:`mixcore.demo_data`, dataset ``robustness``) and the demo ImageNet val, with ``--any-classes`` (the demo
models know the demo's shape classes, not ImageNet-1k's) and ``--max-images 50``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from .steps import ROOT, Step, rel

BENCHMARKS = ('occlusion', 'shuffle', 'imagenet-a', 'imagenet-r', 'imagenet-o')
#: demo: images per benchmark folder (an even share of every class), so that Table E adds little to `make demo`
DEMO_MAX_IMAGES = 50
REAL_DATA = {'val': 'data/imagenet/val', 'imagenet-a': 'data/imagenet-a', 'imagenet-r': 'data/imagenet-r',
             'imagenet-o': 'data/imagenet-o'}


def data_dirs(demo: bool, data_root: Path) -> dict:
    """The folder of each benchmark (and ``val``: ImageNet val)."""
    if not demo:
        return {k: ROOT / v for k, v in REAL_DATA.items()}
    from mixcore.demo_data import DATA_ROOTS
    root = Path(data_root) / DATA_ROOTS['robustness']
    return dict(val=Path(data_root) / DATA_ROOTS['imagenet'] / 'val',
                **{b: root / b for b in ('imagenet-a', 'imagenet-r', 'imagenet-o')})


def robustness_steps(row_model: str, pmodel: str, method: str, label: str, ckpt: Optional[Path], deps: list,
                     work_root: Path, dirs: dict, demo: bool, stamped: Callable, blocked: str = '') -> list[Step]:
    """The five benchmark steps of one (model, method); ``ckpt`` None: blocked (``blocked`` says why)."""
    wd = Path(work_root) / 'robustness' / f'{pmodel}_{method}'
    steps = []
    for bench in BENCHMARKS:
        images = dirs['val'] if bench in ('occlusion', 'shuffle') else dirs[bench]
        argv = [bench, '--checkpoint', rel(ckpt) if ckpt else '?', '--images', rel(images)] \
            + (['--val', rel(dirs['val'])] if bench == 'imagenet-o' else []) \
            + ['--work-dir', rel(wd), '--model', row_model, '--no-progress'] \
            + (['--any-classes', '--max-images', str(DEMO_MAX_IMAGES)] if demo else [])
        missing = '' if demo or Path(images).is_dir() else \
            f'missing data: {rel(images)} (the released {bench if bench.startswith("imagenet-") else "ImageNet val"} ' \
            f'folder, <dir>/<wnid>/<image>)'
        steps.append(Step('test', f'robustness_{bench}_{pmodel}_{method}', f'robustness {bench} {pmodel} {method}',
                          [wd / 'results' / f'{bench}.json'], deps=list(deps), script='robustness', argv=argv,
                          command=['python', 'tools/robustness.py', *argv], rows=[label],
                          blocked=blocked or missing, **stamped(wd / f'robustness-{bench}.argv.json', argv, deps)))
    return steps

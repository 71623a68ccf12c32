"""The figure steps of a demo run: the papers' figures for every pretrained demo model, into ``<work root>/figures/``.

Per demo model (its pretrainings, one per method), three steps that run the figure tools:

* ``figures/attention/<model>/`` — ``tools/visualize_attention.py`` on every method's backbone file, side by side
  (a PNG per image, ``attention.json`` says what was drawn),
* ``figures/occlusion/<model>/`` — ``tools/occlusion_robustness.py`` on every method's final training checkpoint
  (the backbone file has no classifier head): ``occlusion.png``, ``occlusion.json``,
* ``figures/mix/<model>/`` — ``tools/visualize_mix.py`` with the model's TransMix checkpoint (else the first method
  there is): ``<mixing method>.png``, also for the methods of ``--method`` (``<name>.png``).

They depend on the model's pretraining steps, are redrawn when those start over, and skipped when done.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .steps import Step, rel

FIGURES = 'figures'
NUM_IMAGES = 3


def figure_steps(pretrains: dict, work_root: Path, images_dir: Path, stamped: Callable, deps_extra=(),
                 methods=None) -> list[Step]:
    """``pretrains``: ``{model: {method: (pretrain step index or None, backbone file, final checkpoint or None)}}``;
    ``stamped(stamp, argv, deps)``: the plan's stamp fields; ``methods``: ``{name: method config}`` drawn by the mix
    figure besides the papers' mixers. Returns the steps (not yet added to the plan)."""
    from pretrain.mix_figure import METHODS as MIX_METHODS
    methods = dict(methods or {})
    extra = [a for name, path in methods.items() for a in ('--method', f'{name}={rel(path)}')]
    out_root = Path(work_root) / FIGURES
    steps = []
    for model, runs in pretrains.items():
        deps = [i for i, _, _ in runs.values() if i is not None] + [d for d in deps_extra if d is not None]
        backbones = [b for _, b, _ in runs.values()]
        ckpts = [c for _, _, c in runs.values() if c is not None]
        images = ['--images', rel(images_dir)]

        def add(kind, script, argv, outputs, out):
            steps.append(Step('figure', f'figure_{kind}_{model}', f'figure {kind} {model}', outputs, deps=list(deps),
                              script=script, argv=argv, command=['python', f'tools/{script}.py', *argv],
                              **stamped(out / f'{kind}.argv.json', argv, deps)))

        out = out_root / 'attention' / model
        add('attention', 'visualize_attention',
            ['--checkpoint', *map(rel, backbones), *images, '--num-images', str(NUM_IMAGES), '--out', rel(out)],
            [out / 'attention.json'], out)
        if ckpts:
            out = out_root / 'occlusion' / model
            add('occlusion', 'occlusion_robustness',
                ['--checkpoint', *map(rel, ckpts), *images, '--out', rel(out), '--no-progress'],
                [out / 'occlusion.json', out / 'occlusion.png'], out)
        _, backbone, ckpt = runs.get('transmix') or next(iter(runs.values()))
        out = out_root / 'mix' / model
        add('mix', 'visualize_mix', ['--checkpoint', rel(ckpt or backbone), *images, '--out', rel(out), *extra],
            [out / f'{m}.png' for m in (*MIX_METHODS, *methods)], out)
    return steps


def list_figures(work_root: Path) -> list[Path]:
    """The figures a demo run drew (PNG files under ``<work root>/figures/``), sorted."""
    return sorted((Path(work_root) / FIGURES).rglob('*.png'))

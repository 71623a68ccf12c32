"""The figures of the demo's pretrained models (``make demo`` draws them into ``<work root>/figures/``).

For each demo model (``<work root>/pretrain/<model>_<method>/``, one per method):

* ``figures/attention/<model>/<image>.png`` — per-layer class attention of every method's backbone file side by side
  (``tools/visualize_attention.py``),
* ``figures/occlusion/<model>/occlusion.{png,json}`` — top-1 / true-class confidence under random patch drop for every
  method's training checkpoint, which has the head (``tools/occlusion_robustness.py``),
* ``figures/mix/<model>/<mixing method>.png`` — what each mixing method does, labelled with the attention of the
  model's TransMix backbone (or the first there is) (``tools/visualize_mix.py``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

METHOD_ORDER = ('baseline', 'transmix', 'mixpro', 'tokenmix')


def pretrained_runs(work_root) -> dict[str, dict[str, Path]]:
    """``{model: {method: work dir}}`` of the finished pretrainings (those with a backbone file)."""
    runs: dict = {}
    for wd in sorted((Path(work_root) / 'pretrain').glob('*_*')):
        if (wd / 'backbone.safetensors').is_file():
            model, _, method = wd.name.rpartition('_')
            runs.setdefault(model, {})[method] = wd
    return {m: dict(sorted(r.items(), key=lambda kv: _order(kv[0]))) for m, r in sorted(runs.items())}


def _order(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def last_checkpoint(work_dir: Path) -> Optional[Path]:
    """The training checkpoint of the last epoch (``epoch_N.pth`` with the largest N)."""
    found = [(int(m.group(1)), p) for p in Path(work_dir).glob('epoch_*.pth')
             if (m := re.fullmatch(r'epoch_(\d+)\.pth', p.name))]
    return max(found)[1] if found else None


def draw_demo_figures(work_root, images_dir, out_dir=None, num_images: int = 3, log: Callable = print) -> list[Path]:
    """Draw the three figures for every demo model under ``work_root``; returns the files written."""
    import mixseg  # noqa: F401  (safe-loading allow-list for the training checkpoints)
    from mixseg.viz.attention import visualize_attention
    from mixseg.viz.models import load_model
    from mixseg.viz.occlusion import occlusion_robustness

    from .mix_figure import visualize_mix
    out_dir = Path(out_dir or Path(work_root) / 'figures')
    written: list[Path] = []
    for model, runs in pretrained_runs(work_root).items():
        backbones = [load_model(wd / 'backbone.safetensors') for wd in runs.values()]
        written += visualize_attention(backbones, images_dir, out_dir / 'attention' / model, num_images)
        ckpts = [c for c in (last_checkpoint(wd) for wd in runs.values()) if c is not None]
        if ckpts:
            written += occlusion_robustness([load_model(c, need_head=True) for c in ckpts], images_dir,
                                            out_dir / 'occlusion' / model, progress=False)
        mix_model = runs.get('transmix') or next(iter(runs.values()))
        written += visualize_mix(load_model(last_checkpoint(mix_model) or mix_model / 'backbone.safetensors'),
                                 out_dir / 'mix' / model, images_dir=images_dir, rows=3, log=lambda *a: None)
        log(f'figures of {model} ({", ".join(runs)}) written to {out_dir}')
    return written

"""Robustness to occlusion: top-1 accuracy and the mean confidence of the true class as a growing share of the
patches is dropped (the TokenMix paper's Fig. 4; TransMix's occlusion study, after Naseer et al. 2021, "Intriguing
properties of vision transformers": random PatchDrop), for several classifiers on one plot
(``tools/occlusion_robustness.py``).

A dropped patch is one cell of the model's token grid (ViT/DeiT: its patch size; PVT v1: 32 px, the stage-4 grid
its class token sees; ``patch`` sets one size for all models) set to zero after normalisation, i.e. to the
dataset's mean colour. Which cells are dropped depends only on (seed, ratio, image index), so every model with the
same grid sees exactly the same occluded images.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from .models import LoadedModel, describe, eval_transform, list_images, normalize

RATIOS = tuple(round(0.1 * i, 1) for i in range(10))   # 0 .. 0.9

__all__ = ['RATIOS', 'drop_masks', 'occlude', 'check_classes', 'evaluate', 'plot_occlusion', 'occlusion_robustness']


def token_stride(model) -> int:
    """Stride in pixels of the token grid the class token attends to."""
    if hasattr(model, 'patch_embed') and hasattr(model.patch_embed, 'patch_size'):
        return int(model.patch_embed.patch_size[0])
    if hasattr(model, 'output_stride'):
        return int(model.output_stride)
    raise ValueError(f'{type(model).__name__}: unknown token grid; pass --patch')


def drop_masks(indices: Sequence[int], grid, ratio: float, seed: int) -> torch.Tensor:
    """Bool B×h×w, True = dropped: ``round(ratio·h·w)`` cells per image, chosen from a generator seeded by
    (seed, ratio, image index) — the same cells for every model and batch size."""
    h, w = grid
    n = h * w
    k = int(round(ratio * n))
    out = torch.zeros(len(indices), n, dtype=torch.bool)
    if k == 0:
        return out.view(-1, h, w)
    g = torch.Generator()
    for row, i in enumerate(indices):
        g.manual_seed((int(seed) * 1_000_003 + int(round(ratio * 1000)) * 7_919 + int(i)) % (2 ** 63))
        out[row, torch.randperm(n, generator=g)[:k]] = True
    return out.view(-1, h, w)


def occlude(images: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Zero the dropped cells of normalised images B×3×H×W (mask B×h×w at ``patch`` pixels per cell)."""
    keep = (~mask).to(images.dtype).repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    H, W = images.shape[-2:]
    if keep.shape[-2:] != (H, W):
        full = torch.ones(images.shape[0], H, W, dtype=images.dtype)
        full[:, :keep.shape[1], :keep.shape[2]] = keep[:, :H, :W]
        keep = full
    return images * keep[:, None]


class _Folder(torch.utils.data.Dataset):
    def __init__(self, paths, targets, loaded, crop_pct):
        self.paths, self.targets, self.loaded = paths, targets, loaded
        self.transform = eval_transform(loaded.img_size, crop_pct)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from mixcore.image_io import read_rgb  # the training reader (EXIF, 16-bit grey, bombs): errors name the file
        return normalize(self.transform(read_rgb(self.paths[i])), self.loaded), self.targets[i], i


def _dataset(images_dir, max_images: Optional[int]):
    paths, labels, classes = list_images(images_dir)
    if not classes or any(c is None for c in labels):
        raise FileNotFoundError(f'{images_dir}: expected the ImageNet-val layout <dir>/<class>/<image> (the class '
                                f'folders, sorted, give the labels the models were trained with)')
    targets = [classes.index(c) for c in labels]
    if max_images is not None and max_images < len(paths):  # an even share of every class, fixed
        step = len(paths) / max_images
        pick = [int(i * step) for i in range(max_images)]
        paths, targets = [paths[i] for i in pick], [targets[i] for i in pick]
    return paths, targets, classes


def check_classes(model: LoadedModel, folders: Sequence[str], images_dir) -> None:
    """Refuse a model whose classes are not the sorted class folders of ``images_dir`` (labels = folder
    positions): by name when the file records its training classes (as the training data checks a val split
    against train), else by count."""
    if model.num_classes != len(folders):
        raise ValueError(f'{model.source}: the model has {model.num_classes} classes, {images_dir} has '
                         f'{len(folders)} class folders; evaluate it on the validation set it was trained for')
    if model.classes is not None and tuple(model.classes) != tuple(folders):
        only_model = [c for c in model.classes if c not in set(folders)]
        only_here = [c for c in folders if c not in set(model.classes)]
        what = (f'only in the model: {only_model[:10]}; only in {images_dir}: {only_here[:10]}' if only_model
                else 'the same names in another order')
        raise ValueError(f'{model.source}: the model was trained with other classes than the class folders of '
                         f'{images_dir} ({what}); labels are positions in the sorted folder list, so they would '
                         f'not match the model\'s. Evaluate it on the validation set of its training data')


@torch.no_grad()
def evaluate(loaded: LoadedModel, paths, targets, ratios=RATIOS, seed: int = 0, patch: Optional[int] = None,
             batch_size: int = 32, workers: int = 0, crop_pct: float = 0.875, progress: bool = True) -> dict:
    """Top-1 (%) and mean true-class probability at each drop ratio; one pass over the images, every ratio per
    batch."""
    from tqdm import tqdm
    patch = patch or token_stride(loaded.model)
    H, W = loaded.img_size
    grid = (-(-H // patch), -(-W // patch))
    loader = torch.utils.data.DataLoader(_Folder(paths, targets, loaded, crop_pct), batch_size=batch_size,
                                         num_workers=workers, shuffle=False)
    correct = torch.zeros(len(ratios), dtype=torch.float64)
    conf = torch.zeros(len(ratios), dtype=torch.float64)
    seen = 0
    with tqdm(total=len(paths) * len(ratios), desc=loaded.label, unit='img', disable=not progress,
              dynamic_ncols=True) as bar:
        for x, y, idx in loader:
            for r, ratio in enumerate(ratios):
                xr = occlude(x, drop_masks(idx.tolist(), grid, ratio, seed), patch) if ratio > 0 else x
                prob = loaded.model(xr).float().softmax(-1)
                correct[r] += (prob.argmax(-1) == y).sum().item()
                conf[r] += prob.gather(1, y[:, None]).sum().item()
                bar.update(len(y))
            seen += len(y)
    return dict(describe(loaded), patch=patch, grid=list(grid), images=seen,
                results=[dict(ratio=float(ratio), top1=100. * float(c) / seen, confidence=float(p) / seen)
                         for ratio, c, p in zip(ratios, correct, conf)])


def plot_occlusion(records: Sequence[dict], out: Path, title: str = '') -> Path:
    """Top-1 and true-class confidence against the dropped share, one line per model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for rec in records:
        ratios = [r['ratio'] for r in rec['results']]
        label = f'{rec["label"]} [{Path(rec["checkpoint"]).name}, {rec["patch"]} px cells]'
        a1.plot(ratios, [r['top1'] for r in rec['results']], marker='o', ms=3, label=label)
        a2.plot(ratios, [r['confidence'] for r in rec['results']], marker='o', ms=3, label=label)
    for ax, name in ((a1, 'top-1 accuracy (%)'), (a2, 'mean probability of the true class')):
        ax.set_xlabel('share of patches dropped')
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    handles, labels = a1.get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=1, fontsize=7, frameon=False)
    n = len(records)
    fig.suptitle(title or 'robustness to occlusion (random patch drop)', fontsize=9)
    fig.tight_layout(rect=(0, 0.06 * n + 0.04, 1, 1))   # the legend sits below the axes, never over a line

    def write(tmp):
        fig.savefig(tmp, dpi=100, format='png')
    path = atomic_write(out, write)
    plt.close(fig)
    return path


def occlusion_robustness(models: Sequence[LoadedModel], images_dir, out_dir, *, ratios=RATIOS, seed: int = 0,
                         patch: Optional[int] = None, batch_size: int = 32, workers: int = 0,
                         max_images: Optional[int] = None, crop_pct: float = 0.875,
                         progress: bool = True) -> tuple[Path, Path]:
    """Evaluate every model; write ``out_dir/occlusion.json`` and ``out_dir/occlusion.png``."""
    from mixcore.atomic_write import atomic_write_text
    paths, targets, classes = _dataset(images_dir, max_images)
    for m in models:
        check_classes(m, classes, images_dir)
    records = [evaluate(m, paths, targets, ratios, seed, patch, batch_size, workers, crop_pct, progress)
               for m in models]
    out_dir = Path(out_dir)
    report = dict(images_dir=str(images_dir), num_images=len(paths), num_classes=len(classes), seed=seed,
                  ratios=list(ratios), how='random cells of the token grid set to the mean colour (0 after '
                  'normalisation); the same cells for every model with the same grid', models=records)
    json_path = atomic_write_text(out_dir / 'occlusion.json', json.dumps(report, indent=2) + '\n')
    png = plot_occlusion(records, out_dir / 'occlusion.png',
                         f'robustness to occlusion: {len(paths)} images of {images_dir}, seed {seed}')
    return json_path, png

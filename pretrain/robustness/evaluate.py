"""The robustness benchmarks on a stage-1 classifier (a :class:`pretrain.viz.models.LoadedModel` with its head).

Each function returns a JSON-ready dict (the model described, the images counted, the numbers):

* :func:`occlusion` — top-1 and true-class confidence on ImageNet val as a share of the patches is dropped (the
  definition of :mod:`pretrain.viz.occlusion`, reused);
* :func:`shuffling` — top-1 on ImageNet val with the image cut into g×g cells, shuffled (:mod:`.shuffle`);
* :func:`subset_top1` — top-1 on ImageNet-A or ImageNet-R (200 classes each), logits restricted to the folder's
  classes;
* :func:`ood_detection` — ImageNet-O against ImageNet val: AUPR (ImageNet-O = positive) and AUROC of the negative
  maximum softmax probability.

Folders are read in their released layout ``<dir>/<wnid>/<image>`` (:mod:`.classes` maps the wnids to the model's
outputs and refuses what does not map); images with the training reader (:func:`mixcore.image_io.read_rgb`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from pretrain.viz.models import describe
from pretrain.viz.occlusion import RATIOS, _dataset, _Folder
from pretrain.viz.occlusion import evaluate as occlusion_evaluate

from .classes import class_indices, model_classes
from .metrics import aupr, auroc, msp_anomaly_score, restricted_top1
from .shuffle import GRIDS, shuffle_patches, shuffle_perms

__all__ = ['occlusion', 'shuffling', 'subset_top1', 'ood_detection']


def _labelled(loaded, folder, max_images, any_classes):
    """(paths, targets as model output indices, class output indices) of a ``<dir>/<class>/<image>`` folder."""
    paths, targets, names = _dataset(folder, max_images)
    idx = class_indices(folder, names, model_classes(loaded, any_classes))
    return paths, targets, idx


@torch.no_grad()
def _run(loaded, paths, targets, step: Callable, *, batch_size, workers, crop_pct, progress, desc, passes=1):
    """Feed every image once through ``step(x, y, idx)``; the progress bar counts ``passes`` per image."""
    from tqdm import tqdm
    loader = torch.utils.data.DataLoader(_Folder(paths, targets, loaded, crop_pct), batch_size=batch_size,
                                         num_workers=workers, shuffle=False)
    with tqdm(total=len(paths) * passes, desc=f'{desc} {loaded.label}', unit='img', disable=not progress,
              dynamic_ncols=True) as bar:
        for x, y, i in loader:
            step(x, y, i)
            bar.update(len(y) * passes)


def _logits(loaded, paths, **kw) -> torch.Tensor:
    out = []
    _run(loaded, paths, [0] * len(paths), lambda x, y, i: out.append(loaded.model(x).float()), **kw)
    return torch.cat(out)


def occlusion(loaded, val_dir, *, ratios=RATIOS, seed=0, patch=None, max_images=None, any_classes=False,
              batch_size=32, workers=0, crop_pct=0.875, progress=True) -> dict:
    """Top-1 (%) and mean true-class probability per share of dropped patches (:mod:`pretrain.viz.occlusion`)."""
    paths, targets, idx = _labelled(loaded, val_dir, max_images, any_classes)
    out = occlusion_evaluate(loaded, paths, [idx[t] for t in targets], ratios, seed, patch, batch_size, workers,
                             crop_pct, progress)
    return dict(out, benchmark='occlusion', images_dir=str(val_dir), seed=seed)


def shuffling(loaded, val_dir, *, grids: Sequence[int] = GRIDS, seed=0, max_images=None, any_classes=False,
              batch_size=32, workers=0, crop_pct=0.875, progress=True) -> dict:
    """Top-1 (%) per shuffle grid side g (g×g cells permuted; g = 1 is the intact image)."""
    paths, targets, idx = _labelled(loaded, val_dir, max_images, any_classes)
    H, W = loaded.img_size
    if any(g < 1 or g > min(H, W) for g in grids):
        raise ValueError(f'shuffle grid sides must lie in 1..{min(H, W)} for {H}×{W} inputs, got {list(grids)}')
    out_idx = torch.as_tensor(idx)
    correct = torch.zeros(len(grids), dtype=torch.float64)

    def step(x, y, i):
        for k, g in enumerate(grids):
            xg = shuffle_patches(x, g, shuffle_perms(i.tolist(), g, seed)) if g > 1 else x
            correct[k] += (loaded.model(xg).argmax(-1) == out_idx[y]).sum()

    _run(loaded, paths, targets, step, batch_size=batch_size, workers=workers, crop_pct=crop_pct,
         progress=progress, desc='shuffle', passes=len(grids))
    return dict(describe(loaded), benchmark='shuffle', images_dir=str(val_dir), seed=seed, images=len(paths),
                results=[dict(grid=int(g), top1=100. * float(c) / len(paths)) for g, c in zip(grids, correct)])


def subset_top1(loaded, folder, *, benchmark='imagenet-a', max_images=None, any_classes=False, batch_size=32,
                workers=0, crop_pct=0.875, progress=True) -> dict:
    """Top-1 (%) on a 200-class ImageNet subset (ImageNet-A/-R): the logits restricted to the folder's classes."""
    paths, targets, names = _dataset(folder, max_images)
    idx = class_indices(folder, names, model_classes(loaded, any_classes))
    hits = []
    _run(loaded, paths, targets,
         lambda x, y, i: hits.append(restricted_top1(loaded.model(x).float(), y, idx)),
         batch_size=batch_size, workers=workers, crop_pct=crop_pct, progress=progress, desc=benchmark)
    hits = torch.cat(hits)
    return dict(describe(loaded), benchmark=benchmark, images_dir=str(folder), images=len(paths),
                num_classes=len(names), top1=100. * float(hits.double().mean()))


def ood_detection(loaded, ood_dir, val_dir, *, max_images=None, restrict_to_ood_classes=False, any_classes=False,
                  batch_size=32, workers=0, crop_pct=0.875, progress=True) -> dict:
    """ImageNet-O (positives) against ImageNet val (negatives): AUPR and AUROC (%) of the anomaly score −MSP.

    The softmax runs over all the model's classes, or over ImageNet-O's 200 (``restrict_to_ood_classes``)."""
    o_paths, _, o_names = _dataset(ood_dir, max_images)
    space = model_classes(loaded, any_classes)
    o_idx = class_indices(ood_dir, o_names, space)
    v_paths, _, v_names = _dataset(val_dir, max_images)
    class_indices(val_dir, v_names, space)
    kw = dict(batch_size=batch_size, workers=workers, crop_pct=crop_pct, progress=progress)
    scores = []
    for paths, desc in ((o_paths, 'imagenet-o'), (v_paths, 'in-dist val')):
        logits = _logits(loaded, paths, desc=desc, **kw)
        if restrict_to_ood_classes:
            logits = logits[:, o_idx]
        scores.append(msp_anomaly_score(logits))
    positive = torch.cat([torch.ones(len(o_paths), dtype=torch.bool), torch.zeros(len(v_paths), dtype=torch.bool)])
    s = torch.cat(scores)
    return dict(describe(loaded), benchmark='imagenet-o', images_dir=str(ood_dir), val_dir=str(val_dir),
                images=len(o_paths), val_images=len(v_paths), score='negative maximum softmax probability',
                softmax_over='the ImageNet-O classes' if restrict_to_ood_classes else 'all classes',
                aupr=100. * aupr(s, positive), auroc=100. * auroc(s, positive))


def run(benchmark: str, loaded, **kw) -> dict:
    """Dispatch by benchmark name: occlusion | shuffle | imagenet-a | imagenet-r | imagenet-o."""
    if benchmark == 'occlusion':
        return occlusion(loaded, kw.pop('images'), **kw)
    if benchmark == 'shuffle':
        return shuffling(loaded, kw.pop('images'), **kw)
    if benchmark in ('imagenet-a', 'imagenet-r'):
        return subset_top1(loaded, kw.pop('images'), benchmark=benchmark, **kw)
    if benchmark == 'imagenet-o':
        return ood_detection(loaded, kw.pop('images'), kw.pop('val'), **kw)
    raise ValueError(f'unknown benchmark {benchmark!r}')


BENCHMARKS = ('occlusion', 'shuffle', 'imagenet-a', 'imagenet-r', 'imagenet-o')

"""Writing a label map for every image of a dataset with a teacher: sharded over ranks, resumable (finished maps
are checked and skipped, broken ones remade), unreadable images reported (see :mod:`pretrain.label_maps`)."""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from mixcore.atomic_write import atomic_write_text

from .map_file import LabelMapError, label_map_path, read_label_map, write_label_map
from .record import RECORD, RECORD_FORMAT, claim_out_root
from .teacher import DenseTeacher, teacher_fingerprint


def shard_of(env: Optional[dict] = None) -> tuple[int, int]:
    """(rank, world size) from torchrun (``RANK``/``WORLD_SIZE``) or slurm (``SLURM_PROCID``/``SLURM_NTASKS``)."""
    env = os.environ if env is None else env
    for r, w in (('RANK', 'WORLD_SIZE'), ('SLURM_PROCID', 'SLURM_NTASKS')):
        if r in env and w in env:
            rank, world = int(env[r]), int(env[w])
            if not 0 <= rank < world:
                raise ValueError(f'{r}={rank} is not in [0, {w}={world})')
            return rank, world
    return 0, 1


def local_device(env: Optional[dict] = None) -> torch.device:
    env = os.environ if env is None else env
    if torch.cuda.is_available():
        return torch.device('cuda', int(env.get('LOCAL_RANK', env.get('SLURM_LOCALID', 0))))
    return torch.device('cpu')


def list_images(root: str) -> list[str]:
    """Every image of an ImageNet-style folder ``<root>/<class>/<image>``, sorted (the order shards are cut in)."""
    from pretrain.data import IMG_EXTENSIONS, find_classes
    out = []
    for c in find_classes(root):
        d = osp.join(root, c)
        out += sorted(osp.join(d, e.name) for e in os.scandir(d)
                      if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))
    if not out:
        raise FileNotFoundError(f'{root}: no images in its class folders')
    return out


class _Images(torch.utils.data.Dataset):
    """(image tensor or None, index, error message) — an unreadable image is reported, not fatal."""

    def __init__(self, paths: Sequence[str], transform: Callable):
        self.paths, self.transform = list(paths), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from pretrain.data import ImageNetFolder, UnreadableImageError
        try:
            return self.transform(ImageNetFolder.load_image(self.paths[i])), i, ''
        except UnreadableImageError as e:
            return None, i, str(e)


def _collate(batch):
    good = [(x, i) for x, i, _ in batch if x is not None]
    bad = [(i, err) for x, i, err in batch if x is None]
    images = torch.stack([x for x, _ in good]) if good else None
    return images, [i for _, i in good], bad


class _Existing(torch.utils.data.Dataset):
    """Checks the existing map of each image (a resumed run): '' = fine, 'broken: ...' = unreadable (0 bytes,
    truncated; remade), 'foreign: ...' = a readable map that does not fit the record (refused)."""

    def __init__(self, paths: Sequence[str], out_root: str, num_classes: int, shape: tuple):
        self.paths, self.out_root, self.num_classes, self.shape = list(paths), out_root, num_classes, shape

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = label_map_path(self.out_root, self.paths[i])
        try:
            t = read_label_map(path, self.paths[i], self.num_classes)
        except LabelMapError as e:
            return i, ('broken: ' if e.__cause__ is not None or osp.getsize(path) == 0 else 'foreign: ') + str(e)
        if tuple(t.shape) != self.shape:
            return i, f'foreign: {path}: shape {tuple(t.shape)}, the settings record says {self.shape}'
        return i, ''


def _as_list(batch):
    return batch


def _check_existing(mine: Sequence[str], out_root: str, record: dict, num_workers: int) -> tuple[list, list]:
    """(images still to do, broken maps to remake) of this shard; a map of other settings is an error."""
    have = [p for p in mine if osp.isfile(label_map_path(out_root, p))]
    if not have:
        return list(mine), []
    status = [''] * len(have)
    loader = torch.utils.data.DataLoader(
        _Existing(have, out_root, record['teacher']['num_classes'], tuple(record['map_shape'])), batch_size=64,
        num_workers=num_workers, collate_fn=_as_list)
    for batch in loader:
        for i, msg in batch:
            status[i] = msg
    foreign = [m for m in status if m.startswith('foreign')]
    if foreign:
        raise LabelMapError(f'{len(foreign)} existing label map(s) in {out_root} do not fit its settings record '
                            f'({RECORD}), e.g. {foreign[0][len("foreign: "):]}; remove them or pass --overwrite')
    broken = [dict(image=p, error=m[len('broken: '):]) for p, m in zip(have, status) if m]
    done = {p for p, m in zip(have, status) if not m}
    return [p for p in mine if p not in done], broken


def _probe(dense: torch.nn.Module, img_size: int, map_size: Optional[int], topk: int, device) -> tuple[int, list]:
    """(teacher classes C, map shape [2, k, H, W]) from one forward pass on a blank image."""
    with torch.no_grad():
        out = dense(torch.zeros(1, 3, img_size, img_size, device=device))
    if map_size is not None and tuple(out.shape[-2:]) != (map_size, map_size):
        out = F.adaptive_avg_pool2d(out, map_size)
    C = int(out.shape[1])
    return C, [2, min(topk, C), int(out.shape[2]), int(out.shape[3])]


def generate_label_maps(teacher: torch.nn.Module, image_root: str, out_root: str, img_size: int = 224,
                        topk: int = 5, map_size: Optional[int] = None, mean=(0.485, 0.456, 0.406),
                        std=(0.229, 0.224, 0.225), batch_size: int = 32, num_workers: int = 2,
                        device=None, rank: Optional[int] = None, world_size: Optional[int] = None,
                        progress: bool = True, interpolation: str = 'bicubic', scores: str = 'probs',
                        teacher_name: Optional[str] = None, overwrite: bool = False) -> dict:
    """Write a label map for every image of ``image_root`` (``<class>/<image>``) under ``out_root``.

    ``teacher``: a classifier (wrapped in :class:`DenseTeacher`) or a module giving B×C×h×w scores. Each image is
    resized whole (no crop: the map must cover the image the training crop is cut from) to ``img_size``², the
    dense scores optionally average-pooled to ``map_size``², turned into per-location class probabilities
    (``scores='probs'``) or kept raw (``'logits'``), and the top ``topk`` classes kept. This rank takes
    every ``world_size``-th image of the sorted list from ``rank`` on.

    Resume: ``out_root/label_maps.json`` records the teacher (``teacher_name``, the sha256 of its weights, its
    classes), the settings, the map shape and the class folders of ``image_root`` before any map is written; a
    later run with another teacher or settings is refused (``overwrite=True`` remakes every map of the shard
    instead), and every existing map of the shard is read back: unreadable ones (0 bytes, truncated) are remade and
    listed, ones of another shape are refused. Returns the report (also written to
    ``out_root/report[_rank<r>].json``): counts, the settings record and the unreadable images with their errors.
    """
    from torchvision import transforms as T
    from tqdm import tqdm

    from pretrain.data import find_classes
    if scores not in ('probs', 'logits'):
        raise ValueError(f"scores must be 'probs' or 'logits', got {scores!r}")
    if rank is None or world_size is None:
        rank, world_size = shard_of()
    device = local_device() if device is None else torch.device(device)
    dense = teacher if not hasattr(teacher, 'get_classifier') else DenseTeacher(teacher)
    fingerprint = teacher_fingerprint(dense)
    dense = dense.to(device).eval()
    paths = list_images(image_root)
    mine = paths[rank::world_size]
    num_classes, map_shape = _probe(dense, img_size, map_size, topk, device)
    record = dict(format=RECORD_FORMAT,
                  teacher=dict(name=teacher_name or type(teacher).__name__, sha256=fingerprint,
                               num_classes=num_classes),
                  settings=dict(img_size=img_size, topk=topk, map_size=map_size, scores=scores,
                                interpolation=interpolation, mean=list(mean), std=list(std)),
                  map_shape=map_shape, classes=find_classes(image_root), image_root=osp.abspath(image_root))
    claim_out_root(out_root, record, mine, overwrite)
    todo, broken = (list(mine), []) if overwrite else _check_existing(mine, out_root, record, num_workers)
    interp = {'bicubic': T.InterpolationMode.BICUBIC, 'bilinear': T.InterpolationMode.BILINEAR}[interpolation]
    transform = T.Compose([T.Resize((img_size, img_size), interpolation=interp), T.ToTensor(), T.Normalize(mean, std)])
    loader = torch.utils.data.DataLoader(_Images(todo, transform), batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=_collate, shuffle=False)
    unreadable, written = [], 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f'label maps (rank {rank}/{world_size})', unit='img', disable=not progress,
               dynamic_ncols=True)
    with torch.no_grad():
        for images, idx, bad in loader:
            unreadable += [dict(image=todo[i], error=err) for i, err in bad]
            if images is not None:
                out = dense(images.to(device))
                if map_size is not None and tuple(out.shape[-2:]) != (map_size, map_size):
                    out = F.adaptive_avg_pool2d(out, map_size)
                if scores == 'probs':
                    out = out.softmax(1)
                values, indices = out.topk(min(topk, out.shape[1]), dim=1)
                for j, i in enumerate(idx):
                    write_label_map(label_map_path(out_root, todo[i]), values[j], indices[j])
                written += len(idx)
            bar.update(len(idx) + len(bad))
    bar.close()
    report = dict(image_root=osp.abspath(image_root), out_root=osp.abspath(out_root), rank=rank,
                  world_size=world_size, images_in_shard=len(mine), skipped_existing=len(mine) - len(todo),
                  written=written, remade_broken=broken, unreadable=unreadable, img_size=img_size, topk=topk,
                  scores=scores, teacher=record['teacher'], settings=record['settings'], map_shape=map_shape,
                  overwrite=overwrite, seconds=round(time.perf_counter() - t0, 1))
    name = 'report.json' if world_size == 1 else f'report_rank{rank}.json'
    atomic_write_text(osp.join(out_root, name), json.dumps(report, indent=1))
    return report

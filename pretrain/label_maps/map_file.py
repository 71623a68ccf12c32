"""One label map file (TokenLabeling format, see :mod:`pretrain.label_maps`): its path, safe reader, writer, errors."""
from __future__ import annotations

import os.path as osp
from typing import Optional

import torch

from mixcore.atomic_write import atomic_write
from mixcore.weights.errors import CheckpointError
from mixcore.weights.read import read_file

SUFFIX = '.pt'


class LabelMapError(RuntimeError):
    """A label map that cannot be used; the message names the image and the file."""


class MissingLabelMapError(LabelMapError, FileNotFoundError):
    """No label map file for an image."""


def label_map_path(root: str, img_path: str) -> str:
    """``<root>/<class folder>/<image stem>.pt`` — TokenLabeling's naming (``'/'.join(path.split('/')[-2:])``
    without the extension). The stem drops only the last extension (TokenLabeling cuts at the first '.', the same
    for ImageNet's file names)."""
    folder = osp.basename(osp.dirname(img_path))
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(root, folder, stem + SUFFIX)


def _check(t, path: str, image: str, num_classes: Optional[int]) -> torch.Tensor:
    where = f'{path} (label map of {image})' if image else path
    if not isinstance(t, torch.Tensor):
        raise LabelMapError(f'{where}: holds a {type(t).__name__}, expected one tensor of shape 2×k×H×W '
                            f'(TokenLabeling format)')
    if t.ndim != 4 or t.shape[0] != 2 or min(t.shape) < 1 or not t.is_floating_point():
        raise LabelMapError(f'{where}: tensor {t.dtype} {tuple(t.shape)}, expected float 2×k×H×W (top-k scores '
                            f'and class indices, TokenLabeling format)')
    t = t.float()
    idx = t[1]
    if not torch.isfinite(t).all() or not torch.equal(idx, idx.round()) or (idx < 0).any():
        raise LabelMapError(f'{where}: scores not finite or class indices not non-negative integers: corrupt file')
    if num_classes is not None and int(idx.max()) >= num_classes:
        raise LabelMapError(f'{where}: class index {int(idx.max())} outside the {num_classes} classes')
    return t


def read_label_map(path: str, image: str = '', num_classes: Optional[int] = None) -> torch.Tensor:
    """The ``2×k×H×W`` float32 label map in ``path`` (loaded with ``weights_only=True``, checked)."""
    if not osp.isfile(path):
        raise MissingLabelMapError(f'no label map for image {image or "?"}: {path} does not exist (make the maps '
                                   f'with tools/make_label_maps.py, or point label_map_root at them)')
    try:
        t = read_file(path)
    except CheckpointError as e:  # truncated zip, foreign pickle, refused global, ...
        raise LabelMapError(f'{path} (label map of {image or "?"}): cannot be read safely as a tensor file '
                            f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') from e
    return _check(t, path, image, num_classes)


def write_label_map(path: str, scores: torch.Tensor, indices: torch.Tensor) -> None:
    """Write ``k×H×W`` top-k ``scores`` and class ``indices`` in the TokenLabeling layout, atomically."""
    if scores.shape != indices.shape or scores.ndim != 3:
        raise ValueError(f'scores and indices must both be k×H×W, got {tuple(scores.shape)} and '
                         f'{tuple(indices.shape)}')
    # float16 as TokenLabeling stores it; its integers are exact up to 2048, beyond that keep float32
    dtype = torch.float16 if int(indices.max()) < 2048 else torch.float32
    t = torch.stack([scores.detach().float().cpu(), indices.detach().float().cpu()]).to(dtype).contiguous()
    atomic_write(path, lambda tmp: torch.save(t, tmp))

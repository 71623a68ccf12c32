"""The label maps a training run reads: a folder of map files (:class:`LabelMapFolder`) or a pack
(:class:`LabelMapPack`, memory-mapped arrays); :func:`open_label_maps` picks by what the folder holds. Both check
once, at open, that the maps fit the dataset (:meth:`_Store.fit`)."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch

from mixcore.weights.errors import CheckpointError
from mixcore.weights.read import read_file

from .map_file import LabelMapError, MissingLabelMapError, label_map_path, read_label_map
from .record import RECORD, names_preview, read_record

PACK_INDEX = 'label_maps_pack.json'  # written last: its presence marks a complete pack


class _Store:
    """What both layouts share: the check that the maps fit a dataset (:meth:`fit`), done once at open."""
    root: str
    num_classes: Optional[int]
    record: Optional[dict] = None
    record_path: str = ''
    shape: Optional[tuple] = None  # k×H×W every map must have
    shape_from: str = ''

    def class_folders(self) -> list[str]:
        raise NotImplementedError

    def fit(self, classes: Sequence[str], dataset: str, first_image: Optional[str] = None) -> None:
        """Refuse maps whose class indices, class list or shape do not fit the dataset ``classes`` (label
        order); from now on every map read is checked against ``len(classes)`` and one shape."""
        classes, n = list(classes), len(classes)
        rec, where = self.record, self.record_path
        if rec is not None:
            made, tc = rec.get('classes'), (rec.get('teacher') or {}).get('num_classes')
            if made is not None and list(made) != classes:
                raise LabelMapError(
                    f'{where}: the maps were made for the {len(made)} class folders of {rec.get("image_root")} '
                    f'({names_preview(made)}); the dataset {dataset} has {n} classes ({names_preview(classes)}): '
                    f'their class indices number other classes. Make maps for this dataset (tools/make_label_maps.py)')
            if tc is not None and tc != n:
                raise LabelMapError(
                    f'{where}: the teacher of these maps scores {tc} classes, the dataset {dataset} has {n}: the '
                    f'maps\' class indices are not the dataset\'s labels. Use a teacher trained on these classes')
        else:
            # no record (e.g. published maps): their indices number the sorted class folders they were made for;
            # folders the dataset lacks, or a label order that is not sorted, mean other classes (a folder the
            # maps lack is a missing map, named by check_maps)
            extra = sorted(set(self.class_folders()) - set(classes))
            if extra or classes != sorted(classes):
                what = (f'maps for class folders the dataset does not have ({names_preview(extra)})' if extra else
                        f'labels in an order other than the sorted folder names ({names_preview(classes)})')
                raise LabelMapError(
                    f'{self.root}: holds {what}, while the dataset {dataset} has {n} classes: the maps\' class '
                    f'indices number the sorted class folders they were made for, which are not the dataset\'s '
                    f'labels. Make maps for this dataset (tools/make_label_maps.py)')
        max_index = getattr(self, 'max_index', None)
        if max_index is not None and max_index >= n:
            raise LabelMapError(f'{where}: class index {max_index} outside the {n} classes of the dataset {dataset}')
        self.num_classes = n
        if self.shape is None and rec is not None and rec.get('map_shape'):
            self.shape, self.shape_from = tuple(rec['map_shape'][1:]), where
        if self.shape is None and first_image is not None:
            self.shape, self.shape_from = tuple(self.load(first_image).shape[1:]), self.path(first_image)


class LabelMapFolder(_Store):
    """A folder of label maps in the TokenLabeling layout (``label_map_path``)."""

    def __init__(self, root: str, num_classes: Optional[int] = None):
        if not osp.isdir(root):
            raise MissingLabelMapError(f'{root}: label-map folder not found (make the maps with '
                                       f'tools/make_label_maps.py)')
        self.root = root
        self.num_classes = num_classes
        self.record, self.record_path = read_record(root), osp.join(root, RECORD)

    def class_folders(self) -> list[str]:
        return [e.name for e in os.scandir(self.root) if e.is_dir()]

    def path(self, img_path: str) -> str:
        return label_map_path(self.root, img_path)

    def load(self, img_path: str) -> torch.Tensor:
        path = self.path(img_path)
        t = read_label_map(path, img_path, self.num_classes)
        if self.shape is not None and tuple(t.shape[1:]) != self.shape:
            raise LabelMapError(f'{path} (label map of {img_path}): shape {tuple(t.shape)}, but the maps of '
                                f'{self.root} are {(2, *self.shape)} (from {self.shape_from}): maps of another '
                                f'teacher or settings; remake it with the others\' (tools/make_label_maps.py)')
        return t

    def has(self, img_path: str) -> bool:
        return osp.isfile(self.path(img_path))

    def __repr__(self):
        return f'{type(self).__name__}({self.root!r})'


def _key(img_path: str) -> str:
    """``<class folder>/<image stem>``: how both layouts name an image's map."""
    return f'{osp.basename(osp.dirname(img_path))}/{osp.splitext(osp.basename(img_path))[0]}'


class LabelMapPack(_Store):
    """Label maps packed into memory-mapped arrays (:func:`pack_label_maps`); same ``load`` as
    :class:`LabelMapFolder`. The arrays are opened lazily in each process (a data-loader worker maps them itself).
    Each map read is checked on the CPU (class indices in range, scores finite): the index's ``max_index`` is
    not trusted alone."""

    def __init__(self, root: str, num_classes: Optional[int] = None):
        index = osp.join(root, PACK_INDEX)
        try:
            with open(index) as f:
                meta = json.load(f)
            self.keys = {k: i for i, k in enumerate(meta['keys'])}
            self.shape = tuple(int(v) for v in meta['shape'])
            max_index = meta.get('max_index')
            if max_index is not None and (isinstance(max_index, bool) or not isinstance(max_index, int)):
                raise TypeError(f'max_index is {max_index!r}, not an integer')
            record = meta.get('maps')
            if record is not None and not isinstance(record, dict):
                raise TypeError(f'maps is a {type(record).__name__}, not the settings record')
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LabelMapError(f'{index}: not a label-map pack index ({type(e).__name__}: {e})') from e
        self.root, self.num_classes, self.max_index = root, num_classes, max_index
        self.record, self.record_path, self.shape_from = record, index, index
        if num_classes is not None and self.max_index is not None and self.max_index >= num_classes:
            raise LabelMapError(f'{index}: class index {self.max_index} outside the {num_classes} classes')
        self._arrays = None

    def class_folders(self) -> list[str]:
        return sorted({k.split('/', 1)[0] for k in self.keys})

    def __getstate__(self):
        return {**self.__dict__, '_arrays': None}

    def _open(self):
        if self._arrays is None:
            arrays = []
            for name in ('scores.npy', 'indices.npy'):
                path = osp.join(self.root, name)
                try:
                    a = read_file(path, mmap=True)
                except CheckpointError as e:
                    raise LabelMapError(f'{path}: cannot be mapped ({e})') from e
                if a.shape != (len(self.keys), *self.shape):
                    raise LabelMapError(f'{path}: shape {a.shape}, the index says {(len(self.keys), *self.shape)}')
                arrays.append(a)
            self._arrays = arrays
        return self._arrays

    def path(self, img_path: str) -> str:
        return f'{self.root}::{_key(img_path)}'

    def has(self, img_path: str) -> bool:
        return _key(img_path) in self.keys

    def load(self, img_path: str) -> torch.Tensor:
        i = self.keys.get(_key(img_path))
        if i is None:
            raise MissingLabelMapError(f'no label map for image {img_path}: {_key(img_path)} is not in the pack '
                                       f'{self.root}')
        scores, indices = self._open()
        s, idx = np.asarray(scores[i], dtype=np.float32), np.asarray(indices[i])
        lo, hi = int(idx.min()), int(idx.max())
        where = f'{self.path(img_path)} (label map of {img_path})'
        if lo < 0 or (self.num_classes is not None and hi >= self.num_classes):
            raise LabelMapError(f'{where}: class index {lo if lo < 0 else hi} outside the {self.num_classes} '
                                f'classes: the pack does not fit the dataset, or is corrupt')
        if not np.isfinite(s).all():
            raise LabelMapError(f'{where}: scores not finite: corrupt pack')
        return torch.stack([torch.from_numpy(s), torch.from_numpy(idx.astype(np.float32))])

    def __repr__(self):
        return f'{type(self).__name__}({self.root!r}, {len(self.keys)} maps)'


def open_label_maps(root: str, num_classes: Optional[int] = None):
    """:class:`LabelMapPack` when ``root`` holds a pack index, else :class:`LabelMapFolder`."""
    if osp.isfile(osp.join(root, PACK_INDEX)):
        return LabelMapPack(root, num_classes)
    return LabelMapFolder(root, num_classes)

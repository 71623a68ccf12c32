"""Packing a folder of label map files into memory-mapped arrays (read by :class:`.stores.LabelMapPack`): one
open per run instead of one per sample (see :mod:`pretrain.label_maps`, "Packed variant")."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional

import numpy as np

from mixcore.atomic_write import atomic_write_text

from .map_file import SUFFIX, LabelMapError, MissingLabelMapError, read_label_map
from .record import RECORD, read_record
from .stores import PACK_INDEX


def pack_label_maps(src: str, dst: str, num_classes: Optional[int] = None, progress: bool = True) -> dict:
    """Pack the TokenLabeling folder ``src`` (``<class>/<stem>.pt``) into ``dst`` (scores.npy, indices.npy, index).

    Every file is read with :func:`read_label_map` (safe, checked); all maps must have one shape. ``src``'s
    settings record (teacher, settings, the class folders the indices number; ``label_maps.json``), when there is
    one, gives ``num_classes`` and the shape the maps must have and goes into the index (``maps``), so training
    checks the pack against its dataset as it checks the folder. The arrays are written under temporary names and
    renamed, the index last, so an interrupted run leaves no pack that reads as complete. Returns the index.
    """
    from tqdm import tqdm

    files = sorted(osp.join(c, f) for c in sorted(os.listdir(src)) if osp.isdir(osp.join(src, c))
                   for f in os.listdir(osp.join(src, c)) if f.endswith(SUFFIX))
    if not files:
        raise MissingLabelMapError(f'{src}: no label maps (<class>/<stem>{SUFFIX})')
    record = read_record(src)  # made by generate_label_maps: checked against, and carried into the pack
    if record is not None and num_classes is None:
        num_classes = (record.get('teacher') or {}).get('num_classes')
    os.makedirs(dst, exist_ok=True)
    first = read_label_map(osp.join(src, files[0]), num_classes=num_classes)
    shape = tuple(first.shape[1:])
    if record is not None and record.get('map_shape') and tuple(record['map_shape'][1:]) != shape:
        raise LabelMapError(f'{osp.join(src, files[0])}: shape {tuple(first.shape)}, but {osp.join(src, RECORD)} '
                            f'records {tuple(record["map_shape"])} for these maps: foreign maps in the folder')
    tmp = {n: osp.join(dst, f'.{n}.part') for n in ('scores.npy', 'indices.npy')}
    scores = np.lib.format.open_memmap(tmp['scores.npy'], mode='w+', dtype=np.float16, shape=(len(files), *shape))
    indices = np.lib.format.open_memmap(tmp['indices.npy'], mode='w+', dtype=np.int16, shape=(len(files), *shape))
    max_index = 0
    try:
        for i, rel in enumerate(tqdm(files, desc='pack label maps', unit='map', disable=not progress)):
            path = osp.join(src, rel)
            t = read_label_map(path, num_classes=num_classes)
            if tuple(t.shape[1:]) != shape:
                raise LabelMapError(f'{path}: shape {tuple(t.shape)}, the first map {files[0]} has {(2, *shape)}: '
                                    f'a pack holds maps of one shape')
            if int(t[1].max()) > np.iinfo(np.int16).max:
                raise LabelMapError(f'{path}: class index {int(t[1].max())} does not fit the pack\'s int16')
            scores[i] = t[0].numpy().astype(np.float16)
            indices[i] = t[1].numpy().astype(np.int16)
            max_index = max(max_index, int(t[1].max()))
        scores.flush(), indices.flush()
        del scores, indices
        for name, part in tmp.items():
            os.replace(part, osp.join(dst, name))
    except BaseException:
        for part in tmp.values():
            if osp.exists(part):
                os.unlink(part)
        raise
    meta = dict(format='tokenlabeling-pack-1', keys=[osp.splitext(f)[0] for f in files], shape=list(shape),
                max_index=max_index, source=osp.abspath(src), maps=record)
    atomic_write_text(osp.join(dst, PACK_INDEX), json.dumps(meta))
    return meta

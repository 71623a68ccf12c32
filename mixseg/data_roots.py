"""Checks of a dataset config's folders before anything is built (:func:`check_data_roots`, called by tools/train.py and
tools/test.py).

mmseg's datasets list ``data_root/<data_prefix>`` with a bare FileNotFoundError when a folder is missing (the
usual cause: ``--data-root`` one level too high or too low), and read only files ending in their single
``img_suffix`` (``.jpg``): ``.JPG``/``.jpeg``/``.png`` images are skipped without a word, and the metrics then
cover fewer images than the folder holds.
"""
from __future__ import annotations

import os
import os.path as osp

from mixcore.runtime import dataset_configs

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class SkippedImagesError(FileNotFoundError):
    """Images a dataset would not read (the tools report FileNotFoundErrors of the data check as errors)."""


def how_to_make(path: str) -> str:
    """How a file or folder that no download contains is made ('' for the others)."""
    if 'SegmentationContext' in path or 'SegmentationClassContext' in path:
        from .datasets.pascal_context import HOW_TO_MAKE
        return f' No download contains it: it is {HOW_TO_MAKE}.'
    if osp.basename(path).startswith('instances_'):
        return (' It comes with COCO\'s annotations_trainval2017.zip (https://cocodataset.org/#download), '
                'extracted into the data root (annotations/instances_{train,val}2017.json).')
    return ''


def _prefix_dirs(ds: dict) -> dict:
    prefix = ds.get('data_prefix') or {}
    return {k: v for k, v in prefix.items() if isinstance(v, str) and v.strip('/')}


def _candidate_roots(root: str, rels) -> list[str]:
    """Folders near ``root`` (below, up to two levels; or above, up to two levels) holding every ``rel``."""
    found = []
    below = [root]
    for _ in range(2):
        below = [osp.join(d, e) for d in below if osp.isdir(d) for e in sorted(os.listdir(d))
                 if osp.isdir(osp.join(d, e))][:200]
        found += [d for d in below if all(osp.isdir(osp.join(d, r)) for r in rels)]
    up = osp.abspath(root)
    for _ in range(2):
        up = osp.dirname(up)
        if all(osp.isdir(osp.join(up, r)) for r in rels):
            found.append(up)
    return found[:3]


def check_prefix_folders(ds: dict, where: str) -> None:
    """Every ``data_prefix`` folder of a dataset config exists, or a FileNotFoundError naming it (and the
    ``--data-root`` that would hold it, when one is near)."""
    root = ds.get('data_root') or ''
    prefixes = _prefix_dirs(ds)
    missing = {k: osp.join(root, v) for k, v in prefixes.items() if not osp.isdir(osp.join(root, v))}
    if not missing:
        return
    near = _candidate_roots(root, [v for v in prefixes.values() if not osp.isabs(v)]) if root else []
    hint = (f' {root} looks like the wrong folder: --data-root {near[0]} holds '
            f'{" and ".join(sorted(prefixes.values()))}.' if near else
            f' --data-root must be the folder that holds {" and ".join(sorted(prefixes.values()))}.'
            + ''.join(how_to_make(v) for v in missing.values()))
    raise FileNotFoundError(
        f'{where}: {", ".join(f"data_prefix.{k} folder {v!r}" for k, v in missing.items())} '
        f'({ds.get("type")}) does not exist.{hint}')


def default_img_suffix(dataset_type: str):
    """The ``img_suffix`` an mmseg dataset class uses when the config sets none (``None``: not known)."""
    import inspect
    try:
        import mmseg.datasets  # noqa: F401  (registers the classes)
        from mmseg.registry import DATASETS
        cls = DATASETS.get(dataset_type)
    except Exception:
        return None
    param = inspect.signature(cls.__init__).parameters.get('img_suffix') if cls else None
    return param.default if param is not None and param.default is not inspect.Parameter.empty else None


def check_skipped_images(ds: dict, where: str, limit: int = 5) -> None:
    """A segmentation dataset listing its image folder by one suffix: refuse images it would skip."""
    prefixes = _prefix_dirs(ds)
    if 'seg_map_path' not in prefixes or 'img_path' not in prefixes or ds.get('ann_file'):
        return
    suffix = ds.get('img_suffix', default_img_suffix(str(ds.get('type'))))
    if not isinstance(suffix, str):
        return
    img_dir = osp.join(ds.get('data_root') or '', prefixes['img_path'])
    skipped = []
    for d, _, files in os.walk(img_dir):
        skipped += [osp.relpath(osp.join(d, f), img_dir) for f in files
                    if f.lower().endswith(IMAGE_EXTENSIONS) and not f.endswith(suffix)]
    if skipped:
        skipped.sort()
        names = ', '.join(skipped[:limit]) + (', ...' if len(skipped) > limit else '')
        raise SkippedImagesError(
            f'{where}: {len(skipped)} images in {img_dir} do not end in {suffix!r} and {ds.get("type")} would '
            f'skip them: {names}. Rename them to *{suffix} (convert PNGs to JPEG), or read your own data with '
            f'the FolderSegDataset of configs/_base_/datasets/custom_seg.py, which reads every image extension.')


def check_data_roots(cfg, config_path: str, splits=('train', 'val', 'test')) -> None:
    """Fail early, naming the expected path, when a dataset's root or annotation file is missing.

    Without this the error surfaces deep inside a dataset class (a bare FileNotFoundError from a listdir
    or from pycocotools) after the model is built.
    """
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for ds in dataset_configs(loader.get('dataset')):
            root = ds.get('data_root')
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'{config_path}: {split}_dataloader: data root {root!r} ({ds.get("type")}) does not exist. '
                    f'Put the dataset there, point the tool at it with --data-root DIR, or generate the '
                    f'demo data with `python tools/make_demo_data.py --out data/demo`.')
            if root and ds.get('data_prefix'):  # mmseg/mmdet datasets: their folders, and images they'd skip
                check_prefix_folders(ds, f'{config_path}: {split}_dataloader')
                check_skipped_images(ds, f'{config_path}: {split}_dataloader')
            ann = ds.get('ann_file')
            if root and ann and not osp.isabs(ann) and not osp.exists(osp.join(root, ann)):
                raise FileNotFoundError(
                    f'{config_path}: {split}_dataloader: annotation file {osp.join(root, ann)!r} '
                    f'({ds.get("type")}) does not exist.{how_to_make(ann)}')

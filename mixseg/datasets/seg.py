"""Your own segmentation data: ``FolderSegDataset`` (mmseg DATASETS).

mmseg's ``BaseSegDataset`` takes one image suffix (``.jpg``): an ``.JPG``/``.jpeg``/``.png`` photo is skipped
without a word, and a label map missing for an image fails later, in the loader. Its dataset classes for
ADE20K/Pascal Context refuse other class names (they must be a subset of the built-in ones). This class takes the
classes from ``metainfo`` (required), accepts every common image extension in any case, and refuses a data set
whose images lack label maps (or whose stems collide) before training, naming the files. Each sample carries
``num_classes`` so that ``CheckSegLabels()`` without ``num_classes`` checks the labels against these classes.
"""
from __future__ import annotations

import os
import os.path as osp

import mmengine
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..data_roots import IMAGE_EXTENSIONS  # the image extensions read (case-insensitively); OpenCV decodes them all


def _listing(files, limit=5) -> str:
    files = sorted(files)
    return ', '.join(files[:limit]) + (f', ... ({len(files)} in all)' if len(files) > limit else '')


def list_images(img_dir: str, extensions=IMAGE_EXTENSIONS):
    """(image paths relative to ``img_dir``, other files) below ``img_dir``, recursively, sorted."""
    images, others = [], []
    exts = tuple(e.lower() for e in extensions)
    for root, _, files in os.walk(img_dir):
        for f in files:
            rel = osp.relpath(osp.join(root, f), img_dir)
            (images if f.lower().endswith(exts) else others).append(rel)
    return sorted(images), sorted(others)


@DATASETS.register_module()
class FolderSegDataset(BaseSegDataset):
    """Images in ``data_prefix.img_path`` (``.jpg``, ``.jpeg``, ``.png``, ... in any case, in subfolders too), one
    single-channel label PNG per image in ``data_prefix.seg_map_path`` under the image's name with
    ``seg_map_suffix`` (``a/b.JPG`` → ``a/b.png``). ``ann_file`` (optional): a text file of image names, with or
    without extension, one per line (a split).

    ``metainfo=dict(classes=(...))`` is required: label value ``i`` is ``classes[i]`` (after
    ``reduce_zero_label``), 255 is ignored.
    """

    def __init__(self, *args, img_suffix=IMAGE_EXTENSIONS, **kwargs):
        super().__init__(*args, img_suffix=tuple(img_suffix), **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = self._metainfo.get('classes')
        where = f'{type(self).__name__} at {self.data_root}'
        if not classes:
            raise ValueError(
                f'{where}: no classes given. Name them in the config, e.g. classes = (\'background\', \'cat\'), '
                f'and pass them to every dataloader: dataset=dict(metainfo=dict(classes=classes)) '
                f'(configs/_base_/datasets/custom_seg.py shows the whole config)')
        img_dir = self.data_prefix.get('img_path', '')
        ann_dir = self.data_prefix.get('seg_map_path')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'{where}: image folder {img_dir} does not exist')
        images, others = list_images(img_dir, self.img_suffix)
        if self.ann_file and not osp.isdir(self.ann_file):
            images = self._images_in_split(images)
        elif others:
            from mmengine.logging import print_log
            print_log(f'{where}: {len(others)} files in {img_dir} are not images ({"/".join(self.img_suffix)}) '
                      f'and are not read: {_listing(others)}', logger='current', level=30)
        if not images:
            raise FileNotFoundError(f'{where}: no images ({"/".join(self.img_suffix)}) in {img_dir}')
        stems = {}
        for img in images:
            stems.setdefault(osp.splitext(img)[0], []).append(img)
        clashes = [' and '.join(v) for v in stems.values() if len(v) > 1]
        if clashes:
            raise ValueError(f'{where}: images share a name and would share a label map: {_listing(clashes)}; '
                             f'rename one of each pair')
        data_list, unlabelled = [], []
        for stem, (img,) in stems.items():
            info = dict(img_path=osp.join(img_dir, img), label_map=self.label_map,
                        reduce_zero_label=self.reduce_zero_label, seg_fields=[], num_classes=len(classes))
            if ann_dir is not None:
                info['seg_map_path'] = osp.join(ann_dir, stem + self.seg_map_suffix)
                if not osp.isfile(info['seg_map_path']):
                    unlabelled.append(img)
            data_list.append(info)
        if unlabelled:
            raise FileNotFoundError(
                f'{where}: {len(unlabelled)} of {len(images)} images have no label map in {ann_dir} '
                f'(image <name>.<ext> needs <name>{self.seg_map_suffix} there): {_listing(unlabelled)}')
        return data_list

    def _images_in_split(self, images: list[str]) -> list[str]:
        """The images named in ``ann_file`` (names with or without extension)."""
        by_stem = {}
        for img in images:
            by_stem.setdefault(osp.splitext(img)[0], img)
        by_name = set(images)
        chosen, missing = [], []
        for line in mmengine.list_from_file(self.ann_file, backend_args=self.backend_args):
            name = line.strip()
            if not name:
                continue
            img = name if name in by_name else by_stem.get(name)
            (chosen.append(img) if img else missing.append(name))
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} names in {self.ann_file} have no image '
                f'({"/".join(self.img_suffix)}) in {self.data_prefix.get("img_path")}: {_listing(missing)}')
        return chosen

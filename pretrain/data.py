"""ImageNet-style folder data for mmengine: dataset, timm transforms, repeated-augmentation sampler.

Layout: ``<data_root>/<split>/<class>/<image>``; the class index is the position of the folder name in the
sorted list of class folders (torchvision's ``ImageFolder`` order), or in ``classes`` when given.

A sample is ``dict(inputs=CHW float tensor, data_samples=int label)``; with ``collate_fn=
dict(type='default_collate')`` a batch is ``dict(inputs=B×3×H×W, data_samples=int64 B)``, which is what
:class:`pretrain.classifier.MixClassifier` takes. Normalisation happens in the timm transform (CPU
workers), so the data preprocessor only moves the batch to the device — or, with ``TimmTransform(uint8=True)``
(GPU runs), the batch stays uint8 and the preprocessor normalises and erases on the device.
"""
from __future__ import annotations

import os
import os.path as osp
import warnings
from typing import Callable, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.dist import get_dist_info, sync_random_seed
from PIL import Image
from timm.data import auto_augment as _timm_auto_augment
from timm.data import create_transform
from timm.data.distributed_sampler import RepeatAugSampler as _TimmRepeatAugSampler

from mixcore.image_io import UnreadableImageError, read_rgb, to_rgb  # noqa: F401  (re-exported: the one reader)

from .registry import DATA_SAMPLERS, DATASETS, TRANSFORMS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def _posterize(img: Image.Image, bits_to_keep: int, **kwargs) -> Image.Image:
    """timm's posterize op, keeping 0 bits → a black image (what older Pillow returned).

    RandAugment 'rand-m9-mstd0.5-inc1' draws magnitudes up to 10 (9 + noise), where 'PosterizeIncreasing' keeps
    0 bits; the DeiT recipe ran on Pillow versions that turned the image black there, the installed Pillow
    (13) raises ValueError instead, which would kill a data-loader worker.
    """
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return _timm_posterize(img, bits_to_keep, **kwargs)


_timm_posterize = _timm_auto_augment.posterize


def install_posterize() -> None:
    """timm's RandAugment posterize ops become :func:`_posterize` (a stage-1 patch, see :mod:`pretrain.patches`)."""
    for name, op in list(_timm_auto_augment.NAME_TO_OP.items()):
        if op is _timm_posterize:
            _timm_auto_augment.NAME_TO_OP[name] = _posterize


@TRANSFORMS.register_module()
class TimmTransform:
    """timm's ``create_transform(**kwargs)`` as a pipeline step: ``results['img']`` (PIL RGB) → CHW tensor.

    The keyword arguments are timm's, so a config reads like the DeiT command line, e.g.
    ``dict(type='TimmTransform', input_size=224, is_training=True, auto_augment='rand-m9-mstd0.5-inc1',
    interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1)``.

    ``uint8=True`` stops before the float conversion (timm's ``use_prefetcher`` tail): the sample is a uint8
    tensor, 4× less to pass from the workers and to copy to the GPU, and normalisation and random erasing run
    on the device in :class:`pretrain.classifier.ClsDataPreprocessor` (what timm's ``PrefetchLoader`` does;
    ``mixcore.gpu.device_side_input`` switches a config over on CUDA machines).
    """

    def __init__(self, uint8: bool = False, **kwargs):
        self.uint8 = bool(uint8 or kwargs.pop('use_prefetcher', False))
        self.kwargs = dict(kwargs)
        self.transform = create_transform(**kwargs, use_prefetcher=self.uint8)

    def __call__(self, results: dict) -> dict:
        results['img'] = self.transform(results['img'])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.transform})'


def find_classes(folder: str) -> list[str]:
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: dataset folder not found (expected <data_root>/<split>/<class>/*.JPEG)')
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f'{folder}: no class folders (expected <data_root>/<split>/<class>/*.JPEG)')
    return classes


def _listed(names: Sequence[str], n: int = 10) -> str:
    return ', '.join(map(repr, names[:n])) + (f' and {len(names) - n} more' if len(names) > n else '')


def check_split_classes(folder: str, found: Sequence[str], reference: str) -> None:
    """Refuse a split whose class folders are not those of the ``reference`` split (e.g. val vs train).

    Labels are positions in the sorted folder list, so two splits with different folder names (even the
    same number of them) would give one class different labels in training and evaluation.
    """
    ref = find_classes(reference)
    if list(found) == list(ref):
        return
    only_here = sorted(set(found) - set(ref))
    only_ref = sorted(set(ref) - set(found))
    raise ValueError(
        f'{folder}: its class folders differ from those of {reference} ({len(found)} vs {len(ref)} folders); '
        f'only in {folder}: [{_listed(only_here)}]; only in {reference}: [{_listed(only_ref)}]. Labels are '
        f'positions in the sorted folder list, so they would not agree between the splits. Give both splits '
        f'the same class folders, or the same explicit classes=[...] (label order) to both datasets.')


def scan_class_folders(folder: str, classes: Sequence[str]) -> list[dict]:
    """``dict(img_path, gt_label)`` for the images directly inside ``<folder>/<class>/``, label = position
    in ``classes``.

    An empty class folder is an error naming it (it would count as a class without samples, so
    ``num_classes`` would be one too many); sub-folders inside class folders are not read (as DeiT's
    ``ImageFolder`` layout has none), with one warning that counts them and the images below them.
    """
    data_list, empty, nested, nested_images = [], [], [], 0
    for label, name in enumerate(classes):
        class_dir = osp.join(folder, name)
        files, subdirs = [], []
        for e in os.scandir(class_dir):
            if e.is_dir():
                subdirs.append(e.path)
            elif e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS):
                files.append(e.name)
        if not files:
            empty.append((class_dir, len(subdirs)))
        nested.extend(subdirs)
        data_list.extend(dict(img_path=osp.join(class_dir, f), gt_label=label) for f in sorted(files))
    if nested:
        nested_images = sum(f.lower().endswith(IMG_EXTENSIONS) for d in nested for _, _, fs in os.walk(d)
                            for f in fs)
    if empty:
        names = [f'{d}' + (f' (holds {k} sub-folder{"s" * (k > 1)}, which are not read)' if k else '')
                 for d, k in empty]
        raise FileNotFoundError(
            f'{folder}: {len(empty)} class folder{"s" * (len(empty) > 1)} without images '
            f'({"/".join(IMG_EXTENSIONS)}) directly inside: {_listed(names)}. Each folder is a class, so '
            f'num_classes would be {len(classes)} with {len(empty)} class(es) that have no samples. Remove '
            f'the empty folder(s), move their images up into them, or give classes=[...] without them.')
    if nested:
        warnings.warn(
            f'{folder}: {len(nested)} sub-folder{"s" * (len(nested) > 1)} inside class folders (e.g. '
            f'{nested[0]}) holding {nested_images} image(s) are ignored: only images directly inside '
            f'<split>/<class>/ are read', stacklevel=3)
    return data_list


@DATASETS.register_module()
class ImageNetFolder(BaseDataset):
    """ImageNet folder tree ``<data_root>/<split>/<class>/*.JPEG`` with a pipeline of timm transforms.

    Args:
        data_root: the dataset root (``data/imagenet``).
        split: sub-folder (``train`` / ``val``).
        pipeline: transforms applied to ``dict(img=PIL RGB image, img_path, gt_label)``; normally one
            :class:`TimmTransform`.
        classes: class folder names in label order; default: sorted folder names of the split. A given
            class without a folder is an error (labels would shift otherwise).
        on_error: ``'raise'`` (default): an unreadable image raises :class:`UnreadableImageError` naming the
            file. ``'skip'``: warn once per file and return the next readable sample (index + 1, + 2, ...),
            so the substitute is deterministic.
        max_skip: how many consecutive unreadable files ``'skip'`` tolerates before giving up.
        reference_split: without ``classes``, another split of ``data_root`` whose class folders this
            split must have too (when that folder exists), so that labels agree between splits.

    The folder scan refuses an empty class folder and warns about sub-folders inside class folders
    (:func:`scan_class_folders`); images are read by :func:`mixcore.image_io.read_rgb` (EXIF orientation applied,
    16-bit images scaled to 8 bits, decompression bombs refused naming the file).
    """

    def __init__(self, data_root: str, split: str = 'train', pipeline: Sequence[Union[dict, Callable]] = (),
                 classes: Optional[Sequence[str]] = None, on_error: str = 'raise', max_skip: int = 100,
                 reference_split: Optional[str] = 'train', **kwargs):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.split = split
        self.reference_split = reference_split
        self.on_error = on_error
        self.max_skip = max_skip
        self._warned: set[str] = set()
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        if classes is not None:
            metainfo['classes'] = tuple(classes)
        # built here from the 'pretrain' registry, so the dataset also works outside a runner's default scope
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file='', data_root=data_root, data_prefix=dict(img_path=split),
                         pipeline=pipeline, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = self.data_prefix['img_path']
        found = find_classes(folder)
        given = self._metainfo.get('classes')
        if given is None and self.reference_split not in (None, self.split):
            reference = osp.join(self.data_root, self.reference_split)
            if osp.isdir(reference):
                check_split_classes(folder, found, reference)
        classes = list(given or found)
        lost = [c for c in classes if c not in found]
        if lost:
            raise FileNotFoundError(f'{folder}: no folder for classes {lost[:10]}'
                                    f'{" ..." if len(lost) > 10 else ""}')
        self._metainfo['classes'] = tuple(classes)
        data_list = scan_class_folders(folder, classes)
        if not data_list:
            raise FileNotFoundError(f'{folder}: no images with extensions {IMG_EXTENSIONS}')
        return data_list

    @property
    def num_classes(self) -> int:
        return len(self.metainfo['classes'])

    @staticmethod
    def load_image(path: str) -> Image.Image:
        """8-bit RGB, EXIF orientation applied, decoded now (:func:`mixcore.image_io.read_rgb`: 16-bit grey scaled,
        decompression bombs refused); an unreadable file is an :class:`UnreadableImageError` naming it."""
        return read_rgb(path)

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        results = dict(img=self.load_image(info['img_path']), img_path=info['img_path'],
                       gt_label=info['gt_label'], sample_idx=idx)
        results = self.pipeline(results)
        return dict(inputs=results['img'], data_samples=results['gt_label'])

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        n = len(self)
        for step in range(min(self.max_skip, n) + 1):
            j = (idx + step) % n
            try:
                return self.prepare_data(j)
            except UnreadableImageError as e:
                if self.on_error == 'raise':
                    raise
                path = self.get_data_info(j)['img_path']
                if path not in self._warned:
                    self._warned.add(path)
                    warnings.warn(f'{e}; skipped (sample {j} replaced by sample {(j + 1) % n})', stacklevel=2)
        raise UnreadableImageError(f'{self.data_prefix["img_path"]}: {self.max_skip} consecutive unreadable '
                                   f'images starting at sample {idx} ({self.get_data_info(idx)["img_path"]})')


@DATA_SAMPLERS.register_module()
class RepeatAugSampler(_TimmRepeatAugSampler):
    """timm's repeated-augmentation sampler (DeiT's ``RASampler``) with mmengine's sampler signature.

    Each rank gets every ``num_repeats``-th of the repeated, shuffled index list, so the copies of one image
    go to different processes (with one process the repeats are consecutive in the batch). World size and
    rank come from mmengine (1/0 without a process group); the shuffle depends on ``seed + epoch``, the seed
    being the same on all ranks (mmengine passes the runner's synchronised seed). An epoch holds
    ``len(dataset) // selected_round * selected_round / world_size`` samples per rank, as in DeiT (datasets
    smaller than ``selected_round``: ``ceil(len / world_size)``).
    """

    def __init__(self, dataset, num_repeats: int = 3, shuffle: bool = True, seed: Optional[int] = None,
                 selected_round: int = 256, selected_ratio: float = 0):
        rank, world_size = get_dist_info()
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, num_repeats=num_repeats,
                         selected_round=selected_round, selected_ratio=selected_ratio)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        # timm seeds the permutation with ``self.epoch``: fold the run's seed in.
        super().set_epoch(self.seed + epoch)

"""Training data with crop-aligned teacher label maps (TokenMix's label source).

:class:`ImageNetFolderWithLabelMaps` is :class:`pretrain.data.ImageNetFolder` whose training transform records each
sample's RandomResizedCrop box and horizontal flip (:class:`TimmTransformWithCoords`, timm's transform run step by
step with the same random draws) and whose samples carry the image's label map (TokenLabeling format,
:mod:`pretrain.label_maps`). A batch is ``dict(inputs, data_samples, label_maps=dict(maps=B×2×k×H×W,
boxes=B×4, flip=B))``; :class:`pretrain.classifier.MixClassifier` hands ``label_maps`` to TokenMix, which RoIAligns
the maps to the token grid on the batch's device (:func:`pretrain.mix.tokenmix.crop_label_maps`).

A config switches a TokenMix run to label maps with
``train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps', label_map_root=...))`` on top of the
ImageNet data config: the pipeline's ``TimmTransform`` is replaced by its recording twin, the rest is unchanged.
Photometric steps (colour jitter, RandAugment's colour operations, random erasing) and the repeated-augmentation
sampler (each copy is its own crop, recorded separately) need nothing more. RandAugment's geometric operations
(rotate, shear, translate) move pixels: they are recorded as one affine map of the crop (``results['affine']``, the
2×3 ``theta`` of ``F.affine_grid``), which TokenMix applies to the cropped map, as the official code warps its map
with them (it runs RandAugment on the full image before the crop; here it runs on the crop, timm's order).
"""
from __future__ import annotations

import math
import random
from typing import Optional

import numpy as np
import torch
from torchvision.transforms import functional as TF

from .data import ImageNetFolder, TimmTransform
from .label_maps.map_file import MissingLabelMapError
from .label_maps.stores import open_label_maps
from .registry import DATASETS, TRANSFORMS

__all__ = ['TimmTransformWithCoords', 'ImageNetFolderWithLabelMaps', 'geometric_affine']

# RandAugment operations that move pixels (timm auto_augment names), all PIL affine transforms of the image
GEOMETRIC_OPS = ('Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'TranslateXRel', 'TranslateYRel')


def geometric_affine(name: str, args: tuple, size: tuple) -> np.ndarray:
    """3×3 map from output to input pixel coordinates of one timm geometric op (PIL's AFFINE convention)."""
    W, H = size
    a = float(args[0])
    m = np.eye(3)
    if name == 'ShearX':
        m[0, 1] = a
    elif name == 'ShearY':
        m[1, 0] = a
    elif name in ('TranslateX', 'TranslateXRel'):
        m[0, 2] = a * W if name.endswith('Rel') else a
    elif name in ('TranslateY', 'TranslateYRel'):
        m[1, 2] = a * H if name.endswith('Rel') else a
    elif name == 'Rotate':  # PIL Image.rotate: counter-clockwise about (W/2, H/2)
        t = -math.radians(a)
        c, s = math.cos(t), math.sin(t)
        cx, cy = W / 2., H / 2.
        m[:2] = [[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]]
    else:
        raise ValueError(f'not a geometric op: {name}')
    return m


class _RecordOp:
    """Calls a RandAugment op's function and records what it did (picklable: worker processes get a copy)."""

    def __init__(self, name, fn, log):
        self.name, self.fn, self.log = name, fn, log

    def __call__(self, img, *args, **kwargs):
        self.log.append(geometric_affine(self.name, args, img.size))
        return self.fn(img, *args, **kwargs)


@TRANSFORMS.register_module()
class TimmTransformWithCoords(TimmTransform):
    """:class:`pretrain.data.TimmTransform` (training) that also records the crop: ``results['crop_box']`` =
    (x1, y1, x2, y2) as fractions of the image width/height, ``results['flip']`` = horizontally flipped.

    The timm ``Compose`` is run step by step; the random-resized crop and the flip are done here with the same
    calls (``get_params``, the interpolation choice, ``torch.rand(1) < p``) in the same order, so the random stream,
    and the image for a given seed, are those of the plain transform.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from timm.data.transforms import RandomResizedCropAndInterpolation
        from torchvision import transforms as T
        steps = getattr(self.transform, 'transforms', None)
        if steps is None or not kwargs.get('is_training', False):
            raise ValueError('TimmTransformWithCoords records the training crop: it needs is_training=True and '
                             'timm\'s non-separated training transform')
        self._crop_types = (RandomResizedCropAndInterpolation, T.RandomResizedCrop)
        crops = [t for t in steps if isinstance(t, self._crop_types)]
        if len(crops) != 1:
            raise ValueError(f'TimmTransformWithCoords: expected one random-resized crop in {self.transform}')
        if any(isinstance(t, T.RandomVerticalFlip) for t in steps):
            raise ValueError('TimmTransformWithCoords: vertical flips are not recorded (vflip=0)')
        self.steps = steps
        self._moves: list = []  # affine maps of the geometric RandAugment ops of the current call, in order
        for t in steps:
            for op in getattr(t, 'ops', ()):  # timm RandAugment / AutoAugment sub-policies hold AugmentOps
                for o in (op if isinstance(op, (list, tuple)) else [op]):
                    if getattr(o, 'name', None) in GEOMETRIC_OPS:
                        o.aug_fn = _RecordOp(o.name, o.aug_fn, self._moves)

    def __call__(self, results: dict) -> dict:
        from torchvision import transforms as T
        img = results['img']
        box, flip = None, False
        self._moves.clear()
        for t in self.steps:
            if isinstance(t, self._crop_types):
                W, H = img.size
                i, j, h, w = t.get_params(img, t.scale, t.ratio)
                interp = t.interpolation
                if isinstance(interp, (tuple, list)):
                    interp = random.choice(interp)
                img = TF.resized_crop(img, i, j, h, w, t.size, interp)
                box = (j / W, i / H, (j + w) / W, (i + h) / H)
            elif isinstance(t, T.RandomHorizontalFlip):
                if torch.rand(1) < t.p:
                    img, flip = TF.hflip(img), True
            else:
                img = t(img)
        results['img'] = img
        results['crop_box'] = torch.tensor(box, dtype=torch.float32)
        results['flip'] = torch.tensor(flip)
        results['affine'] = self._theta()
        return results

    def _theta(self) -> torch.Tensor:
        """The recorded ops as one ``F.affine_grid`` theta (output → input in [-1, 1] coordinates, 2×3)."""
        m = np.eye(3)
        for step in self._moves:  # out_k(p) = out_{k-1}(M_k p): the first op's map applies last
            m = m @ step
        if self._moves:
            W, H = self._size
            S = np.array([[W / 2., 0, W / 2.], [0, H / 2., H / 2.], [0, 0, 1.]])
            m = np.linalg.inv(S) @ m @ S
        return torch.from_numpy(m[:2]).float()

    @property
    def _size(self):
        size = self.kwargs.get('input_size', 224)
        size = size[-2:] if isinstance(size, (tuple, list)) else (size, size)
        return int(size[1]), int(size[0])  # (W, H)


@DATASETS.register_module()
class ImageNetFolderWithLabelMaps(ImageNetFolder):
    """:class:`pretrain.data.ImageNetFolder` whose samples carry their crop-aligned teacher label map.

    Args:
        label_map_root: folder of label maps in the TokenLabeling layout (``<root>/<class>/<stem>.pt``), e.g. the
            published NFNet-F6 maps or the output of ``tools/make_label_maps.py``, or a pack of them
            (``tools/pack_label_maps.py``).
        check_maps: at start, check that every image has a map file and name the missing ones (one ``stat`` per
            image); otherwise a missing map is found when its image is drawn. Either way it is an error naming the
            image. Always checked at start: the maps were made for this dataset's classes (their settings record,
            or their class folders) and their teacher's classes are the dataset's; then every map read has class
            indices below ``num_classes`` and the shape of the others, or is an error naming the file.
        other arguments: as :class:`pretrain.data.ImageNetFolder`; the pipeline's ``TimmTransform`` (training)
            becomes :class:`TimmTransformWithCoords`.
    """

    def __init__(self, *args, label_map_root: Optional[str] = None, check_maps: bool = True, **kwargs):
        if not label_map_root:
            raise ValueError('ImageNetFolderWithLabelMaps needs label_map_root (the teacher label maps; make them '
                             'with tools/make_label_maps.py)')
        self.store = open_label_maps(label_map_root)  # a TokenLabeling folder or a pack of it
        self.check_maps = check_maps
        super().__init__(*args, **kwargs)
        steps = self.pipeline.transforms
        for n, t in enumerate(steps):
            if type(t) is TimmTransform:
                steps[n] = TimmTransformWithCoords(**t.kwargs)
        if not any(isinstance(t, TimmTransformWithCoords) for t in steps):
            raise ValueError('ImageNetFolderWithLabelMaps: the pipeline has no training TimmTransform whose crop '
                             'could be recorded')

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        if self.check_maps:
            missing = [d['img_path'] for d in data_list if not self.store.has(d['img_path'])]
            if missing:
                raise MissingLabelMapError(
                    f'{len(missing)} of {len(data_list)} images have no label map under {self.store.root}, e.g. '
                    f'{missing[0]} (expected {self.store.path(missing[0])}); first ones: {missing[:5]}')
        # the maps' classes, class indices and shape must fit this dataset: checked here once, and every map read
        # (in the workers, on the CPU) against len(classes) and that shape — nothing is read back from the device
        first = next((d['img_path'] for d in data_list if self.store.has(d['img_path'])), None)
        self.store.fit(self._metainfo['classes'], self.data_prefix['img_path'], first)
        return data_list

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        results = dict(img=self.load_image(info['img_path']), img_path=info['img_path'],
                       gt_label=info['gt_label'], sample_idx=idx)
        results = self.pipeline(results)
        label_map = self.store.load(info['img_path'])
        return dict(inputs=results['img'], data_samples=results['gt_label'],
                    label_maps=dict(maps=label_map, boxes=results['crop_box'], flip=results['flip'],
                                    affine=results['affine']))

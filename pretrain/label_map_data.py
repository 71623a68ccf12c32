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
Photometric steps after the crop (colour jitter, random erasing) and the repeated-augmentation sampler (each copy is
its own crop, recorded separately) need nothing more. RandAugment's geometric operations (rotate, shear, translate)
move pixels within the crop without moving the map; the official code warps the map with them (it runs RandAugment
before the crop). They are small (≤ 30°, ≤ 0.3 shear, ≤ 45 % translate at magnitude 9 + noise) and applied with
probability 0.5 each; not modelled here.
"""
from __future__ import annotations

import os.path as osp
import random
from typing import Optional

import torch
from torchvision.transforms import functional as TF

from .data import ImageNetFolder, TimmTransform
from .label_maps import LabelMapFolder, MissingLabelMapError
from .registry import DATASETS, TRANSFORMS

__all__ = ['TimmTransformWithCoords', 'ImageNetFolderWithLabelMaps']


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

    def __call__(self, results: dict) -> dict:
        from torchvision import transforms as T
        img = results['img']
        box, flip = None, False
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
        return results


@DATASETS.register_module()
class ImageNetFolderWithLabelMaps(ImageNetFolder):
    """:class:`pretrain.data.ImageNetFolder` whose samples carry their crop-aligned teacher label map.

    Args:
        label_map_root: folder of label maps in the TokenLabeling layout (``<root>/<class>/<stem>.pt``), e.g. the
            published NFNet-F6 maps or the output of ``tools/make_label_maps.py``.
        check_maps: at start, check that every image has a map file and name the missing ones (one ``stat`` per
            image); otherwise a missing map is found when its image is drawn. Either way it is an error naming the
            image.
        other arguments: as :class:`pretrain.data.ImageNetFolder`; the pipeline's ``TimmTransform`` (training)
            becomes :class:`TimmTransformWithCoords`.
    """

    def __init__(self, *args, label_map_root: Optional[str] = None, check_maps: bool = True, **kwargs):
        if not label_map_root:
            raise ValueError('ImageNetFolderWithLabelMaps needs label_map_root (the teacher label maps; make them '
                             'with tools/make_label_maps.py)')
        self.store = LabelMapFolder(label_map_root)
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
            missing = [d['img_path'] for d in data_list if not osp.isfile(self.store.path(d['img_path']))]
            if missing:
                raise MissingLabelMapError(
                    f'{len(missing)} of {len(data_list)} images have no label map under {self.store.root}, e.g. '
                    f'{missing[0]} (expected {self.store.path(missing[0])}); first ones: {missing[:5]}')
        return data_list

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        results = dict(img=self.load_image(info['img_path']), img_path=info['img_path'],
                       gt_label=info['gt_label'], sample_idx=idx)
        results = self.pipeline(results)
        label_map = self.store.load(info['img_path'])
        return dict(inputs=results['img'], data_samples=results['gt_label'],
                    label_maps=dict(maps=label_map, boxes=results['crop_box'], flip=results['flip']))

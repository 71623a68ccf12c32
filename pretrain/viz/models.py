"""Rebuild a classifier (or its backbone) from any weight file the project reads, for the figure tools.

* a **backbone file** (``.safetensors``, :mod:`mixcore.weights.backbone_file`): arch, img_size and the timm model
  arguments come from its metadata; it holds no classifier head (the stage-1 → stage-2 contract), so the model built
  from it has none (``has_head=False``);
* a **stage-1 training checkpoint** (mmengine ``.pth`` of a ``MixClassifier`` run): the model is rebuilt from the
  config mmengine stored in it, read as data (:func:`mixcore.stored_config.plain_config`, never executed), head
  included;
* an **official timm / DeiT / PVT ``.pth``** (no metadata): ``arch`` must be given; the head is loaded when the
  file has one.

Every file is read safely (safetensors, or ``torch.load(weights_only=True)``) and loaded strictly.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn

from mixcore.weights.errors import CheckpointError
from mixcore.weights.load import load_strict
from mixcore.weights.read import read_file
from mixcore.weights.state_dict import read_weights, strip_prefixes

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # timm's IMAGENET_DEFAULT_*


def _method_of_recipe(mixer_type):
    """The method a stage-1 config's ``model.mixer`` type builds (the recipes of the method registry,
    :mod:`pretrain.mix.methods`); a single mixer's own name otherwise ('NoMix': none)."""
    from pretrain.mix.methods import method_of_recipe
    return 'none' if mixer_type == 'NoMix' else method_of_recipe(mixer_type) or mixer_type


@dataclass
class LoadedModel:
    """A timm classifier in eval mode and what the figures say about it."""
    model: nn.Module
    source: str
    arch: str
    img_size: tuple
    method: Optional[str] = None
    epochs: Optional[int] = None
    has_head: bool = False
    kind: str = 'backbone file'          # 'backbone file' | 'training checkpoint' | 'timm checkpoint' | 'untrained'
    meta: dict = field(default_factory=dict)
    model_kwargs: dict = field(default_factory=dict)
    # input normalisation: ImageNet's, as the project trains (TimmTransform's default) and DeiT/PVT were trained —
    # not the timm arch's pretrained_cfg (vit_tiny_patch16_224's is 0.5/0.5); a training checkpoint's own test
    # pipeline overrides it
    mean: tuple = _IMAGENET_MEAN
    std: tuple = _IMAGENET_STD

    @property
    def num_classes(self) -> int:
        return int(getattr(self.model, 'num_classes', 0)) if self.has_head else 0

    @property
    def label(self) -> str:
        """Short name for legends and row titles, e.g. ``vit_tiny_patch16_224 transmix (12 ep.)``."""
        parts = [self.arch]
        if self.model_kwargs:  # a demo model is a timm arch with other widths: say which
            parts[0] += '[' + ' '.join(f'{k}={v}' for k, v in sorted(self.model_kwargs.items())) + ']'
        if self.method:
            parts.append(self.method)
        if self.kind == 'untrained':
            parts.append('(untrained)')
        elif self.epochs is not None:
            parts.append(f'({self.epochs} ep.)')
        return ' '.join(parts)

    @property
    def classes(self) -> Optional[tuple]:
        """The class names (label order) the model was trained with, when the file records them: a training
        checkpoint's ``meta.dataset_meta.classes`` (mmengine stores the training dataset's metainfo), a backbone
        file's ``classes``; ``None`` for files without them (official timm/DeiT/PVT weights)."""
        meta = self.meta if isinstance(self.meta, dict) else {}
        ds = meta.get('dataset_meta') if isinstance(meta.get('dataset_meta'), dict) else {}
        classes = ds.get('classes', meta.get('classes'))
        return tuple(str(c) for c in classes) if isinstance(classes, (list, tuple)) and classes else None

    @property
    def mean_std(self):
        return tuple(self.mean), tuple(self.std)


def _pair(x) -> tuple:
    if x is None:
        return None
    if isinstance(x, int):
        return (x, x)
    x = tuple(int(v) for v in x)
    return x if len(x) == 2 else (x[0], x[0])


def _create(arch: str, img_size, num_classes: int, model_kwargs: dict, source) -> nn.Module:
    import timm

    import pretrain.models  # noqa: F401  (registers pvt_* with timm)
    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, img_size=img_size,
                                 **(model_kwargs or {}))
    except RuntimeError as e:  # timm: "Unknown model (...)"
        raise CheckpointError(f'{source}: cannot build arch {arch!r} ({e})') from e


def _has_head(state_dict) -> bool:
    return 'head.weight' in state_dict


def build_untrained(arch: str, img_size: int | Sequence[int] = 224, num_classes: int = 1000,
                    model_kwargs: Optional[dict] = None) -> LoadedModel:
    """A random-init model (figures from it say so)."""
    img_size = _pair(img_size)
    model = _create(arch, img_size, num_classes, model_kwargs or {}, 'untrained model')
    return LoadedModel(model.eval(), 'untrained', arch, img_size, kind='untrained', has_head=num_classes > 0,
                       model_kwargs=dict(model_kwargs or {}))


def load_model(path, *, arch: Optional[str] = None, img_size=None, model_kwargs: Optional[dict] = None,
               need_head: bool = False) -> LoadedModel:
    """The model of a weight file (see the module doc). ``arch``/``img_size``/``model_kwargs`` override the file's
    metadata (required for a bare timm ``.pth``). ``need_head``: refuse a file without a classifier head with a
    message saying which file to pass instead."""
    path = str(path)
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: weight file not found')
    if path.endswith('.safetensors'):
        loaded = _from_backbone_file(path, arch, img_size, model_kwargs)
    else:
        obj = read_file(path)
        meta = obj.get('meta') if isinstance(obj, dict) else None
        if isinstance(meta, dict) and meta.get('cfg') and isinstance(obj.get('state_dict'), dict):
            loaded = _from_training_checkpoint(path, obj, arch, img_size, model_kwargs)
        else:
            loaded = _from_timm_checkpoint(path, arch, img_size, model_kwargs)
    if need_head and not loaded.has_head:
        hint = ('a backbone file holds the backbone only (no classifier head: stage 2 replaces it); pass the '
                'training checkpoint of the same run instead (<work_dir>/epoch_N.pth), which has the head'
                if loaded.kind == 'backbone file' else 'the file has no classifier head (head.weight)')
        raise CheckpointError(f'{path}: cannot classify: {hint}')
    return loaded


def _from_backbone_file(path, arch, img_size, model_kwargs) -> LoadedModel:
    sd, meta = read_weights(path)
    arch = arch or meta.get('arch')
    if not arch:
        raise CheckpointError(f'{path}: no arch in the metadata; pass the timm model name (--arch)')
    size = _pair(img_size) or _pair(meta.get('img_size')) or (224, 224)
    kwargs = dict(meta.get('model_kwargs') or {}) if model_kwargs is None else dict(model_kwargs)
    head = _has_head(sd)
    num_classes = int(sd['head.weight'].shape[0]) if head else 0
    model = _create(arch, size, num_classes, kwargs, path)
    load_strict(model, sd, source=path)
    return LoadedModel(model.eval(), path, arch, size, method=meta.get('method'), epochs=meta.get('epochs'),
                       has_head=head, kind='backbone file', meta=meta, model_kwargs=kwargs)


def stage1_model_config(cfg_text: str, source: str) -> dict:
    """``cfg.model`` of a stage-1 run (``MixClassifier``) from the config text a checkpoint stores (as data)."""
    from mixcore.stored_config import plain_config
    cfg = plain_config(cfg_text, source)
    model = cfg.get('model')
    if not isinstance(model, dict) or 'MixClassifier' not in str(model.get('type')):
        raise CheckpointError(f'{source}: not a stage-1 classifier checkpoint (model type '
                              f'{model.get("type") if isinstance(model, dict) else None!r}, expected MixClassifier)')
    return dict(model)


def _from_training_checkpoint(path, obj, arch, img_size, model_kwargs) -> LoadedModel:
    meta = dict(obj['meta'])
    mcfg = stage1_model_config(meta['cfg'], f'{path} (meta.cfg)')
    arch = arch or mcfg['arch']
    size = _pair(img_size) or _pair(mcfg.get('img_size', 224))
    kwargs = dict(mcfg.get('model_kwargs') or {}) if model_kwargs is None else dict(model_kwargs)
    sd = {k[len('model.'):]: v for k, v in obj['state_dict'].items() if k.startswith('model.')}
    if not sd:
        raise CheckpointError(f'{path}: no "model." weights in the state dict (not a MixClassifier checkpoint)')
    num_classes = int(sd['head.weight'].shape[0]) if _has_head(sd) else 0
    model = _create(arch, size, num_classes, kwargs, path)
    load_strict(model, sd, source=path)
    mixer = mcfg.get('mixer') if isinstance(mcfg.get('mixer'), dict) else {}
    method = mcfg.get('method') or _method_of_recipe(mixer.get('type')) or 'none'
    norm = _test_normalisation(meta['cfg'], path)
    return LoadedModel(model.eval(), path, arch, size, method=method, epochs=meta.get('epoch'),
                       has_head=_has_head(sd), kind='training checkpoint', meta=meta, model_kwargs=kwargs, **norm)


def _test_normalisation(cfg_text: str, source) -> dict:
    """mean/std of the TimmTransform in the stored config's test pipeline, when it sets them."""
    from mixcore.stored_config import plain_config
    cfg = plain_config(cfg_text, source)
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    for t in ((loader.get('dataset') or {}).get('pipeline') or []):
        if isinstance(t, dict) and t.get('mean') is not None and t.get('std') is not None:
            return dict(mean=tuple(t['mean']), std=tuple(t['std']))
    return {}


def _from_timm_checkpoint(path, arch, img_size, model_kwargs) -> LoadedModel:
    if not arch:
        raise CheckpointError(f'{path}: a timm/DeiT/PVT checkpoint carries no architecture; pass the timm model '
                              f'name (--arch deit_small_patch16_224, pvt_small, ...)')
    sd, _ = read_weights(path)
    sd = strip_prefixes(sd)
    size = _pair(img_size) or (224, 224)
    head = _has_head(sd)
    model = _create(arch, size, int(sd['head.weight'].shape[0]) if head else 0, model_kwargs or {}, path)
    if arch.startswith('pvt_'):
        from ..models.pvt import checkpoint_filter_fn
        sd = checkpoint_filter_fn(sd, model)
    load_strict(model, sd, source=path)
    return LoadedModel(model.eval(), path, arch, size, has_head=head, kind='timm checkpoint',
                       model_kwargs=dict(model_kwargs or {}))


# ------------------------------------------------------------------------------------------ images
def list_images(folder) -> tuple[list[Path], list[Optional[str]], list[str]]:
    """Images under ``folder``: ``(paths, class name per path or None, sorted class names)``.

    Class sub-folders (ImageNet layout ``<folder>/<class>/*``) give the labels; plain images have none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: image folder not found')
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    paths, labels = [], []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            paths.append(p)
            labels.append(None)
    for c in classes:
        for p in sorted((folder / c).rglob('*')):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                paths.append(p)
                labels.append(c)
    if not paths:
        raise FileNotFoundError(f'{folder}: no images ({", ".join(IMAGE_EXTS)}) in it or in its class sub-folders')
    return paths, labels, classes


def spread_over_classes(labels: Sequence[Optional[str]], count: int) -> list[int]:
    """Indices of ``count`` images taking the classes in turn (first image of each class, then the second...)."""
    by_class: dict = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    order, rank = [], 0
    while len(order) < count and any(rank < len(v) for v in by_class.values()):
        order.extend(v[rank] for v in by_class.values() if rank < len(v))
        rank += 1
    return order[:count]


def eval_transform(img_size, crop_pct: float = 0.875):
    """timm's evaluation resize + centre crop (bicubic, ``crop_pct``, as the demo and DeiT evaluate), to a [0, 1]
    tensor; normalisation is left to :func:`normalize` so figures can show the crop as the model saw it."""
    import math

    from torchvision import transforms as T
    size = _pair(img_size)
    scale = tuple(math.floor(s / crop_pct) for s in size)
    resize = scale[0] if size[0] == size[1] else scale
    return T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      T.ToTensor()])


def read_image(path, img_size, crop_pct: float = 0.875) -> torch.Tensor:
    """3×H×W in [0, 1], read as training reads it (:func:`mixcore.image_io.read_rgb`: EXIF orientation applied,
    16-bit grey scaled to 8 bits, decompression bombs refused); a broken file is an error naming it."""
    from mixcore.image_io import read_rgb
    return eval_transform(img_size, crop_pct)(read_rgb(path))


def normalize(images: torch.Tensor, loaded: LoadedModel) -> torch.Tensor:
    mean, std = loaded.mean_std
    return (images - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """What a JSON record says about a model."""
    return dict(checkpoint=loaded.source, kind=loaded.kind, arch=loaded.arch, img_size=list(loaded.img_size),
                method=loaded.method, epochs=loaded.epochs, label=loaded.label)

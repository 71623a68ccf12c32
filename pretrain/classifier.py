"""MixClassifier: a timm classifier trained with a batch-mixing method (mmengine model).

Training step: ``mixer(images, labels)`` → forward of the mixed batch through the
:class:`~pretrain.models.class_attention.ClassAttentionProbe` (class attention only when the batch's label needs
it) → ``mixed.targets(attn=..., logits=...)`` → soft-target CE (or BCE). Evaluation: top-k predictions for
:class:`pretrain.metrics.Accuracy`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import timm
import torch
from mmengine.model import BaseDataPreprocessor, BaseModel
from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy

import pretrain.models  # noqa: F401  (registers PVT v1 with timm)
from pretrain.models.class_attention import ClassAttentionProbe, has_class_token, token_stride
from pretrain.mix.methods import method_of_recipe

from . import mixers  # noqa: F401  (the mixers a config names)
from .registry import MODELS

MODELS.register_module(module=SoftTargetCrossEntropy)
MODELS.register_module(module=BinaryCrossEntropy)


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Moves ``dict(inputs=B×3×H×W, data_samples=int64 B)`` to the model's device.

    Float images arrive normalised by the timm transform and are only moved. uint8 images
    (``TimmTransform(uint8=True)``, GPU runs) are moved as uint8 and normalised there with ``mean``/``std``
    (the same operations as torchvision's ``ToTensor`` + ``Normalize``: ``x / 255``, ``- mean``, ``/ std``),
    then, in training, erased with timm's ``RandomErasing`` (``random_erasing=dict(probability=, mode=,
    max_count=)``, DeiT's ``re_prob``/``re_mode``/``re_count``) on the device — timm's ``PrefetchLoader``.
    Also accepts mmengine's ``pseudo_collate`` form (lists of tensors / ints). With ``num_classes`` set, a
    label outside ``[0, num_classes)`` is an error that says so (checked on the CPU tensor, before the copy).
    """

    def __init__(self, num_classes: Optional[int] = None, non_blocking: bool = True,
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 random_erasing: Optional[dict] = None):
        super().__init__(non_blocking=non_blocking)
        self.num_classes = num_classes
        if (mean is None) != (std is None):
            raise ValueError('ClsDataPreprocessor: give both mean and std (for uint8 inputs) or neither')
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.random_erasing = dict(random_erasing) if random_erasing else None
        self._erasers = {}

    def _normalise(self, inputs: torch.Tensor, training: bool) -> torch.Tensor:
        if self.mean is None:
            raise ValueError('ClsDataPreprocessor got uint8 images but no mean/std to normalise them with '
                             '(set model.data_preprocessor mean/std, or use TimmTransform(uint8=False))')
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=inputs.device).view(shape)
        std = torch.tensor(self.std, device=inputs.device).view(shape)
        x = inputs.float().div_(255).sub_(mean).div_(std)
        if training and self.random_erasing and self.random_erasing.get('probability', 0) > 0:
            key = str(x.device)
            if key not in self._erasers:
                from timm.data.random_erasing import RandomErasing
                self._erasers[key] = RandomErasing(**self.random_erasing, device=x.device)
            x = self._erasers[key](x)
        return x

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs, labels = data['inputs'], data.get('data_samples')
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if labels is not None and not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor([int(x) for x in labels], dtype=torch.long)
        if labels is not None and self.num_classes is not None and labels.numel() and labels.device.type == 'cpu':
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= self.num_classes:
                raise ValueError(f'label {hi if hi >= self.num_classes else lo} outside the model\'s '
                                 f'{self.num_classes} classes: does the dataset have more classes than '
                                 f'model.num_classes?')
        # extra keys (the crop-aligned teacher label maps of pretrain.label_map_data) travel to the device as well
        extra = {k: v for k, v in data.items() if k not in ('inputs', 'data_samples')}
        data = self.cast_data(dict(inputs=inputs, data_samples=labels, **extra))
        if data['inputs'].dtype == torch.uint8:
            data['inputs'] = self._normalise(data['inputs'], training)
        return data


def _as_pair(x) -> tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, int) else (int(x[0]), int(x[1]))


def finest_stride(model, default: int) -> int:
    """The model's finest token stride in pixels: PVT v1 stage 1 (``strides[0]``, 4 px), a ViT's patch."""
    strides = getattr(model, 'strides', None)
    if strides:
        return int(strides[0])
    patch = getattr(getattr(model, 'patch_embed', None), 'patch_size', None)
    return _as_pair(patch)[0] if patch is not None else int(default)


def mixer_tree(mixer):
    """A mixer and, for a MixSwitch, its members (recursively)."""
    yield mixer
    for m in getattr(mixer, 'mixers', ()):  # MixSwitch members, recursively
        yield from mixer_tree(m)


def fit_mixer_to_model(mixer, patch_size: int, input_unit: Optional[int] = None):
    """Give a built mixer its model's token stride (a MixSwitch passes it on to its members) and, to those that
    take one, the finest token grid of the model (MaskMix snaps its pixel cells to it: PVT v1's 4 px)."""
    if hasattr(mixer, 'patch_size'):
        mixer.patch_size = patch_size
    if input_unit is not None:
        for m in mixer_tree(mixer):
            if hasattr(m, 'input_unit'):
                m.input_unit = input_unit
    return mixer


@MODELS.register_module()
class MixClassifier(BaseModel):
    """Image classifier trained with a mixing method.

    Models without a class token (timm Swin) train with the methods whose labels need no class attention:
    Mixup/CutMix, MaskMix with area labels, TokenMix with teacher label maps; their token grid is the last stage's
    (Swin: 32 px, 7×7 at 224). TransMix, PAL and TokenMix's own-attention source are refused when the model is built.

    Args:
        arch: timm model name (``deit_small_patch16_224``, ``vit_*``, ``cait_*``, ``xcit_*``, our ``pvt_small``,
            ``swin_*`` ...).
        num_classes: classes of the head (and of the mixer's targets).
        img_size: training crop; passed to timm (position-embedding grid) and stored in the backbone file.
        drop_path_rate: stochastic depth (DeiT recipe: 0.1).
        model_kwargs: further ``timm.create_model`` arguments (tiny demo models: ``embed_dim``, ``depth`` ...).
        mixer: config of a mixer of :mod:`pretrain.mix` (registered by :mod:`pretrain.mixers`) or a mixer object;
            ``None``: no mixing (label smoothing only). ``num_classes`` is filled in, ``patch_size`` is set from
            the model's token stride.
        loss: ``dict(type='SoftTargetCrossEntropy')`` (default) or ``dict(type='BinaryCrossEntropy', ...)``
            (timm's; TokenMix's BCE option). The loss is chosen by the targets' form, as in timm: MixPro's
            official PAL loss λ·CE(p, y_A) + (1-λ)·CE(p, y_B) on hard labels is soft-target CE against the
            unsmoothed target its MaskMix batches carry with ``pal_label='official'`` (CE is linear in the
            target), so the default loss computes it exactly, value and gradient (tests/test_official_recipes.py).
        method: name of the method stored in the backbone file (default: the mixer's ``method`` or
            ``recipe`` attribute).
        self_source_mode: model mode of TokenMix's no-grad forward of the clean images ('eval' or 'train').
        label_smoothing: ε of the targets when ``mixer`` is None (a mixer config carries its own).
        topk: the k of the top-k predictions returned for evaluation.
    """

    def __init__(self, arch: str, num_classes: int = 1000, img_size: Union[int, Sequence[int]] = 224,
                 drop_path_rate: float = 0.1, model_kwargs: Optional[dict] = None, mixer=None,
                 loss: Optional[dict] = None, method: Optional[str] = None, self_source_mode: str = 'eval',
                 label_smoothing: float = 0.1, topk: Sequence[int] = (1, 5), data_preprocessor=None,
                 init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # built from our registry: works without a default scope
            data_preprocessor = dict(data_preprocessor)
            if data_preprocessor.get('type') in ('ClsDataPreprocessor', ClsDataPreprocessor):
                data_preprocessor.setdefault('num_classes', num_classes)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if self_source_mode not in ('eval', 'train'):
            raise ValueError(f"self_source_mode must be 'eval' or 'train', got {self_source_mode!r}")
        self.arch = arch
        self.num_classes = int(num_classes)
        self.img_size = _as_pair(img_size)
        self.topk = tuple(topk)
        self.self_source_mode = self_source_mode
        self.model_kwargs = dict(model_kwargs or {})
        self.model = timm.create_model(arch, pretrained=False, num_classes=self.num_classes,
                                       drop_path_rate=drop_path_rate, img_size=img_size, **self.model_kwargs)
        # The probe hooks into self.model; kept out of the module tree so the state dict has each weight
        # once, under 'model.' (what mixcore.weights.read expects of stage-1 checkpoints). None: no class token.
        self.__dict__['probe'] = ClassAttentionProbe(self.model) if has_class_token(self.model) else None
        self.patch_size = int(self.probe.patch_size) if self.probe is not None else token_stride(self.model)
        if self.img_size[0] % self.patch_size or self.img_size[1] % self.patch_size:
            raise ValueError(f'img_size {self.img_size} is not divisible by the {self.patch_size}-px token stride of '
                             f'{arch}')
        recipe_method = method_of_recipe(mixer.get('type')) if isinstance(mixer, dict) else None
        self.mixer = self._build_mixer(mixer, label_smoothing)
        # the method of the registry whose recipe the config names (a user's method too), else what the mixer says
        self.method = (method or recipe_method or getattr(self.mixer, 'recipe', None)
                       or getattr(self.mixer, 'method', 'none'))
        self._check_mixer_fits_model()
        self.loss_fn = MODELS.build(loss or dict(type='SoftTargetCrossEntropy'))

    def _build_mixer(self, mixer, label_smoothing):
        if mixer is None:
            mixer = dict(type='NoMix', label_smoothing=label_smoothing)
        if isinstance(mixer, dict):
            mixer = dict(mixer)
            given = mixer.setdefault('num_classes', self.num_classes)
            if given != self.num_classes:
                raise ValueError(f'mixer.num_classes={given} differs from the model\'s num_classes='
                                 f'{self.num_classes}')
            mixer = MODELS.build(mixer)
        elif getattr(mixer, 'num_classes', self.num_classes) != self.num_classes:
            raise ValueError(f'mixer.num_classes={mixer.num_classes} differs from the model\'s num_classes='
                             f'{self.num_classes}')
        return fit_mixer_to_model(mixer, self.patch_size, finest_stride(self.model, self.patch_size))

    def _check_mixer_fits_model(self):
        """Refuse, at build time, a method whose labels need the class attention of a model without a class token."""
        if self.probe is not None:
            return

        bad = [m for m in mixer_tree(self.mixer)  # the members of (nested) MixSwitches
               if not hasattr(m, 'mixers') and m.needs & {'attn', 'clean_attn'}]
        if bad:
            why = '; '.join(dict.fromkeys(getattr(m, 'CLASS_ATTENTION_NEED', f'{type(m).__name__} needs class '
                                                                            f'attention') for m in bad))
            raise ValueError(f'{self.arch} ({type(self.model).__name__}) has no class token, so the mixing method '
                             f'{self.method!r} cannot label its batches: {why}')

    def seed_rank_shared(self, seed: int) -> None:
        """Seed the draws that must be the same on every rank (a MixSwitch's member choice); called by
        ``mixcore.hooks.ResumableRandomnessHook`` before each step with a seed of (run seed, iteration)."""
        reseed = getattr(self.mixer, 'reseed_choice', None)
        if reseed is not None:
            reseed(seed)

    # ------------------------------------------------------------------ mmengine entry points
    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None, mode: str = 'tensor',
                label_maps: Optional[dict] = None):
        if mode == 'loss':
            return self.loss(inputs, data_samples, label_maps=label_maps)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.model(inputs)
        raise ValueError(f'invalid mode {mode!r} (loss / predict / tensor)')

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor, label_maps: Optional[dict] = None) -> dict:
        """``label_maps``: the batch's crop-aligned teacher label maps (TokenMix's 'label_maps' source), as
        :class:`pretrain.label_map_data.ImageNetFolderWithLabelMaps` delivers them."""
        if labels is None:
            raise ValueError('training needs labels (data_samples)')
        mixed = self.mixer(inputs, labels)
        needs = mixed.needs
        attn = None
        if 'clean_attn' in needs:  # TokenMix, own class attention of the clean images as activation maps
            attn = self._clean_attention(inputs)
        if 'attn' in needs:
            logits, attn = self.probe(mixed.images)
        else:
            logits = self.model(mixed.images)
        targets = mixed.targets(attn=attn, logits=logits if 'logits' in needs else None,
                                label_maps=label_maps if 'label_maps' in needs else None)
        return dict(loss=self.loss_fn(logits, targets))  # float32 targets (also under AMP)

    @torch.no_grad()
    def _clean_attention(self, images: torch.Tensor) -> torch.Tensor:
        was_training = self.model.training
        if self.self_source_mode == 'eval':
            self.model.eval()
        try:
            _, attn = self.probe(images)
        finally:
            self.model.train(was_training)
        return attn

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, labels: Optional[torch.Tensor] = None) -> list:
        logits = self.model(inputs)
        k = min(max(self.topk), logits.shape[1])
        top = logits.topk(k, dim=1).indices.cpu()
        gts = labels.cpu().tolist() if labels is not None else [None] * len(top)
        return [dict(topk=t.tolist(), gt_label=g, num_classes=self.num_classes) for t, g in zip(top, gts)]

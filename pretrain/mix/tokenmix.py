""" TokenMix (Liu et al., ECCV 2022): token-level block masks and labels from activation maps.

The paper's label source is a teacher's dense label map per training image (official: NFNet-F6 maps in the
TokenLabeling format, precomputed offline), cropped with the image: :func:`crop_label_maps` RoIAligns each map's
ground-truth channel to the sample's RandomResizedCrop box at the token grid (flip applied), normalised to sum 1
as the official ``tokenmix.py`` does. The crop box and flip come from the data pipeline
(:mod:`pretrain.label_map_data`); the map files from :mod:`pretrain.label_maps`.
"""
import math
import os
from dataclasses import dataclass
from typing import FrozenSet, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .base import MixedBatch, Mixer, numpy_rng, paste, random_subsets, upsample_mask
from .methods import MixMethod, register_mix_method

__all__ = ['TokenMix', 'block_mask', 'random_token_mask', 'normalize_map', 'tokenmix_weights', 'CAMTeacher',
           'CropLabelMaps', 'crop_label_maps', 'official_tokenmix_targets']


def block_mask(
        grid: Tuple[int, int],
        num_masked: int,
        min_block: int = 14,
        aspect_range: Tuple[float, float] = (0.3, 1 / 0.3),
        rng: Optional[np.random.Generator] = None,
        attempts: int = 10,
        return_blocks: bool = False,
        official: bool = False,
):
    """BEiT-style block masking on an h×w token grid: bool h×w with (up to) ``num_masked`` tokens set.

    Blocks are added one at a time: area ~ U[min_block, max(min_block, remaining)], aspect log-uniform in
    ``aspect_range``; each block has ≥ ``min_block`` tokens, a side ratio within ``aspect_range`` after rounding,
    and adds between 1 and ``remaining`` new tokens (it may overlap earlier blocks). When ``attempts`` random draws
    fail, a block is drawn uniformly among all placements that fit; the count is reached unless no block obeying
    the rules can add what remains (then it stops short, as BEiT's generator does). Placement is sequential by
    nature and runs on the CPU in numpy. ``return_blocks`` also returns the (top, left, height, width) of each block.

    ``official=True`` follows TokenMix's ``generate_mask`` (Sense-X/TokenMix ``tokenmix.py``) rule by rule: a block
    is accepted when both sides are strictly smaller than the grid and it adds 1..remaining tokens (no aspect check
    after rounding, no area floor beyond ``min_block`` in the draw), and the mask stops where 10 draws in a row
    add nothing (no exhaustive fallback).
    """
    h, w = grid
    if not 0 < num_masked < h * w:
        raise ValueError(f'block_mask: {num_masked} masked tokens of {h * w} covers everything or nothing')
    if min_block > num_masked:
        raise ValueError(f'block_mask: min_block={min_block} is larger than the {num_masked} tokens to mask on the '
                         f'{h}x{w} grid')
    rng = numpy_rng() if rng is None else rng  # the global torch RNG seeds it
    log_lo, log_hi = math.log(aspect_range[0]), math.log(aspect_range[1])
    mask = np.zeros((h, w), dtype=bool)
    blocks = []
    count = 0
    while count < num_masked:
        remaining = num_masked - count
        placed = False
        for _ in range(attempts):
            area = rng.uniform(min_block, max(min_block, remaining))
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            bh, bw = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if official:
                if not (bw < w and bh < h):
                    continue
            elif bh * bw < min_block or bh > h or bw > w or not aspect_range[0] <= bh / bw <= aspect_range[1]:
                continue
            top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
            new = bh * bw - int(mask[top:top + bh, left:left + bw].sum())
            if 0 < new <= remaining:
                placed = True
                break
        if not placed and official:
            if count == 0:
                raise ValueError(f'block_mask: no block fits the {h}x{w} grid in {attempts} draws')
            break
        if not placed:
            block = _any_valid_block(mask, remaining, min_block, aspect_range, rng)
            if block is None:
                if count == 0:  # not even one block fits: the mask would cover nothing
                    raise ValueError(f'block_mask: no block of >= {min_block} tokens with aspect in '
                                     f'{aspect_range} fits the {h}x{w} grid (lower min_block)')
                break
            top, left, bh, bw = block
            new = bh * bw - int(mask[top:top + bh, left:left + bw].sum())
        mask[top:top + bh, left:left + bw] = True
        blocks.append((int(top), int(left), bh, bw))
        count += new
    return (mask, blocks) if return_blocks else mask


def _any_valid_block(mask, remaining, min_block, aspect_range, rng):
    """Uniform choice among all (size, position) blocks obeying the rules that add 1..remaining new tokens."""
    h, w = mask.shape
    # summed-area table: masked tokens inside any rectangle in O(1)
    sat = np.zeros((h + 1, w + 1), dtype=np.int64)
    sat[1:, 1:] = mask.cumsum(0).cumsum(1)
    candidates = []
    for bh in range(1, h + 1):
        for bw in range(1, w + 1):
            if bh * bw < min_block or not aspect_range[0] <= bh / bw <= aspect_range[1]:
                continue
            inside = sat[bh:, bw:] - sat[:-bh, bw:] - sat[bh:, :-bw] + sat[:-bh, :-bw]
            new = bh * bw - inside
            tops, lefts = np.nonzero((new > 0) & (new <= remaining))
            candidates += [(t, l, bh, bw) for t, l in zip(tops.tolist(), lefts.tolist())]
    if not candidates:
        return None
    return candidates[rng.integers(len(candidates))]


def random_token_mask(batch_size: int, grid: Tuple[int, int], num_masked: int, generator=None) -> torch.Tensor:
    """Bool B×h×w with exactly ``num_masked`` tokens chosen uniformly per sample ('random' mask type)."""
    h, w = grid
    if not 0 < num_masked < h * w:
        raise ValueError(f'random_token_mask: {num_masked} masked tokens of {h * w} covers everything or nothing')
    return random_subsets(batch_size, h * w, num_masked, generator).view(batch_size, h, w)


def normalize_map(maps: torch.Tensor) -> torch.Tensor:
    """Spatially normalise B×p non-negative maps to sum 1; an all-zero map becomes uniform."""
    maps = maps.float().clamp_min(0.)
    total = maps.sum(1, keepdim=True)
    uniform = torch.full_like(maps, 1. / maps.shape[1])
    return torch.where(total > 0, maps / total.clamp_min(torch.finfo(maps.dtype).tiny), uniform)


def tokenmix_weights(token_mask: torch.Tensor, maps: torch.Tensor, partner: torch.Tensor):
    """(w_self, w_partner) = (Σ kept·Â_self, Σ pasted·Â_partner); Â spatially normalised, weights not renormalised."""
    m = token_mask.flatten(1).to(maps.dtype)
    maps = normalize_map(maps)
    return ((1. - m) * maps).sum(1), (m * maps[partner]).sum(1)


@dataclass
class CropLabelMaps:
    """A batch's teacher label maps and where each sample's crop lies in its image.

    maps: B×2×k×H×W float, TokenLabeling layout: ``maps[:, 0]`` the top-k scores, ``maps[:, 1]`` their class
        indices (stored as floats), on the teacher's H×W grid over the whole image.
    boxes: B×4 float, the RandomResizedCrop box (x1, y1, x2, y2) as fractions of the image width / height.
    flip: B bool, whether the crop was flipped horizontally afterwards.
    affine: optional B×2×3, the geometric RandAugment operations applied after the flip, as the ``theta`` of
        ``F.affine_grid`` (output → input, [-1, 1] coordinates); None: none.
    """
    maps: torch.Tensor
    boxes: torch.Tensor
    flip: torch.Tensor
    affine: Optional[torch.Tensor] = None

    @classmethod
    def of(cls, obj: Union['CropLabelMaps', Mapping]) -> 'CropLabelMaps':
        """From the dict the label-map dataset delivers (keys ``maps``, ``boxes``, ``flip``)."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping) or not {'maps', 'boxes', 'flip'} <= set(obj):
            raise ValueError(f'label_maps must be CropLabelMaps or a dict with maps/boxes/flip, got '
                             f'{type(obj).__name__} {sorted(obj) if isinstance(obj, Mapping) else ""}')
        return cls(obj['maps'], obj['boxes'], obj['flip'], obj.get('affine'))


def crop_label_maps(label_maps: Union[CropLabelMaps, Mapping], labels: torch.Tensor, grid: Tuple[int, int],
                    box_order: str = 'xyxy') -> torch.Tensor:
    """B×(h·w) Â: each sample's ground-truth channel of its label map, cropped and flipped as the image was,
    at the token grid, normalised to sum 1 (official rule: ``m / (Σ m + 1e-8)``, no clamp, no fallback).

    The official code scatters the top-k into a dense B×C×H×W map and RoIAligns all C channels; RoIAlign is
    linear per channel, so taking the ground-truth channel first (Σ_k score_k·[index_k = y]) and aligning only it
    gives the same numbers at 1/C of the work. RoIAlign as the official ``get_label``: torchvision ``roi_align``,
    ``aligned=False``, adaptive sampling, box = fraction·size − 0.5 in map cells. Geometric RandAugment operations
    recorded by the pipeline (``affine``) then move the token-grid map as they moved the image (bilinear, zeros
    outside; the official code warps its map by nearest neighbour before the crop).

    box_order: 'xyxy' puts x on the map's width as the crop had it. 'official' reproduces the released code
        (ReLabel → TokenLabeling → TokenMix): it records the box as (top, left, bottom, right) and hands it to
        ``roi_align``, which reads (x1, y1, x2, y2), so the map is cropped transposed; it scales both axes by
        the map width and flips the map before the crop (the box is then the flipped image's).
    """
    from torchvision.ops import roi_align  # written in C++/CUDA by torchvision, runs on the batch's device

    lm = CropLabelMaps.of(label_maps)
    maps = lm.maps
    B = labels.shape[0]
    if maps.ndim != 5 or maps.shape[0] != B or maps.shape[1] != 2:
        raise ValueError(f'label maps must be B×2×k×H×W with B={B}, got {tuple(maps.shape)}')
    if lm.boxes.shape != (B, 4) or lm.flip.shape != (B,):
        raise ValueError(f'label-map boxes must be {B}×4 and flips {B}, got {tuple(lm.boxes.shape)} and '
                         f'{tuple(lm.flip.shape)}')
    if box_order not in ('xyxy', 'official'):
        raise ValueError(f"box_order must be 'xyxy' or 'official', got {box_order!r}")
    maps = maps.float()
    scores, index = maps[:, 0], maps[:, 1].round().long()
    gt = (scores * (index == labels.view(B, 1, 1, 1))).sum(1, keepdim=True)  # B×1×H×W ground-truth channel
    H, W = gt.shape[-2:]
    boxes = lm.boxes.to(gt.device, torch.float32)
    flip = lm.flip.to(gt.device).bool()
    x1, y1, x2, y2 = boxes.unbind(1)
    if box_order == 'official':
        gt = torch.where(flip.view(B, 1, 1, 1), gt.flip(-1), gt)
        x1, x2 = torch.where(flip, 1. - x2, x1), torch.where(flip, 1. - x1, x2)
        rois = torch.stack([y1, x1, y2, x2], 1) * W - 0.5
    else:
        rois = torch.stack([x1 * W, y1 * H, x2 * W, y2 * H], 1) - 0.5
    idx = torch.arange(B, device=gt.device, dtype=torch.float32).view(B, 1)
    out = roi_align(gt, torch.cat([idx, rois], 1), output_size=tuple(grid), spatial_scale=1.0, sampling_ratio=-1,
                    aligned=False)[:, 0]
    if box_order == 'xyxy':
        out = torch.where(flip.view(B, 1, 1), out.flip(-1), out)
    if lm.affine is not None:  # RandAugment's rotate / shear / translate, as the image had them (zeros outside)
        theta = lm.affine.to(out.device, torch.float32)
        grid_ = F.affine_grid(theta, [B, 1, *out.shape[-2:]], align_corners=False)
        out = F.grid_sample(out.unsqueeze(1), grid_, mode='bilinear', padding_mode='zeros', align_corners=False)[:, 0]
    out = out.flatten(1)
    return out / (out.sum(1, keepdim=True) + 1e-8)


def official_tokenmix_targets(labels: torch.Tensor, partner: torch.Tensor, w_self: torch.Tensor,
                              w_partner: torch.Tensor, num_classes: int, smoothing: float = 0.1) -> torch.Tensor:
    """TokenMix's own label smoothing (Sense-X/TokenMix ``tokenmix.py``, ``Mixup.__call__``): per image
    on = w − ε/2 + ε/(2C), off = ε/(2C), the two one-hot rows summed; **no clamp** (a weight below ε/2 − ε/(2C)
    gives a slightly negative target, as in the released code)."""
    half_off = smoothing / num_classes / 2
    w_self = w_self.float().view(-1, 1)
    w_partner = w_partner.float().view(-1, 1)
    B = labels.shape[0]

    def rows(y, w):  # timm's one_hot with a per-row on value
        full = torch.full((B, num_classes), half_off, device=w.device, dtype=w.dtype)
        return full.scatter_(1, y.view(-1, 1).to(w.device), w - smoothing / 2 + half_off)

    return rows(labels, w_self) + rows(labels[partner], w_partner)


class CAMTeacher:
    """Class activation map of the ground-truth class from a timm CNN classifier (TokenMix's teacher source).

    The model is built with ``pretrained=False`` and loaded (strict) from a local ``checkpoint`` through
    :func:`mixcore.weights.state_dict.read_weights` (.safetensors, or torch.load with ``weights_only=True``; EMA weights
    preferred), then frozen. The CAM is ReLU(Σ_c W[y, c]·F_c) of the last feature map, resized (bilinear) to the
    token grid and normalised.
    Not an nn.Module on purpose: a student holding it does not save the teacher in its checkpoints.

    Args:
        model_name: any timm classifier whose ``forward_features`` is B×C×h×w and whose classifier is a Linear on
            the pooled features (a head with a norm or pre-logits layer, e.g. ConvNeXt's, is refused).
        checkpoint: local weight file; None leaves the random init (tests, smoke runs only).
        num_classes: classes of the teacher head.
    """

    def __init__(self, model_name: str, checkpoint: Optional[str] = None, num_classes: int = 1000, **kwargs):
        import timm
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)
        self._check_head()
        if checkpoint is not None:
            if not os.path.isfile(checkpoint):
                raise FileNotFoundError(f'CAMTeacher checkpoint not found: {checkpoint}')
            # the project's one weight reader (torch only: no mmengine); EMA weights first, as timm's reader
            from mixcore.weights.load import load_strict
            from mixcore.weights.state_dict import read_weights
            load_strict(self.model, read_weights(checkpoint, ema=True)[0], source=checkpoint)
        self.model.eval().requires_grad_(False)
        self.checkpoint = checkpoint

    def _check_head(self):
        """The CAM W·F is only the model's own when the classifier is a Linear directly on the pooled features."""
        head = self.model.get_classifier()
        if not isinstance(head, torch.nn.Linear):
            raise ValueError(f'CAMTeacher needs a Linear classifier, {self.model_name} has {type(head).__name__}')
        name = next((n for n, m in self.model.named_modules() if m is head), '')
        prefix = name.rpartition('.')[0]
        owner = self.model.get_submodule(prefix)
        if owner is self.model:
            return
        # the classifier sits in a head module (timm ClassifierHead / NormMlpClassifierHead): global pooling and
        # dropout before the Linear are what a CAM assumes, a norm or pre-logits layer in between is not
        extra = []
        for n in ('norm', 'pre_logits'):
            m = getattr(owner, n, None)
            if isinstance(m, torch.nn.Module) and not isinstance(m, torch.nn.Identity):
                extra.append(f'{prefix}.{n} ({type(m).__name__})')
        if extra:
            raise ValueError(
                f'CAMTeacher needs a Linear classifier directly on the pooled features, {self.model_name} applies '
                f'{", ".join(extra)} before {name}: its class activation map is not W·F')

    def to(self, device):
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """B×(h·w) spatially normalised CAM of ``labels`` on ``images``."""
        head = self.model.get_classifier()
        if head.weight.device != images.device:
            self.model.to(images.device)
        feats = self.model.forward_features(images)
        if feats.ndim != 4 or feats.shape[1] != head.in_features:
            raise ValueError(
                f'CAMTeacher {self.model_name}: forward_features gave {tuple(feats.shape)}, expected '
                f'B×{head.in_features}×h×w')
        device = feats.device.type if torch.amp.is_autocast_available(feats.device.type) else 'cpu'
        with torch.autocast(device_type=device, enabled=False):  # float32 CAM also under AMP
            cam = torch.einsum('bchw,bc->bhw', feats.float(), head.weight[labels].float()).relu()
            cam = F.interpolate(cam.unsqueeze(1), size=grid, mode='bilinear', align_corners=False)
        return normalize_map(cam.flatten(1))


class TokenMix(Mixer):
    """Mix at token level with a (BEiT-style) block mask and label by activation mass each image keeps.

    ``mixed.targets()``: ỹ = (Σ kept·Â_self)·y_self + (Σ pasted·Â_partner)·y_partner, the weights not renormalised.
    Activation source (Â of each image's ground-truth class, spatially normalised):
      * 'label_maps' (default; the paper's and the official code's): a teacher's precomputed dense label map of
        each training image (TokenLabeling format, :mod:`pretrain.label_maps`), cropped and flipped as the image
        was and RoIAligned to the token grid (:func:`crop_label_maps`). ``mixed.needs == {'label_maps'}``: call
        ``targets(label_maps=...)`` with what :class:`pretrain.label_map_data.ImageNetFolderWithLabelMaps`
        delivers. Cost: the map lookup is a B×k×H×W product, one single-channel RoIAlign and (with RandAugment)
        one grid sample: a train step as CutMix's (``tools/benchmark_mix.py``, DeiT-S batch 16, 2 CPU threads:
        0.92× on a loaded machine; measured directly, mask placement + lookup add ~8 ms to a ~1 s step).
      * 'attention': the model's own class attention on the **clean** images — OpenMixup's substitute, not the
        paper's method (not class-specific; an extra no-grad forward: 1.31-1.33× a CutMix step on DeiT-S batch 16,
        CPU, ``tools/benchmark_mix.py``). ``mixed.needs == {'clean_attn'}``; call ``targets(attn=A_clean)`` with
        B×(h·w); the partner's map is ``A_clean[partner]``.
      * 'teacher': a :class:`CAMTeacher` evaluated on the (cropped) clean images when mixing (teacher forward
        each step),
      * 'area': no activation (uniform maps): the token shares, an ablation.

    Args:
        mask_ratio: λ, share of tokens taken from the partner (paper: 0.5).
        mask_type: 'block' (BEiT-style blocks) or 'random' (uniform tokens, ablation).
        variant: 'paper' (blocks ≥ 14 tokens, target λ·p) or 'official' (Sense-X/TokenMix ``generate_mask``:
            blocks ≥ 1 token, target int(λ·p) + 14, its acceptance rule, stop after 10 failed draws).
        min_block_tokens / extra_target_tokens: override the variant's values.
        aspect_range: block aspect ratio range (log-uniform).
        per_sample: one mask per sample instead of one per batch (official: per batch); block placement then
            loops over the batch.
        smoothing_rule: 'timm' (ỹ = w_self·smooth(y_self) + w_partner·smooth(y_partner), timm's ε) or 'official'
            (TokenMix's code: per image on = w − ε/2 + ε/(2C), off = ε/(2C), summed, no clamp; see
            :func:`official_tokenmix_targets`).
        box_order: label-map crop geometry, 'xyxy' (correct) or 'official' (the released code's transposed box),
            see :func:`crop_label_maps`.
    """

    #: why a model without a class token cannot be trained with it, and what to use instead
    CLASS_ATTENTION_NEED = ("TokenMix with source='attention' takes the activation maps from the class-token "
                            "attention on the clean images (use source='teacher' with a CAMTeacher or label maps, "
                            "or source='area')")
    method = 'tokenmix'

    def __init__(
            self,
            num_classes: int = 1000,
            mask_ratio: float = 0.5,
            mask_type: str = 'block',
            variant: str = 'paper',
            min_block_tokens: Optional[int] = None,
            extra_target_tokens: Optional[int] = None,
            aspect_range: Sequence[float] = (0.3, 1 / 0.3),
            per_sample: bool = False,
            source: str = 'label_maps',
            teacher: Optional[CAMTeacher] = None,
            smoothing_rule: str = 'timm',
            box_order: str = 'xyxy',
            **kwargs,
    ):
        super().__init__(num_classes=num_classes, **kwargs)
        if not 0. < mask_ratio < 1.:
            raise ValueError(f'TokenMix mask_ratio must be in (0, 1) (a region covering something but not all), '
                             f'got {mask_ratio}')
        if mask_type not in ('block', 'random'):
            raise ValueError(f"mask_type must be 'block' or 'random', got {mask_type!r}")
        if variant not in ('paper', 'official'):
            raise ValueError(f"variant must be 'paper' or 'official', got {variant!r}")
        if source not in ('label_maps', 'attention', 'teacher', 'area'):
            raise ValueError(f"source must be 'label_maps', 'attention', 'teacher' or 'area', got {source!r}")
        if source == 'teacher' and teacher is None:
            raise ValueError("source='teacher' needs a CAMTeacher (teacher=...)")
        if smoothing_rule not in ('timm', 'official'):
            raise ValueError(f"smoothing_rule must be 'timm' or 'official', got {smoothing_rule!r}")
        if box_order not in ('xyxy', 'official'):
            raise ValueError(f"box_order must be 'xyxy' or 'official', got {box_order!r}")
        self.mask_ratio = mask_ratio
        self.mask_type = mask_type
        self.variant = variant
        self.min_block_tokens = min_block_tokens if min_block_tokens is not None else (
            14 if variant == 'paper' else 1)
        self.extra_target_tokens = extra_target_tokens if extra_target_tokens is not None else (
            0 if variant == 'paper' else 14)
        self.aspect_range = tuple(aspect_range)
        self.per_sample = per_sample
        self.source = source
        self.teacher = teacher
        self.smoothing_rule = smoothing_rule
        self.box_order = box_order

    @property
    def needs(self) -> FrozenSet[str]:
        return {'attention': frozenset({'clean_attn'}), 'label_maps': frozenset({'label_maps'})}.get(
            self.source, frozenset())

    def num_masked(self, grid: Tuple[int, int]) -> int:
        p = grid[0] * grid[1]
        # official: int(mask_ratio·p) + 14; int and round agree for λ = 0.5 on even grids
        n = (int(self.mask_ratio * p) if self.variant == 'official' else int(round(self.mask_ratio * p))) \
            + self.extra_target_tokens
        if not 0 < n < p:
            raise ValueError(f'TokenMix: {n} pasted tokens of {p} covers everything or nothing '
                             f'(mask_ratio={self.mask_ratio}, extra_target_tokens={self.extra_target_tokens})')
        return n

    def sample_mask(self, batch_size: int, grid: Tuple[int, int]) -> torch.Tensor:
        """Bool n×h×w token mask (n = batch_size if per_sample else 1), 1 = from the partner."""
        n, num = (batch_size if self.per_sample else 1), self.num_masked(grid)
        if self.mask_type == 'random':
            return random_token_mask(n, grid, num, self.generator)
        rng = numpy_rng(self.generator)
        official = self.variant == 'official'
        masks = [block_mask(grid, num, self.min_block_tokens, self.aspect_range, rng, official=official)
                 for _ in range(n)]
        return torch.from_numpy(np.stack(masks))

    def _label(self, mixed: MixedBatch, attn=None, logits=None, label_maps=None):
        if self.source == 'label_maps':
            maps = crop_label_maps(label_maps, mixed.labels, mixed.grid, self.box_order)
            m = mixed.token_mask.flatten(1).to(maps.dtype)  # official weights: Â as normalised, no clamp
            return ((1. - m) * maps).sum(1), (m * maps[mixed.partner]).sum(1)
        if self.source == 'attention':
            maps = attn
        elif self.source == 'teacher':
            maps = mixed.activation
        else:
            maps = torch.ones_like(mixed.token_mask.flatten(1))
        return tokenmix_weights(mixed.token_mask, maps, mixed.partner)

    def _mix(self, images, labels, grid):
        B = images.shape[0]
        token_mask = self.sample_mask(B, grid).to(images.device, non_blocking=True)
        partner = self._partner(B, images.device)
        activation = self.teacher(images, labels, grid) if self.source == 'teacher' else None
        mixed = paste(images, partner, upsample_mask(token_mask, self.patch_size))
        lam_area = token_mask.flatten(1).float().mean(1)
        return self._batch(
            mixed, labels, partner, token_mask, lam_area, needs=self.needs, label_fn=self._label,
            activation=activation,
            target_fn=official_tokenmix_targets if self.smoothing_rule == 'official' else None)

# the method as the planner, tables and figures know it (pretrain.mix.methods)
register_mix_method(MixMethod(
    'tokenmix', 'TokenMix', recipe='tokenmix_recipe',
    needs="a teacher's activation maps (label maps) or the class-token attention", paper='TokenMix (ECCV 2022)',
    rank=3))

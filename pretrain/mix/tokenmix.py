""" TokenMix (Liu et al., ECCV 2022): token-level block masks and labels from activation maps.
"""
import math
import os
from typing import FrozenSet, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .base import MixedBatch, Mixer, numpy_rng, paste, random_subsets, upsample_mask

__all__ = ['TokenMix', 'block_mask', 'random_token_mask', 'normalize_map', 'tokenmix_weights', 'CAMTeacher']


def block_mask(
        grid: Tuple[int, int],
        num_masked: int,
        min_block: int = 14,
        aspect_range: Tuple[float, float] = (0.3, 1 / 0.3),
        rng: Optional[np.random.Generator] = None,
        attempts: int = 10,
        return_blocks: bool = False,
):
    """BEiT-style block masking on an h×w token grid: bool h×w with (up to) ``num_masked`` tokens set.

    Blocks are added one at a time: area ~ U[min_block, max(min_block, remaining)], aspect log-uniform in
    ``aspect_range``; each block has ≥ ``min_block`` tokens, a side ratio within ``aspect_range`` after rounding,
    and adds between 1 and ``remaining`` new tokens (it may overlap earlier blocks). When ``attempts`` random draws
    fail, a block is drawn uniformly among all placements that fit; the count is reached unless no block obeying
    the rules can add what remains (then it stops short, as BEiT's generator does). Placement is sequential by
    nature and runs on the CPU in numpy. ``return_blocks`` also returns the (top, left, height, width) of each block.
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
            if bh * bw < min_block or bh > h or bw > w or not aspect_range[0] <= bh / bw <= aspect_range[1]:
                continue
            top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
            new = bh * bw - int(mask[top:top + bh, left:left + bw].sum())
            if 0 < new <= remaining:
                placed = True
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


class CAMTeacher:
    """Class activation map of the ground-truth class from a timm CNN classifier (TokenMix's teacher source).

    The model is built with ``pretrained=False`` and loaded (strict) from a local ``checkpoint`` through timm's
    ``load_state_dict`` (.safetensors, or torch.load with ``weights_only=True``; EMA weights preferred), then
    frozen. The CAM is ReLU(Σ_c W[y, c]·F_c) of the last feature map, resized (bilinear) to the token grid and
    normalised.
    Not an nn.Module on purpose: a student holding it does not save the teacher in its checkpoints.

    Args:
        model_name: any timm classifier whose ``forward_features`` is B×C×h×w and whose classifier is a Linear on
            the pooled features (a head with a norm or pre-logits layer, e.g. ConvNeXt's, is refused).
        checkpoint: local weight file; None leaves the random init (tests, smoke runs only).
        num_classes: classes of the teacher head.
    """

    def __init__(self, model_name: str, checkpoint: Optional[str] = None, num_classes: int = 1000, **kwargs):
        import timm
        from timm.models import load_state_dict
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)
        self._check_head()
        if checkpoint is not None:
            if not os.path.isfile(checkpoint):
                raise FileNotFoundError(f'CAMTeacher checkpoint not found: {checkpoint}')
            # timm's reader: safetensors or torch.load(weights_only=True), unwraps state_dict(_ema)/model keys
            try:
                state_dict = load_state_dict(checkpoint, weights_only=True)
            except Exception as e:  # timm's message does not say which file
                raise RuntimeError(f'{checkpoint}: cannot be loaded safely as a CAMTeacher checkpoint '
                                   f'({type(e).__name__}: {e})') from e
            self.model.load_state_dict(state_dict)
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

    ``mixed.targets()``: ỹ = (Σ kept·Â_self)·y_self + (Σ pasted·Â_partner)·y_partner, clamped ≥ 0 after smoothing.
    Activation source:
      * 'attention': the model's own class attention on the **clean** images (``mixed.needs == {'clean_attn'}``;
        call ``targets(attn=A_clean)`` with B×(h·w); the partner's map is ``A_clean[partner]``),
      * 'teacher': a :class:`CAMTeacher` evaluated on the clean images when mixing,
      * 'area': no activation (uniform maps): the token shares, an ablation.

    Args:
        mask_ratio: λ, share of tokens taken from the partner (paper: 0.5).
        mask_type: 'block' (BEiT-style blocks) or 'random' (uniform tokens, ablation).
        variant: 'paper' (blocks ≥ 14 tokens, target λ·p) or 'official' (blocks ≥ 1 token, target λ·p + 14).
        min_block_tokens / extra_target_tokens: override the variant's values.
        aspect_range: block aspect ratio range (log-uniform).
        per_sample: one mask per sample instead of one per batch (official: per batch); block placement then
            loops over the batch.
    """
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
            source: str = 'attention',
            teacher: Optional[CAMTeacher] = None,
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
        if source not in ('attention', 'teacher', 'area'):
            raise ValueError(f"source must be 'attention', 'teacher' or 'area', got {source!r}")
        if source == 'teacher' and teacher is None:
            raise ValueError("source='teacher' needs a CAMTeacher (teacher=...)")
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

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({'clean_attn'}) if self.source == 'attention' else frozenset()

    def num_masked(self, grid: Tuple[int, int]) -> int:
        p = grid[0] * grid[1]
        n = int(round(self.mask_ratio * p)) + self.extra_target_tokens
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
        masks = [block_mask(grid, num, self.min_block_tokens, self.aspect_range, rng) for _ in range(n)]
        return torch.from_numpy(np.stack(masks))

    def _label(self, mixed: MixedBatch, attn=None, logits=None):
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
            activation=activation)

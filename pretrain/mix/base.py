""" Shared representation of a mixed batch and the primitives every mixing method is built from.

Every method draws, per batch, a partner index (whose pixels are pasted into each sample) and a region that is
constant on each token of the model's grid (``patch_size`` pixels). The result is a :class:`MixedBatch`; its
``targets()`` builds the soft labels in one place (:func:`mix_targets`) from (labels, partner, λ), where λ may
depend on the forward pass (class attention, logits) for the attention-guided methods.

Randomness: all draws come from an optional CPU ``torch.Generator`` (the global torch RNG when None), so
``torch.manual_seed`` or a seeded generator makes a run repeat. Draws are O(batch) or O(batch·cells) numbers made
on the CPU and moved once to the batch's device (``non_blocking``: no stream sync); masks are built and applied
there, vectorised over the batch. Nothing reads a device value back to the host, so a step has no extra sync.

Convention: λ (``lam``) is always the share of the **partner** (the pasted image), mask value 1 = taken from it.
"""
from dataclasses import dataclass
from typing import Callable, FrozenSet, Optional, Tuple

import numpy as np
import torch
from timm.data.mixup import one_hot

__all__ = [
    'MixedBatch', 'Mixer', 'NoMix', 'token_grid', 'numpy_rng', 'sample_beta', 'sample_partner', 'random_subsets',
    'rand_boxes', 'snap_boxes', 'box_share', 'box_mask', 'upsample_mask', 'paste', 'smooth_one_hot', 'mix_targets',
    'check_attention', 'attention_share',
]

Box = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # (y_lo, y_hi, x_lo, x_hi), half-open
LabelFn = Callable[['MixedBatch', Optional[torch.Tensor], Optional[torch.Tensor]], Tuple[torch.Tensor, torch.Tensor]]


def _pair(x) -> Tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, (int, np.integer)) else (int(x[0]), int(x[1]))


def token_grid(img_size, unit, what: str = 'patch_size') -> Tuple[int, int]:
    """(h, w) = image size / unit; ValueError when the image is not a whole number of units."""
    H, W = _pair(img_size)
    uh, uw = _pair(unit)
    if uh <= 0 or uw <= 0:
        raise ValueError(f'{what} must be positive, got {unit}')
    if H % uh or W % uw:
        raise ValueError(f'image size {H}x{W} is not divisible by {what}={unit}')
    return H // uh, W // uw


# --- random draws -------------------------------------------------------------------------------------------

def numpy_rng(generator: Optional[torch.Generator] = None) -> np.random.Generator:
    """A numpy Generator seeded from ``generator`` (or the global torch RNG).

    Used for what torch cannot draw from a Generator (Beta variates) and for sequential work on tiny arrays
    (TokenMix block placement), so that one torch seed still controls everything.
    """
    seed = torch.randint(0, 2 ** 62, (1,), generator=generator).item()
    return np.random.default_rng(seed)


def sample_beta(alpha: float, n: int = 1, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """n draws of Beta(alpha, alpha) as a float32 CPU tensor."""
    if alpha <= 0:
        raise ValueError(f'Beta concentration alpha must be > 0, got {alpha}')
    # torch.distributions cannot take a Generator; numpy seeded from the torch RNG keeps runs repeatable
    return torch.from_numpy(numpy_rng(generator).beta(alpha, alpha, size=n).astype(np.float32))


def sample_partner(
        batch_size: int,
        mode: str = 'flip',
        generator: Optional[torch.Generator] = None,
        device=None,
) -> torch.Tensor:
    """Partner index per sample: 'flip' (reversed batch, timm / official TransMix, TokenMix) or 'randperm'."""
    if mode == 'flip':
        idx = torch.arange(batch_size - 1, -1, -1)
    elif mode == 'randperm':
        idx = torch.randperm(batch_size, generator=generator)
    else:
        raise ValueError(f"partner must be 'flip' or 'randperm', got {mode!r}")
    return idx.to(device, non_blocking=True)


def random_subsets(batch_size: int, num_items: int, count, generator: Optional[torch.Generator] = None):
    """Bool batch_size×num_items: per row, ``count`` items (an int, or one per row) chosen uniformly at random.

    The rank of i.i.d. uniforms is a random permutation per row; ``rank < count`` selects that many items, no loop.
    """
    rank = torch.rand(batch_size, num_items, generator=generator).argsort(1).argsort(1)
    return rank < torch.as_tensor(count).view(-1, 1)


# --- boxes ----------------------------------------------------------------------------------------------------

def rand_boxes(lam: torch.Tensor, img_size, generator: Optional[torch.Generator] = None) -> Box:
    """CutMix boxes of area share ``lam`` (before clipping), random centre, clipped to the image.

    The box of timm's ``rand_bbox`` (side = int(size·sqrt(λ)), centre uniform over the image, edges centre -
    floor(side/2) and centre + ceil(side/2) before clipping: the pinned timm 1.0 does the same), written in torch
    so it draws from a Generator and makes one box per entry of ``lam`` without a loop. Older timm releases end the
    box at centre + floor(side/2): 1 px shorter than here for an odd side.
    """
    H, W = _pair(img_size)
    n = lam.numel()
    ratio = lam.reshape(n).double().clamp(0, 1).sqrt()
    cut_h, cut_w = (H * ratio).long(), (W * ratio).long()
    cy = torch.randint(0, H, (n,), generator=generator)
    cx = torch.randint(0, W, (n,), generator=generator)
    yl = (cy - cut_h // 2).clamp(0, H)
    yh = (cy + (cut_h + 1) // 2).clamp(0, H)
    xl = (cx - cut_w // 2).clamp(0, W)
    xh = (cx + (cut_w + 1) // 2).clamp(0, W)
    return yl, yh, xl, xh


def snap_boxes(boxes: Box, unit: int) -> Box:
    """Round box edges to the nearest multiple of ``unit`` (the token stride): pixel and token masks then agree."""
    return tuple(torch.div(b + unit // 2, unit, rounding_mode='floor') * unit for b in boxes)


def box_share(boxes: Box, img_size) -> torch.Tensor:
    """Real share of the image covered by each (already clipped) box: CutMix's corrected λ."""
    H, W = _pair(img_size)
    yl, yh, xl, xh = boxes
    return ((yh - yl) * (xh - xl)).float() / float(H * W)


def box_mask(boxes: Box, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bool n×len(ys)×len(xs): whether point (ys[i], xs[j]) lies inside box n.

    With ys/xs = arange(H)/arange(W) this is the pixel mask; with arange(h)·P it is the nearest-neighbour
    downsample ↓M of that mask to the token grid (nearest samples each token's top-left pixel).
    """
    yl, yh, xl, xh = (b.to(ys.device, non_blocking=True).view(-1, 1, 1) for b in boxes)
    iy = (ys.view(1, -1, 1) >= yl) & (ys.view(1, -1, 1) < yh)
    ix = (xs.view(1, 1, -1) >= xl) & (xs.view(1, 1, -1) < xh)
    return iy & ix


# --- applying a region ----------------------------------------------------------------------------------------

def upsample_mask(mask: torch.Tensor, scale) -> torch.Tensor:
    """Nearest upsampling of a (B×)h×w mask by an integer factor (token grid → pixels, cells → tokens)."""
    sh, sw = _pair(scale)
    return mask.repeat_interleave(sh, dim=-2).repeat_interleave(sw, dim=-1)


def paste(images: torch.Tensor, partner: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pixels where ``mask`` (B×H×W or 1×H×W, 1 = partner) is set come from ``images[partner]``."""
    return torch.where(mask.unsqueeze(1).bool(), images[partner], images)


# --- labels ---------------------------------------------------------------------------------------------------

def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.) -> torch.Tensor:
    """timm's label smoothing: off = ε/C, on = 1 - ε + ε/C."""
    off_value = smoothing / num_classes
    return one_hot(labels, num_classes, on_value=1. - smoothing + off_value, off_value=off_value)


def mix_targets(
        labels: torch.Tensor,
        partner: torch.Tensor,
        lam: torch.Tensor,
        num_classes: int,
        smoothing: float = 0.,
        lam_self: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The one place soft targets are made: ``lam_self·y + lam·y[partner]`` with smoothed one-hot y.

    ``lam`` (B) is the partner's weight, ``lam_self`` defaults to ``1 - lam`` (TokenMix passes its own, the two
    need not sum to 1). Negative values cannot arise from valid (non-negative) weights; the clamp at 0 only guards
    against rounding. (The official TokenMix code does not clamp: its smoothing rule, which can go slightly
    negative, is :func:`pretrain.mix.tokenmix.official_tokenmix_targets`.)
    """
    y = smooth_one_hot(labels, num_classes, smoothing)
    lam = lam.to(y.dtype).reshape(-1, 1)
    lam_self = 1. - lam if lam_self is None else lam_self.to(y.dtype).reshape(-1, 1)
    return (lam_self * y + lam * y[partner]).clamp_min(0.)


def check_attention(attn: torch.Tensor, batch_size: int, grid: Tuple[int, int], name: str = 'attn') -> torch.Tensor:
    """Validate a B×(h·w) (or B×h×w) attention / activation map and return it as float B×(h·w)."""
    if attn is None:
        raise ValueError(f'{name} is required for this batch (B×{grid[0] * grid[1]} class attention)')
    num_tokens = grid[0] * grid[1]
    if attn.ndim == 3:
        attn = attn.flatten(1)
    if attn.ndim != 2 or attn.shape[0] != batch_size or attn.shape[1] != num_tokens:
        raise ValueError(
            f'{name} has shape {tuple(attn.shape)}, expected ({batch_size}, {num_tokens}) for a {grid[0]}x{grid[1]} '
            f'token grid (is the mixer patch_size the model\'s token stride?)')
    return attn.float()


def attention_share(attn: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """λ_attn = Σ A·M / Σ A per sample: the attention mass inside the region (M = 1: partner).

    A softmax row never sums to 0; an all-zero map (no value check: that would sync the device) gives λ_attn = 0.
    """
    m = token_mask.flatten(1).to(attn.dtype)
    return (attn * m).sum(1) / attn.sum(1).clamp_min(torch.finfo(attn.dtype).tiny)


# --- the result object and the mixer base ----------------------------------------------------------------------

def area_label(mixed: 'MixedBatch', attn=None, logits=None) -> Tuple[torch.Tensor, torch.Tensor]:
    lam = mixed.lam_area
    return 1. - lam, lam


@dataclass
class MixedBatch:
    """What a mixer returns. ``targets()`` / ``label_weights()`` finish the label once the forward pass ran."""
    images: torch.Tensor  # B×C×H×W mixed
    labels: torch.Tensor  # int64 B, the original labels
    partner: torch.Tensor  # int64 B, index of the image pasted into each sample
    token_mask: torch.Tensor  # float B×h×w, 1 = token from the partner (Mixup: λ everywhere)
    lam_area: torch.Tensor  # float B, share of the partner image
    method: str
    num_classes: int
    label_smoothing: float = 0.
    needs: FrozenSet[str] = frozenset()  # subset of {'attn', 'logits', 'clean_attn', 'label_maps'}
    label_fn: LabelFn = area_label
    activation: Optional[torch.Tensor] = None  # B×(h·w) normalised activation maps (TokenMix teacher)
    # (labels, partner, w_self, w_partner, num_classes, smoothing) -> B×C targets; None: mix_targets (timm's rule)
    target_fn: Optional[Callable] = None

    @property
    def grid(self) -> Tuple[int, int]:
        return tuple(self.token_mask.shape[-2:])

    def label_weights(
            self,
            attn: Optional[torch.Tensor] = None,
            logits: Optional[torch.Tensor] = None,
            label_maps=None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(w_self, w_partner), each B: the weights of the own and the partner's label.

        ``attn``: B×(h·w) class attention of the mixed images ('attn') or of the clean images ('clean_attn');
        ``logits``: the model output on the mixed images ('logits'); ``label_maps``: the batch's crop-aligned
        teacher label maps ('label_maps', a :class:`pretrain.mix.tokenmix.CropLabelMaps` or the dict the
        label-map dataset delivers). A loss other than soft-target CE (BCE, or MixPro's λ·CE(y_self)... on hard
        labels) builds itself from these weights.
        """
        if self.needs & {'attn', 'clean_attn'}:
            attn = check_attention(attn, self.labels.shape[0], self.grid)
        if 'logits' in self.needs and logits is None:
            raise ValueError(f'{self.method} labels need the logits of the mixed batch (targets(logits=...))')
        if 'label_maps' in self.needs:
            if label_maps is None:
                raise ValueError(f'{self.method} labels need the batch\'s teacher label maps (targets(label_maps=...));'
                                 f' train with the dataset ImageNetFolderWithLabelMaps (pretrain.label_map_data)')
            return self.label_fn(self, attn, logits, label_maps)
        return self.label_fn(self, attn, logits)

    def targets(self, attn: Optional[torch.Tensor] = None, logits: Optional[torch.Tensor] = None,
                label_maps=None) -> torch.Tensor:
        """B×num_classes soft targets, label smoothing as timm (or the mixer's own rule, ``target_fn``)."""
        w_self, w_partner = self.label_weights(attn, logits, label_maps)
        if self.target_fn is not None:
            return self.target_fn(self.labels, self.partner, w_self, w_partner, self.num_classes,
                                  self.label_smoothing)
        return mix_targets(
            self.labels, self.partner, w_partner, self.num_classes, self.label_smoothing, lam_self=w_self)


class Mixer:
    """Base class: validates the batch, resolves the token grid, builds the :class:`MixedBatch`.

    Args:
        num_classes: number of classes of the targets.
        label_smoothing: ε of timm's label smoothing.
        patch_size: token stride in pixels (ViT: 16, PVT v1: 32); a plain attribute, a classifier may set it
            from its model.
        partner: 'flip' or 'randperm'.
        generator: optional CPU torch.Generator for all random draws.
    """
    method: str = 'none'

    def __init__(
            self,
            num_classes: int = 1000,
            label_smoothing: float = 0.1,
            patch_size: int = 16,
            partner: str = 'flip',
            generator: Optional[torch.Generator] = None,
    ):
        if partner not in ('flip', 'randperm'):
            raise ValueError(f"partner must be 'flip' or 'randperm', got {partner!r}")
        if not 0. <= label_smoothing < 1.:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.patch_size = patch_size
        self.partner = partner
        self.generator = generator

    @property
    def needs(self) -> FrozenSet[str]:
        """What the batches of this mixer may need from the forward pass."""
        return frozenset()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixedBatch:
        if images.ndim != 4:
            raise ValueError(f'images must be B×C×H×W, got shape {tuple(images.shape)}')
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
            raise ValueError(
                f'labels must be int class indices of shape ({images.shape[0]},), got {labels.dtype} '
                f'{tuple(labels.shape)}')
        grid = token_grid(images.shape[-2:], self.patch_size)
        return self._mix(images, labels.to(images.device), grid)

    def _mix(self, images: torch.Tensor, labels: torch.Tensor, grid: Tuple[int, int]) -> MixedBatch:
        raise NotImplementedError

    def _partner(self, batch_size: int, device) -> torch.Tensor:
        return sample_partner(batch_size, self.partner, self.generator, device)

    def _batch(self, images, labels, partner, token_mask, lam_area, **kwargs) -> MixedBatch:
        B = images.shape[0]
        return MixedBatch(
            images=images,
            labels=labels,
            partner=partner,
            token_mask=token_mask.float().expand(B, -1, -1),
            lam_area=lam_area.float().to(images.device, non_blocking=True).expand(B),
            method=self.method,
            num_classes=self.num_classes,
            label_smoothing=self.label_smoothing,
            **kwargs,
        )

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_') and k != 'generator')
        return f'{type(self).__name__}({args})'


class NoMix(Mixer):
    """Identity: the clean batch with (smoothed) one-hot targets."""
    method = 'none'

    def _mix(self, images, labels, grid):
        B = images.shape[0]
        partner = torch.arange(B, device=images.device)
        return self._batch(
            images, labels, partner, images.new_zeros((1, *grid)), images.new_zeros(1))

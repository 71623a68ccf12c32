""" MixPro (Zhao et al., ICLR 2023): MaskMix input mixing and Progressive Attention Labeling (PAL).
"""
from typing import FrozenSet, Optional, Tuple

import torch
import torch.nn.functional as F

from .base import MixedBatch, Mixer, attention_share, paste, random_subsets, sample_beta, token_grid, upsample_mask

__all__ = ['MaskMix', 'random_cells', 'progressive_attention_lam', 'ProgressiveAttentionLabel']


def random_cells(num_cells: torch.Tensor, grid: Tuple[int, int], generator: Optional[torch.Generator] = None):
    """Bool B×gh×gw: for sample b, ``num_cells[b]`` cells chosen uniformly at random (independently per sample)."""
    B = num_cells.numel()
    return random_subsets(B, grid[0] * grid[1], num_cells, generator).view(B, *grid)


def progressive_attention_lam(
        lam_area: torch.Tensor,
        lam_attn: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        partner: torch.Tensor,
        num_classes: int,
        detach_alpha: bool = False,
) -> torch.Tensor:
    """PAL: λ = α·λ_attn + (1-α)·λ_area with α = cos(softmax(logits), ỹ_area), ỹ_area = (1-λ_area)·y + λ_area·y_b.

    ỹ_area is built from one-hot labels (the paper's definition, no smoothing). α keeps its gradient unless
    ``detach_alpha`` (the official code does not detach it).
    """
    y = F.one_hot(labels, num_classes).to(torch.float32)
    y_area = torch.lerp(y, y[partner], lam_area.float().view(-1, 1))
    alpha = F.cosine_similarity(logits.float().softmax(-1), y_area, dim=1)
    if detach_alpha:
        alpha = alpha.detach()
    return alpha * lam_attn + (1. - alpha) * lam_area


class ProgressiveAttentionLabel:
    """Label function of MaskMix batches with PAL (needs the mixed batch's class attention and logits)."""

    def __init__(self, detach_alpha: bool = False):
        self.detach_alpha = detach_alpha

    def __call__(self, mixed: MixedBatch, attn: torch.Tensor, logits: torch.Tensor):
        lam = progressive_attention_lam(
            mixed.lam_area, attention_share(attn, mixed.token_mask), logits, mixed.labels, mixed.partner,
            mixed.num_classes, self.detach_alpha)
        return 1. - lam, lam


class MaskMix(Mixer):
    """MixPro's input mixing: a grid of ``mask_patch``-pixel cells, each taken from the image or its partner.

    r ~ Beta(α, α) (paper: α = 1) once per batch ('batch') or per sample ('elem'); n = ceil(cells·r) cells chosen
    at random per sample; λ_area = n / cells. A cell must be a whole number of tokens so that every token comes
    from one image.

    Args:
        mask_patch: cell side in pixels; must be a multiple of ``patch_size`` and divide the image. The official
            56 px (4×4 cells on 224) is whole tokens only for patch 14 or 28; None (default) uses the
            token-aligned cell nearest to a 4×4 grid: 56 for patch 14, 32 (7×7 cells of 2×2 tokens) for ViT-16
            and PVT-32 at 224.
        pal: label with Progressive Attention Labeling (needs attention and logits), else the area label.
        detach_alpha: detach PAL's α.
        partner: default 'randperm' as in the official MixPro code.
    """
    method = 'maskmix'

    def __init__(
            self,
            num_classes: int = 1000,
            mask_patch: Optional[int] = None,
            alpha: float = 1.0,
            mode: str = 'batch',
            pal: bool = False,
            detach_alpha: bool = False,
            partner: str = 'randperm',
            **kwargs,
    ):
        super().__init__(num_classes=num_classes, partner=partner, **kwargs)
        if mode not in ('batch', 'elem'):
            raise ValueError(f"mode must be 'batch' or 'elem', got {mode!r}")
        self.mask_patch = mask_patch
        self.alpha = alpha
        self.mode = mode
        self.pal = pal
        self.detach_alpha = detach_alpha

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({'attn', 'logits'}) if self.pal else frozenset()

    def cell_size(self, img_size) -> int:
        """Cell side in pixels for this image size (resolves ``mask_patch=None``)."""
        if self.mask_patch is not None:
            return self.mask_patch
        H, W = token_grid(img_size, self.patch_size)
        # token-aligned cells dividing both sides, pick the one nearest to a quarter of the image side
        sizes = [k * self.patch_size for k in range(1, min(H, W) + 1) if H % k == 0 and W % k == 0]
        target = min(img_size) / 4
        return min(sizes, key=lambda s: (abs(s - target), s))

    def cell_grid(self, img_size) -> Tuple[int, int]:
        size = self.cell_size(img_size)
        if size % self.patch_size:
            raise ValueError(
                f'MaskMix mask_patch={size} is not a whole number of tokens of patch_size={self.patch_size}')
        grid = token_grid(img_size, size, 'mask_patch')
        if grid[0] * grid[1] < 2:
            raise ValueError(
                f'MaskMix mask_patch={size} gives a single cell on {tuple(img_size)}: the region would '
                f'cover everything or nothing')
        return grid

    def _mix(self, images, labels, grid):
        B, _, H, W = images.shape
        cells = self.cell_grid((H, W))
        size = H // cells[0]
        num = cells[0] * cells[1]
        r = sample_beta(self.alpha, 1 if self.mode == 'batch' else B, self.generator)
        n = (r.double() * num).ceil().long().clamp(0, num).expand(B)
        cell_mask = random_cells(n, cells, self.generator).to(images.device, non_blocking=True)
        partner = self._partner(B, images.device)
        mixed = paste(images, partner, upsample_mask(cell_mask, size))
        token_mask = upsample_mask(cell_mask, size // self.patch_size)
        kwargs = dict(needs=self.needs, label_fn=ProgressiveAttentionLabel(self.detach_alpha)) if self.pal else {}
        return self._batch(mixed, labels, partner, token_mask, n.float() / num, **kwargs)

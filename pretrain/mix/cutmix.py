""" CutMix (Yun et al., 2019) as in DeiT's recipe: one box of the partner pasted in, λ = the real pasted share.
"""
from typing import Tuple

import torch

from .base import Box, Mixer, box_mask, box_share, paste, rand_boxes, sample_beta, snap_boxes

__all__ = ['CutMix']


class CutMix(Mixer):
    """Paste a random box of the partner; λ_area is corrected to the box area after clipping (timm ``correct_lam``).

    The token mask is ↓M, the nearest-neighbour downsample of the pixel mask to the token grid (what TransMix
    weighs the attention with). With ``snap_to_tokens=True`` the box edges lie on token borders, so the pixel
    share and the token share are equal; off by default, as in timm.

    Args:
        alpha: Beta(α, α) concentration for the box area (DeiT: 1.0).
        mode: 'batch' (one box for the batch, timm's default) or 'elem' (one box and λ per sample).
        snap_to_tokens: snap the box to the token grid.
        Other args: see :class:`~pretrain.mix.base.Mixer`.
    """
    method = 'cutmix'

    def __init__(
            self,
            num_classes: int = 1000,
            alpha: float = 1.0,
            mode: str = 'batch',
            snap_to_tokens: bool = False,
            **kwargs,
    ):
        super().__init__(num_classes=num_classes, **kwargs)
        if alpha <= 0:
            raise ValueError(f'CutMix alpha must be > 0, got {alpha}')
        if mode not in ('batch', 'elem'):
            raise ValueError(f"mode must be 'batch' or 'elem', got {mode!r}")
        self.alpha = alpha
        self.mode = mode
        self.snap_to_tokens = snap_to_tokens

    def sample_boxes(self, batch_size: int, img_size: Tuple[int, int]) -> Box:
        lam = sample_beta(self.alpha, 1 if self.mode == 'batch' else batch_size, self.generator)
        boxes = rand_boxes(lam, img_size, self.generator)
        if self.snap_to_tokens:
            boxes = snap_boxes(boxes, self.patch_size)
        return boxes

    def _mix(self, images, labels, grid):
        B, _, H, W = images.shape
        device = images.device
        boxes = self.sample_boxes(B, (H, W))
        partner = self._partner(B, device)
        pixel_mask = box_mask(boxes, torch.arange(H, device=device), torch.arange(W, device=device))
        mixed = paste(images, partner, pixel_mask)
        token_mask = pixel_mask[:, ::self.patch_size, ::self.patch_size]  # ↓M: each token's top-left pixel
        return self._make(mixed, labels, partner, token_mask, box_share(boxes, (H, W)))

    def _make(self, mixed, labels, partner, token_mask, lam_area):
        return self._batch(mixed, labels, partner, token_mask, lam_area)

""" Mixup (Zhang et al., 2018) as in DeiT's recipe (timm ``Mixup`` with cutmix off): x̃ = (1-λ)·x + λ·x[partner].
"""
import torch

from .base import Mixer, sample_beta

__all__ = ['Mixup']


class Mixup(Mixer):
    """Global blend of each image with its partner.

    Args:
        alpha: Beta(α, α) concentration for λ (DeiT: 0.8).
        mode: 'batch' (one λ for the batch, timm's default) or 'elem' (one λ per sample).
        Other args: see :class:`~pretrain.mix.base.Mixer`.
    """
    method = 'mixup'

    def __init__(self, num_classes: int = 1000, alpha: float = 0.8, mode: str = 'batch', **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        if alpha <= 0:
            raise ValueError(f'Mixup alpha must be > 0, got {alpha}')
        if mode not in ('batch', 'elem'):
            raise ValueError(f"mode must be 'batch' or 'elem', got {mode!r}")
        self.alpha = alpha
        self.mode = mode

    def _mix(self, images, labels, grid):
        B = images.shape[0]
        lam = sample_beta(self.alpha, 1 if self.mode == 'batch' else B, self.generator)
        lam = lam.to(images.device, non_blocking=True)
        partner = self._partner(B, images.device)
        mixed = torch.lerp(images, images[partner], lam.to(images.dtype).view(-1, 1, 1, 1))
        token_mask = lam.view(-1, 1, 1).expand(-1, *grid)
        return self._batch(mixed, labels, partner, token_mask, lam)

""" TransMix (Chen et al., CVPR 2022): CutMix input, label weight from the class attention inside the box.
"""
from typing import FrozenSet

import torch

from .base import MixedBatch, attention_share
from .cutmix import CutMix
from .methods import MixMethod, register_mix_method

__all__ = ['TransMix', 'transmix_lam']


def transmix_lam(lam_area: torch.Tensor, lam_attn: torch.Tensor, label: str = 'mean') -> torch.Tensor:
    """Partner weight: 'mean' = (λ_area + λ_attn)/2 (paper §4.1, official code) or 'attn' = λ_attn (Eq. 7)."""
    if label == 'mean':
        return 0.5 * (lam_area + lam_attn)
    if label == 'attn':
        return lam_attn
    raise ValueError(f"TransMix label must be 'mean' or 'attn', got {label!r}")


class TransMix(CutMix):
    """CutMix whose label weight is λ_attn = Σ A·↓M / Σ A (A: last block's class attention on the mixed images).

    ``mixed.targets(attn=A)`` with A B×(h·w) from :class:`pretrain.models.ClassAttentionProbe`.

    Args:
        label: 'mean' (default, (λ_area + λ_attn)/2) or 'attn' (attention only, paper Eq. 7).
        Other args: see :class:`~pretrain.mix.cutmix.CutMix`.
    """

    #: why a model without a class token cannot be trained with it, and what to use instead
    CLASS_ATTENTION_NEED = ("TransMix weighs the CutMix box by the last block's class-token attention (use the "
                            'baseline Mixup/CutMix)')
    method = 'transmix'

    def __init__(self, num_classes: int = 1000, alpha: float = 1.0, label: str = 'mean', **kwargs):
        super().__init__(num_classes=num_classes, alpha=alpha, **kwargs)
        if label not in ('mean', 'attn'):
            raise ValueError(f"TransMix label must be 'mean' or 'attn', got {label!r}")
        self.label = label

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({'attn'})

    def _label(self, mixed: MixedBatch, attn, logits=None):
        lam = transmix_lam(mixed.lam_area, attention_share(attn, mixed.token_mask), self.label)
        return 1. - lam, lam

    def _make(self, mixed, labels, partner, token_mask, lam_area):
        return self._batch(mixed, labels, partner, token_mask, lam_area, needs=self.needs, label_fn=self._label)

# the method as the planner, tables and figures know it (pretrain.mix.methods)
register_mix_method(MixMethod(
    'transmix', 'TransMix', recipe='transmix_recipe', needs="the last block's class-token attention",
    paper='TransMix (CVPR 2022)', rank=1))

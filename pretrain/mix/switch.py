""" Per-batch random choice among mixers, and the papers' recipes built from it.
"""
from typing import FrozenSet, Optional, Sequence

import torch

from .base import MixedBatch, Mixer, NoMix
from .cutmix import CutMix
from .methods import MixMethod, register_mix_method
from .mixpro import MaskMix
from .mixup import Mixup
from .tokenmix import TokenMix
from .transmix import TransMix

__all__ = ['MixSwitch', 'deit_mix', 'transmix_recipe', 'mixpro_recipe', 'tokenmix_recipe']


class MixSwitch(Mixer):
    """Pick one mixer per batch with the given probabilities; the remainder (1 - Σ probs) means no mixing.

    ``patch_size`` and ``generator`` set on the switch are passed to every member, so a classifier can set the
    token stride once. ``needs`` is the union of what the members' batches may need.

    ``choice_generator``: where the member is drawn from (default: ``generator``, i.e. the global RNG when None).
    In data-parallel training it should be a stream that is the same on every rank — else in nearly every step
    some rank draws the costliest member (TokenMix's extra forward, MixPro's PAL) and all ranks wait for it —
    while the members' own draws (λ, boxes, masks) stay per rank, as DeiT's seed + rank. :meth:`reseed_choice`
    seeds such a stream; a nested switch shares its parent's. mixseg's ``ResumableRandomnessHook`` calls it
    before every step with a seed made from (run seed, iteration), identical on all ranks and on a resume.
    """
    method = 'switch'

    def __init__(
            self,
            mixers: Sequence[Mixer],
            probs: Sequence[float],
            generator: Optional[torch.Generator] = None,
            choice_generator: Optional[torch.Generator] = None,
    ):
        if len(mixers) == 0 or len(mixers) != len(probs):
            raise ValueError(f'MixSwitch needs one probability per mixer, got {len(mixers)} mixers, probs={probs}')
        probs = [float(p) for p in probs]
        if any(p < 0 for p in probs) or sum(probs) > 1 + 1e-6:
            raise ValueError(f'MixSwitch probabilities must be ≥ 0 and sum to ≤ 1, got {probs}')
        for attr in ('num_classes', 'patch_size'):
            values = {getattr(m, attr) for m in mixers}
            if len(values) > 1:
                raise ValueError(f'MixSwitch members disagree on {attr}: {sorted(values)}')
        mixers = list(mixers)
        rest = 1. - sum(probs)
        if rest > 1e-6:
            m = mixers[0]
            mixers.append(NoMix(m.num_classes, label_smoothing=m.label_smoothing, patch_size=m.patch_size))
            probs.append(rest)
        self.mixers = mixers
        self.probs = probs
        self._cum = torch.tensor(probs, dtype=torch.float64).cumsum(0)
        self.num_classes = mixers[0].num_classes
        self.label_smoothing = mixers[0].label_smoothing
        self.patch_size = mixers[0].patch_size
        if generator is not None:
            self.generator = generator  # shared by all members
        else:
            self._generator = None  # members keep their own
        self.choice_generator = choice_generator

    @property
    def patch_size(self) -> int:
        return self._patch_size

    @patch_size.setter
    def patch_size(self, value: int):
        self._patch_size = value
        for m in self.mixers:
            m.patch_size = value

    @property
    def generator(self) -> Optional[torch.Generator]:
        return self._generator

    @generator.setter
    def generator(self, value: Optional[torch.Generator]):
        self._generator = value
        for m in self.mixers:
            m.generator = value

    @property
    def choice_generator(self) -> Optional[torch.Generator]:
        return self._choice_generator

    @choice_generator.setter
    def choice_generator(self, value: Optional[torch.Generator]):
        self._choice_generator = value
        for m in self.mixers:
            if isinstance(m, MixSwitch):
                m.choice_generator = value

    def reseed_choice(self, seed: int) -> None:
        """Draw the members from a CPU generator seeded with ``seed`` from now on (this switch and nested ones)."""
        if self._choice_generator is None:
            self.choice_generator = torch.Generator()
        self._choice_generator.manual_seed(int(seed))

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset().union(*(m.needs for m in self.mixers))

    def choose(self) -> Mixer:
        gen = self.generator if self._choice_generator is None else self._choice_generator
        u = torch.rand((), dtype=torch.float64, generator=gen)
        idx = int(torch.searchsorted(self._cum, u, right=True).clamp(max=len(self.mixers) - 1))
        return self.mixers[idx]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixedBatch:
        return self.choose()(images, labels)

    def __repr__(self):
        inner = ', '.join(f'{p:g}: {m!r}' for m, p in zip(self.mixers, self.probs))
        return f'MixSwitch({inner})'


def deit_mix(
        num_classes: int = 1000,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = 'batch',
        label_smoothing: float = 0.1,
        patch_size: int = 16,
        generator: Optional[torch.Generator] = None,
) -> MixSwitch:
    """DeiT baseline (timm ``Mixup``): with ``prob`` mix, CutMix with ``switch_prob`` else Mixup."""
    common = dict(num_classes=num_classes, mode=mode, label_smoothing=label_smoothing, patch_size=patch_size)
    return MixSwitch(
        [Mixup(alpha=mixup_alpha, **common), CutMix(alpha=cutmix_alpha, **common)],
        [prob * (1. - switch_prob), prob * switch_prob],
        generator=generator,
    )


def transmix_recipe(
        num_classes: int = 1000,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        label: str = 'mean',
        mode: str = 'batch',
        label_smoothing: float = 0.1,
        patch_size: int = 16,
        generator: Optional[torch.Generator] = None,
) -> MixSwitch:
    """TransMix: the DeiT switch with CutMix batches relabelled by attention (Mixup batches keep λ)."""
    common = dict(num_classes=num_classes, mode=mode, label_smoothing=label_smoothing, patch_size=patch_size)
    return MixSwitch(
        [Mixup(alpha=mixup_alpha, **common), TransMix(alpha=cutmix_alpha, label=label, **common)],
        [1. - switch_prob, switch_prob],
        generator=generator,
    )


def mixpro_recipe(
        num_classes: int = 1000,
        maskmix_prob: float = 0.5,
        mask_patch: Optional[int] = None,
        pal: bool = True,
        detach_alpha: bool = False,
        pal_label: str = 'paper',
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        patch_size: int = 16,
        generator: Optional[torch.Generator] = None,
) -> MixSwitch:
    """MixPro: MaskMix (+ PAL) with ``maskmix_prob``, else the DeiT Mixup/CutMix switch."""
    maskmix = MaskMix(
        num_classes, mask_patch=mask_patch, pal=pal, detach_alpha=detach_alpha, pal_label=pal_label,
        label_smoothing=label_smoothing, patch_size=patch_size)
    deit = deit_mix(
        num_classes, mixup_alpha, cutmix_alpha, switch_prob=switch_prob, label_smoothing=label_smoothing,
        patch_size=patch_size)
    return MixSwitch([maskmix, deit], [maskmix_prob, 1. - maskmix_prob], generator=generator)


def tokenmix_recipe(
        num_classes: int = 1000,
        switch_prob: float = 0.5,
        mixup_alpha: float = 0.8,
        mask_ratio: float = 0.5,
        source: str = 'label_maps',
        teacher=None,
        variant: str = 'paper',
        label_smoothing: float = 0.1,
        patch_size: int = 16,
        generator: Optional[torch.Generator] = None,
        **tokenmix_kwargs,
) -> MixSwitch:
    """TokenMix: TokenMix with ``switch_prob`` else Mixup (official: timm's switch, switch prob 0.5, prob 1.0).

    ``tokenmix_kwargs`` go to :class:`TokenMix` (``mask_type``, ``smoothing_rule``, ``box_order``, ``per_sample``,
    ``min_block_tokens``, ``extra_target_tokens``).
    """
    common = dict(num_classes=num_classes, label_smoothing=label_smoothing, patch_size=patch_size)
    return MixSwitch(
        [Mixup(alpha=mixup_alpha, **common),
         TokenMix(mask_ratio=mask_ratio, source=source, teacher=teacher, variant=variant, **tokenmix_kwargs,
                  **common)],
        [1. - switch_prob, switch_prob],
        generator=generator,
    )

# the method as the planner, tables and figures know it (pretrain.mix.methods)
register_mix_method(MixMethod(
    'baseline', 'baseline', recipe='deit_mix', paper='DeiT (the recipe every paper compares with)', rank=0))

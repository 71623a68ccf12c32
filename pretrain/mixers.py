"""The mixers of :mod:`pretrain.mix` in the stage-1 ``MODELS`` registry, so configs can write
``mixer=dict(type='TransMix', alpha=1.0)`` or a paper's recipe ``mixer=dict(type='transmix_recipe')``.

:mod:`pretrain.mix` stays free of mmengine; this module only registers it. Nested configs are built here:
``MixSwitch(mixers=[dict(type=...), ...])`` and a TokenMix ``teacher=dict(type='CAMTeacher', ...)``.
``num_classes`` given to a switch or recipe reaches every member. The recipe builders tag the result with
``recipe``, the name of the method (:mod:`pretrain.mix.methods`) written into the backbone file.
"""
from __future__ import annotations

from typing import Optional, Sequence

from pretrain import mix

from .registry import MODELS

for _cls in (mix.NoMix, mix.Mixup, mix.CutMix, mix.TransMix, mix.MaskMix, mix.CAMTeacher):
    MODELS.register_module(module=_cls)


def _build(cfg, **defaults):
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        for k, v in defaults.items():
            if v is not None:
                cfg.setdefault(k, v)
        return MODELS.build(cfg)
    return cfg


@MODELS.register_module(name='TokenMix')
def build_tokenmix(teacher=None, **kwargs) -> mix.TokenMix:
    """:class:`pretrain.mix.TokenMix`; ``teacher`` may be a config (``dict(type='CAMTeacher', ...)``)."""
    return mix.TokenMix(teacher=_build(teacher), **kwargs)


@MODELS.register_module(name='MixSwitch')
def build_mix_switch(mixers: Sequence, probs: Sequence[float], num_classes: Optional[int] = None,
                     **kwargs) -> mix.MixSwitch:
    """:class:`pretrain.mix.MixSwitch` from member configs (each gets ``num_classes`` unless it sets it)."""
    return mix.MixSwitch([_build(m, num_classes=num_classes) for m in mixers], probs, **kwargs)


def _tag(mixer, recipe: str):
    """Tag a recipe's mixer with the method it builds (the backbone file's ``method``), as the method registry
    (:mod:`pretrain.mix.methods`) pairs them."""
    mixer.recipe = mix.method_of_recipe(recipe)
    return mixer


@MODELS.register_module(name='deit_mix')
def deit_mix(**kwargs) -> mix.MixSwitch:
    """DeiT baseline: Mixup α 0.8 / CutMix α 1.0, switch prob 0.5, prob 1.0, ε 0.1."""
    return _tag(mix.deit_mix(**kwargs), 'deit_mix')


@MODELS.register_module(name='transmix_recipe')
def transmix_recipe(**kwargs) -> mix.MixSwitch:
    """TransMix: the DeiT switch whose CutMix batches are labelled by class attention."""
    return _tag(mix.transmix_recipe(**kwargs), 'transmix_recipe')


@MODELS.register_module(name='mixpro_recipe')
def mixpro_recipe(**kwargs) -> mix.MixSwitch:
    """MixPro: MaskMix + PAL with p 0.5, else the DeiT switch."""
    return _tag(mix.mixpro_recipe(**kwargs), 'mixpro_recipe')


@MODELS.register_module(name='tokenmix_recipe')
def tokenmix_recipe(teacher=None, **kwargs) -> mix.MixSwitch:
    """TokenMix with p 0.5, else Mixup; ``teacher`` may be a ``CAMTeacher`` config."""
    return _tag(mix.tokenmix_recipe(teacher=_build(teacher), **kwargs), 'tokenmix_recipe')

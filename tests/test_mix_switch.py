"""MixSwitch and the papers' recipes: frequencies, propagation, errors."""
import collections
import math

import pytest
import torch

from pretrain.mix import (
    CutMix, MaskMix, Mixup, MixSwitch, NoMix, TokenMix, TransMix, deit_mix, mixpro_recipe, tokenmix_recipe,
    transmix_recipe)

C = 5


def resolve(mixer):
    """The mixer a (nested) switch picks for one batch, without mixing."""
    while isinstance(mixer, MixSwitch):
        mixer = mixer.choose()
    return mixer


def frequencies(mixer, n, seed=0, call=False, size=32):
    mixer.generator = torch.Generator().manual_seed(seed)
    if call:  # the full path: method of the returned batch
        x, y = torch.randn(2, 3, size, size), torch.tensor([0, 1])
        counts = collections.Counter(mixer(x, y).method for _ in range(n))
    else:
        counts = collections.Counter(resolve(mixer).method for _ in range(n))
    return {k: v / n for k, v in counts.items()}


def assert_close_freq(freq, expect, n):
    assert set(freq) == {k for k, p in expect.items() if p > 0}, freq
    for k, p in expect.items():
        # 5 sigma of a binomial share; the seed is fixed, so this is a check of the probabilities, not a flake
        assert abs(freq.get(k, 0.) - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-9, (k, freq, expect)


def test_switch_frequencies_and_remainder():
    sw = MixSwitch([Mixup(C), CutMix(C)], [0.2, 0.5])
    assert isinstance(sw.mixers[-1], NoMix) and sw.probs == [0.2, 0.5, pytest.approx(0.3)]
    n = 3000
    assert_close_freq(frequencies(sw, n), {'mixup': 0.2, 'cutmix': 0.5, 'none': 0.3}, n)
    n = 150  # the same through full calls
    assert_close_freq(frequencies(sw, n, call=True), {'mixup': 0.2, 'cutmix': 0.5, 'none': 0.3}, n)


@pytest.mark.parametrize('recipe, expect', [
    (deit_mix, {'mixup': 0.5, 'cutmix': 0.5}),
    (transmix_recipe, {'mixup': 0.5, 'transmix': 0.5}),
    (mixpro_recipe, {'maskmix': 0.5, 'mixup': 0.25, 'cutmix': 0.25}),
])
def test_recipe_frequencies(recipe, expect):
    n = 3000
    assert_close_freq(frequencies(recipe(C), n), expect, n)
    n = 120
    assert_close_freq(frequencies(recipe(C), n, seed=1, call=True), expect, n)


def test_tokenmix_recipe_frequencies():
    n = 3000
    assert_close_freq(frequencies(tokenmix_recipe(C), n), {'mixup': .5, 'tokenmix': .5}, n)


def test_deit_mix_prob():
    n = 3000
    assert_close_freq(frequencies(deit_mix(C, prob=0.6), n), {'mixup': 0.3, 'cutmix': 0.3, 'none': 0.4}, n)


def test_recipe_defaults():
    sw = deit_mix(C)
    mixup, cutmix = sw.mixers
    assert mixup.alpha == 0.8 and cutmix.alpha == 1.0 and sw.probs == [0.5, 0.5]
    assert mixup.label_smoothing == 0.1 and cutmix.mode == 'batch'
    sw = mixpro_recipe(C)
    maskmix, deit = sw.mixers
    assert isinstance(maskmix, MaskMix) and maskmix.pal and not maskmix.detach_alpha and maskmix.partner == 'randperm'
    assert sw.needs == {'attn', 'logits'}
    sw = transmix_recipe(C)
    assert isinstance(sw.mixers[1], TransMix) and sw.mixers[1].label == 'mean' and sw.needs == {'attn'}
    sw = tokenmix_recipe(C)
    tm = sw.mixers[1]
    assert isinstance(tm, TokenMix) and tm.mask_ratio == 0.5 and tm.min_block_tokens == 14
    assert tm.aspect_range == (0.3, 1 / 0.3) and tm.source == 'label_maps' and sw.needs == {'label_maps'}


def test_switch_propagates_patch_size_and_generator():
    sw = mixpro_recipe(C)
    sw.patch_size = 32
    assert sw.mixers[0].patch_size == 32 and all(m.patch_size == 32 for m in sw.mixers[1].mixers)
    g = torch.Generator()
    sw.generator = g
    assert sw.mixers[1].mixers[1].generator is g
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([0, 1])
    assert sw(x, y).token_mask.shape == (2, 2, 2)


def test_switch_seeded_repeat():
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    runs = []
    for _ in range(2):
        sw = mixpro_recipe(C, generator=torch.Generator().manual_seed(5))
        runs.append([sw(x, y) for _ in range(6)])
    for a, b in zip(*runs):
        assert a.method == b.method and torch.equal(a.images, b.images)


def test_switch_errors():
    with pytest.raises(ValueError, match=r'\[0.7, 0.6\]'):
        MixSwitch([Mixup(C), CutMix(C)], [0.7, 0.6])
    with pytest.raises(ValueError, match='one probability per mixer'):
        MixSwitch([Mixup(C)], [0.5, 0.5])
    with pytest.raises(ValueError, match=r'num_classes: \[5, 10\]'):
        MixSwitch([Mixup(C), CutMix(10)], [0.5, 0.5])
    with pytest.raises(ValueError, match=r'patch_size: \[16, 32\]'):
        MixSwitch([Mixup(C), CutMix(C, patch_size=32)], [0.5, 0.5])

"""Primitives of pretrain.mix.base: boxes, masks, label smoothing, target building, attention share."""
import pytest
import torch
import torch.nn.functional as F

from pretrain.mix.base import (
    NoMix, attention_share, box_mask, box_share, check_attention, mix_targets, rand_boxes,
    sample_beta, sample_partner, smooth_one_hot, snap_boxes, token_grid, upsample_mask)


def test_token_grid_and_error():
    assert token_grid((224, 160), 16) == (14, 10)
    with pytest.raises(ValueError, match='230x224.*16'):
        token_grid((230, 224), 16)


def test_smooth_one_hot_matches_timm_convention():
    y = smooth_one_hot(torch.tensor([2, 0]), 4, smoothing=0.1)
    off, on = 0.1 / 4, 1 - 0.1 + 0.1 / 4
    assert torch.allclose(y, torch.tensor([[off, off, on, off], [on, off, off, off]]))
    assert torch.allclose(y.sum(1), torch.ones(2))


def test_mix_targets_hand_computed():
    labels, partner = torch.tensor([0, 1]), torch.tensor([1, 0])
    t = mix_targets(labels, partner, torch.tensor([0.25, 0.5]), 3, smoothing=0.)
    assert torch.allclose(t, torch.tensor([[0.75, 0.25, 0.], [0.5, 0.5, 0.]]))
    # separate weights (TokenMix): not renormalised
    t = mix_targets(labels, partner, torch.tensor([0.1, 0.2]), 3, lam_self=torch.tensor([0.6, 0.3]))
    assert torch.allclose(t, torch.tensor([[0.6, 0.1, 0.], [0.2, 0.3, 0.]]))


def test_sample_beta_and_partner():
    g = torch.Generator().manual_seed(0)
    lam = sample_beta(1.0, 1000, g)
    assert lam.shape == (1000,) and lam.min() >= 0 and lam.max() <= 1
    assert abs(lam.mean().item() - 0.5) < 0.05
    with pytest.raises(ValueError, match='-1'):
        sample_beta(-1., 1)
    assert sample_partner(4, 'flip').tolist() == [3, 2, 1, 0]
    p = sample_partner(16, 'randperm', torch.Generator().manual_seed(0))
    assert sorted(p.tolist()) == list(range(16))
    with pytest.raises(ValueError, match='roll'):
        sample_partner(4, 'roll')


def test_boxes_clip_and_share():
    g = torch.Generator().manual_seed(1)
    lam = torch.rand(500, generator=g)
    boxes = rand_boxes(lam, (64, 48), g)
    yl, yh, xl, xh = boxes
    assert (yl >= 0).all() and (yh <= 64).all() and (xl >= 0).all() and (xh <= 48).all()
    assert (yl <= yh).all() and (xl <= xh).all()
    share = box_share(boxes, (64, 48))
    mask = box_mask(boxes, torch.arange(64), torch.arange(48))
    assert torch.allclose(mask.float().mean((1, 2)), share)
    # clipping only shrinks the box: the corrected share never exceeds the requested one (up to int rounding)
    assert (share <= lam + 1e-6).all()
    assert (share < lam - 0.05).any()  # some boxes were clipped


def test_box_mask_on_token_grid_is_nearest_downsample():
    g = torch.Generator().manual_seed(2)
    boxes = rand_boxes(torch.rand(50, generator=g), (64, 64), g)
    pixel = box_mask(boxes, torch.arange(64), torch.arange(64)).float()
    tokens = box_mask(boxes, torch.arange(4) * 16, torch.arange(4) * 16).float()
    assert torch.equal(tokens, F.interpolate(pixel[:, None], size=(4, 4), mode='nearest')[:, 0])


def test_snap_boxes_to_tokens():
    boxes = (torch.tensor([7, 9]), torch.tensor([25, 40]), torch.tensor([0, 3]), torch.tensor([64, 30]))
    yl, yh, xl, xh = snap_boxes(boxes, 16)
    assert yl.tolist() == [0, 16] and yh.tolist() == [32, 48] and xl.tolist() == [0, 0] and xh.tolist() == [64, 32]


def test_upsample_mask():
    m = torch.tensor([[[1., 0.], [0., 1.]]])
    up = upsample_mask(m, 2)
    assert up.shape == (1, 4, 4) and up[0, :2, :2].eq(1).all() and up[0, :2, 2:].eq(0).all()


def test_attention_share_and_checks():
    attn = torch.tensor([[0.4, 0.2, 0.1, 0.1]])  # sums to 0.8 (prefix columns dropped)
    m = torch.tensor([[[1., 0.], [0., 1.]]])
    assert torch.allclose(attention_share(attn, m), torch.tensor([0.5 / 0.8]))
    with pytest.raises(ValueError, match=r'\(2, 5\)'):
        check_attention(torch.rand(2, 5), 2, (2, 2))
    with pytest.raises(ValueError, match='required'):
        check_attention(None, 2, (2, 2))
    assert attention_share(torch.zeros(1, 4), m).tolist() == [0.]  # no NaN


def test_nomix_targets_are_smoothed_one_hot():
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    mixed = NoMix(3, label_smoothing=0.1)(x, y)
    assert mixed.method == 'none' and torch.equal(mixed.images, x)
    assert mixed.token_mask.shape == (3, 2, 2) and mixed.lam_area.eq(0).all()
    assert torch.allclose(mixed.targets(), smooth_one_hot(y, 3, 0.1))


def test_mixer_input_errors():
    with pytest.raises(ValueError, match='B×C×H×W'):
        NoMix(3)(torch.randn(3, 32, 32), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='int class indices'):
        NoMix(3)(torch.randn(2, 3, 32, 32), torch.tensor([0., 1.]))
    with pytest.raises(ValueError, match='40x40'):
        NoMix(3)(torch.randn(2, 3, 40, 40), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'mix'"):
        NoMix(3, partner='mix')

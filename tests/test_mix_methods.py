"""Mixup, CutMix, TransMix, MaskMix (+PAL), TokenMix: regions, λ, targets, seeding, errors."""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pretrain.mix import (
    CAMTeacher, CutMix, MaskMix, Mixup, NoMix, TokenMix, TransMix, block_mask, box_mask, normalize_map, random_cells,
    random_subsets, random_token_mask,
    smooth_one_hot)

C = 5


def batch(B=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, size, size, generator=g), torch.randint(0, C, (B,), generator=g)


def pasted(x, mixed):
    """B×H×W bool: pixels that changed, i.e. came from the partner (images are distinct random noise)."""
    return (mixed.images != x).any(1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def hand_batch(mixed, token_mask, lam_area, labels, partner):
    """Replace the random region of a real mixer output by a hand-built one (label function and needs kept)."""
    return dataclasses.replace(
        mixed, token_mask=torch.tensor(token_mask, dtype=torch.float32), lam_area=torch.tensor(lam_area),
        labels=torch.tensor(labels), partner=torch.tensor(partner))


# --- Mixup -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('mode', ['batch', 'elem'])
def test_mixup(mode):
    x, y = batch()
    mixed = Mixup(C, mode=mode, generator=gen())(x, y)
    lam = mixed.lam_area
    assert mixed.method == 'mixup' and mixed.partner.tolist() == list(range(7, -1, -1))
    assert torch.allclose(mixed.images, (1 - lam.view(-1, 1, 1, 1)) * x + lam.view(-1, 1, 1, 1) * x[mixed.partner],
                          atol=1e-6)
    assert torch.equal(mixed.token_mask, lam.view(-1, 1, 1).expand(-1, 4, 4))
    assert (lam.unique().numel() == 1) == (mode == 'batch')
    t = mixed.targets()
    assert torch.allclose(t, (1 - lam[:, None]) * smooth_one_hot(y, C, .1) + lam[:, None] * smooth_one_hot(
        y.flip(0), C, .1))


# --- CutMix ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('mode', ['batch', 'elem'])
def test_cutmix_lam_is_pasted_share_and_token_mask_is_nearest(mode):
    x, y = batch()
    for seed in range(10):
        mixed = CutMix(C, mode=mode, generator=gen(seed))(x, y)
        m = pasted(x, mixed)
        assert torch.allclose(m.float().mean((1, 2)), mixed.lam_area)
        assert torch.equal(mixed.token_mask, F.interpolate(m[:, None].float(), size=(4, 4), mode='nearest')[:, 0])
        assert torch.equal(mixed.images[m.unsqueeze(1).expand_as(x)], x[mixed.partner][m.unsqueeze(1).expand_as(x)])
    lam = CutMix(C, mode=mode, generator=gen(0))(x, y).lam_area
    assert (lam.unique().numel() == 1) == (mode == 'batch')


@pytest.mark.parametrize('mode, snap, patch', [('batch', False, 16), ('elem', False, 8), ('elem', True, 16)])
def test_cutmix_token_mask_equals_box_mask_on_token_corners(mode, snap, patch):
    """The token mask (pixel mask at each token's top-left pixel) is the box test at the token corners."""
    g = gen(3)
    x = torch.randn(4, 3, 64, 96, generator=g)
    y = torch.randint(0, C, (4,), generator=g)
    for seed in range(20):
        mixer = CutMix(C, mode=mode, snap_to_tokens=snap, patch_size=patch, generator=gen(seed))
        mixed = mixer(x, y)
        boxes = CutMix(C, mode=mode, snap_to_tokens=snap, patch_size=patch, generator=gen(seed)).sample_boxes(
            4, (64, 96))  # the first draws of _mix
        want = box_mask(boxes, torch.arange(64 // patch) * patch, torch.arange(96 // patch) * patch)
        assert torch.equal(mixed.token_mask, want.float().expand(4, -1, -1))


def test_cutmix_snap_to_tokens():
    x, y = batch(size=96)
    for seed in range(10):
        mixed = CutMix(C, mode='elem', snap_to_tokens=True, generator=gen(seed))(x, y)
        m = pasted(x, mixed).float()
        assert torch.equal(mixed.token_mask, m[:, ::16, ::16])
        assert torch.equal(F.avg_pool2d(m[:, None], 16)[:, 0], mixed.token_mask)  # constant on every token
        assert torch.allclose(mixed.token_mask.mean((1, 2)), mixed.lam_area)


# --- TransMix --------------------------------------------------------------------------------------------------

def test_transmix_input_is_cutmix():
    x, y = batch()
    a, b = CutMix(C, generator=gen(3))(x, y), TransMix(C, generator=gen(3))(x, y)
    assert torch.equal(a.images, b.images) and torch.equal(a.token_mask, b.token_mask)
    assert b.method == 'transmix' and b.needs == {'attn'}


@pytest.mark.parametrize('label, lam0', [('mean', (0.25 + 0.5) / 2), ('attn', 0.5)])
def test_transmix_targets_hand_computed(label, lam0):
    x, y = batch(B=2, size=32)
    mixed = TransMix(2, label=label, label_smoothing=0.)(x, y)
    # sample 0: top-left token pasted (area 1/4); attention sums to 0.8, 0.4 of it inside the box → λ_attn = 0.5
    # sample 1: nothing pasted → λ_attn = 0
    mixed = hand_batch(mixed, [[[1, 0], [0, 0]], [[0, 0], [0, 0]]], [0.25, 0.], [0, 1], [1, 0])
    attn = torch.tensor([[0.4, 0.2, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]])
    w_self, w_partner = mixed.label_weights(attn=attn)
    assert torch.allclose(w_partner, torch.tensor([lam0, 0.]))
    assert torch.allclose(mixed.targets(attn=attn), torch.tensor([[1 - lam0, lam0], [0., 1.]]))
    assert torch.allclose(mixed.targets(attn=attn.view(2, 2, 2)), mixed.targets(attn=attn))


def test_transmix_attention_errors():
    x, y = batch()
    mixed = TransMix(C)(x, y)
    with pytest.raises(ValueError, match='required'):
        mixed.targets()
    with pytest.raises(ValueError, match=r'\(8, 49\).*\(8, 16\)'):
        mixed.targets(attn=torch.rand(8, 49))
    with pytest.raises(ValueError, match="'both'"):
        TransMix(C, label='both')


# --- MaskMix / PAL ---------------------------------------------------------------------------------------------

def test_maskmix_cells_align_with_tokens_and_differ_per_sample():
    x, y = batch(B=8, size=128)
    for seed in range(5):
        mixer = MaskMix(C, mask_patch=32, partner='flip', generator=gen(seed))
        mixed = mixer(x, y)
        m = pasted(x, mixed).float()
        cells = F.avg_pool2d(m[:, None], 32)[:, 0]
        assert ((cells == 0) | (cells == 1)).all()  # every 32-px cell comes from one image
        assert torch.equal(mixed.token_mask, F.interpolate(cells[:, None], scale_factor=2, mode='nearest')[:, 0])
        assert cells.shape[-2:] == (4, 4)  # 128 px / 32
        assert torch.allclose(m.mean((1, 2)), mixed.lam_area)  # λ_area = pasted share = n / cells
        n = cells.sum((1, 2))
        assert torch.equal(n, n[0].expand(8)) and torch.allclose(mixed.lam_area, n / 16)
        if 0 < n[0] < 16:
            assert len({tuple(c.flatten().tolist()) for c in cells}) > 1  # each sample has its own cells


def test_maskmix_count_is_ceil_of_r():
    # n = ceil(16·r), r ~ Beta(1,1) per batch; 'elem' draws r per sample
    counts = [MaskMix(C, mask_patch=16, generator=gen(s))(*batch(B=2, size=64)).lam_area[0].item() * 16
              for s in range(200)]
    assert all(abs(c - round(c)) < 1e-4 and 1 <= round(c) <= 16 for c in counts)
    assert len({round(c) for c in counts}) == 16  # all counts occur (uniform r)
    lam = MaskMix(C, mask_patch=32, mode='elem', generator=gen(0))(*batch(B=8, size=128)).lam_area
    assert lam.unique().numel() > 1


def test_random_cells_exact_count():
    m = random_cells(torch.tensor([0, 3, 16, 7]), (4, 4), gen(0))
    assert m.flatten(1).sum(1).tolist() == [0, 3, 16, 7]


def test_random_cells_and_token_mask_share_one_draw():
    """Both are random_subsets: rank of B×n i.i.d. uniforms below the count (the same draws as before)."""
    def by_rank(B, n, count, g):
        rank = torch.rand(B, n, generator=g).argsort(1).argsort(1)
        return rank < torch.as_tensor(count).view(-1, 1)
    n = torch.tensor([0, 3, 16, 7, 9])
    assert torch.equal(random_cells(n, (4, 4), gen(4)), by_rank(5, 16, n, gen(4)).view(5, 4, 4))
    assert torch.equal(random_subsets(5, 16, n, gen(4)).view(5, 4, 4), random_cells(n, (4, 4), gen(4)))
    assert torch.equal(random_token_mask(3, (6, 7), 20, gen(5)), by_rank(3, 42, 20, gen(5)).view(3, 6, 7))
    assert torch.equal(random_subsets(3, 42, 20, gen(5)).view(3, 6, 7), random_token_mask(3, (6, 7), 20, gen(5)))


def test_maskmix_cell_grid_defaults_and_errors():
    # the paper's 4x4 grid (56 px on 224) for every model; edges snapped to the finest token stride
    assert MaskMix(C, patch_size=14).edges((224, 224))[0] == (0, 56, 112, 168, 224)  # MixPro's DeiT-14
    assert MaskMix(C, patch_size=32, input_unit=4).edges((224, 224))[0] == (0, 56, 112, 168, 224)  # PVT v1
    assert MaskMix(C, patch_size=16).edges((224, 224))[0] == (0, 64, 112, 176, 224)  # ViT-16: snapped, 4-3-4-3
    assert MaskMix(C, patch_size=8).edges((64, 64))[0] == (0, 16, 32, 48, 64)  # a 64² demo image: 16-px cells
    assert MaskMix(C, mask_patch=64).edges((224, 224))[0] == (0, 64, 128, 192, 224)  # last cell cut (official)
    x, y = batch(B=2, size=224)
    with pytest.raises(ValueError, match='empty cell'):
        MaskMix(C, mask_patch=4)(x, y)  # 4-px cells on 16-px tokens
    with pytest.raises(ValueError, match='single cell'):
        MaskMix(C, mask_patch=32)(*batch(B=2, size=32))
    with pytest.raises(ValueError, match='pal_label'):
        MaskMix(C, pal_label='both')


@pytest.mark.parametrize('patch,unit', [(16, None), (14, None), (32, 4), (8, None)], ids=['vit16', 'vit14', 'pvt', 'vit8'])
def test_maskmix_every_input_token_from_one_image_and_label_is_nearest_downsample(patch, unit):
    size = 224 if patch != 8 else 64
    x, y = batch(B=6, size=size)
    for seed in range(3):
        mixer = MaskMix(C, patch_size=patch, input_unit=unit, partner='flip', generator=gen(seed))
        mixed = mixer(x, y)
        m = pasted(x, mixed).float()
        u = unit or patch
        tokens = F.avg_pool2d(m[:, None], u)[:, 0]
        assert ((tokens == 0) | (tokens == 1)).all()  # every finest-stride token comes from one image
        assert torch.allclose(m.mean((1, 2)), mixed.lam_area)  # λ_area = the real pasted share
        assert torch.equal(mixed.token_mask, m[:, ::patch, ::patch])  # ↓M: each attention token's top-left pixel


def test_maskmix_on_pvt_s_at_224_cuts_56px_cells():
    """MixClassifier(pvt_small) sets the finest stride (stage 1, 4 px): MaskMix cuts a 4x4 grid of 56-px cells;
    the label side is the 7x7 stage-4 grid (before: 32-px cells, one stage-4 token each)."""
    from pretrain.classifier import MixClassifier
    torch.manual_seed(0)
    clf = MixClassifier('pvt_small', num_classes=C, mixer=dict(type='mixpro_recipe', maskmix_prob=1.0))
    maskmix = clf.mixer.mixers[0]
    assert isinstance(maskmix, MaskMix) and maskmix.input_unit == 4 and maskmix.patch_size == 32
    maskmix.partner = 'flip'  # (randperm may pair an image with itself: nothing visibly pasted)
    x, y = batch(B=4, size=224)
    mixed = maskmix(x, y)
    m = pasted(x, mixed).float()
    cells = F.avg_pool2d(m[:, None], 56)[:, 0]
    assert cells.shape[-2:] == (4, 4) and ((cells == 0) | (cells == 1)).all()  # whole 56-px cells, 4x4
    assert torch.equal(mixed.token_mask, m[:, ::32, ::32]) and mixed.grid == (7, 7)
    assert torch.allclose(mixed.lam_area, cells.mean((1, 2)))


def test_pal_hand_computed():
    x, y = batch(B=2, size=32)
    mixed = MaskMix(2, mask_patch=16, pal=True, label_smoothing=0.)(x, y)
    assert mixed.needs == {'attn', 'logits'}
    mixed = hand_batch(mixed, [[[1, 0], [0, 0]], [[0, 1], [1, 1]]], [0.25, 0.75], [0, 1], [1, 0])
    attn = torch.tensor([[0.4, 0.2, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]])
    logits = torch.log(torch.tensor([[0.6, 0.4], [0.5, 0.5]]))
    # sample 0: λ_attn = 0.4/0.8 = 0.5; ỹ_area = [0.75, 0.25]; p = [0.6, 0.4]
    cos0 = (0.6 * 0.75 + 0.4 * 0.25) / (math.sqrt(0.6 ** 2 + 0.4 ** 2) * math.sqrt(0.75 ** 2 + 0.25 ** 2))
    lam0 = cos0 * 0.5 + (1 - cos0) * 0.25
    # sample 1 (label 1, partner label 0): λ_attn = 0.9/1.0; ỹ_area = 0.25·e1 + 0.75·e0 = [0.75, 0.25]; p uniform
    cos1 = (0.5 * 0.75 + 0.5 * 0.25) / (math.sqrt(0.5) * math.sqrt(0.75 ** 2 + 0.25 ** 2))
    lam1 = cos1 * 0.9 + (1 - cos1) * 0.75
    w_self, w_partner = mixed.label_weights(attn=attn, logits=logits)
    assert torch.allclose(w_partner, torch.tensor([lam0, lam1]), atol=1e-6)
    assert torch.allclose(mixed.targets(attn=attn, logits=logits),
                          torch.tensor([[1 - lam0, lam0], [lam1, 1 - lam1]]), atol=1e-6)
    with pytest.raises(ValueError, match='logits'):
        mixed.targets(attn=attn)


@pytest.mark.parametrize('detach', [False, True])
def test_pal_alpha_gradient(detach):
    x, y = batch(B=4, size=64)
    mixed = MaskMix(C, mask_patch=16, pal=True, detach_alpha=detach, generator=gen(0))(x, y)
    logits = torch.randn(4, C, requires_grad=True)
    t = mixed.targets(attn=torch.rand(4, 16), logits=logits)
    assert t.requires_grad != detach


def test_maskmix_without_pal_is_area_label():
    x, y = batch(B=4, size=64)
    mixed = MaskMix(C, mask_patch=16, generator=gen(0))(x, y)
    assert mixed.needs == frozenset()
    lam = mixed.lam_area[:, None]
    assert torch.allclose(
        mixed.targets(), (1 - lam) * smooth_one_hot(y, C, .1) + lam * smooth_one_hot(y[mixed.partner], C, .1))


# --- TokenMix --------------------------------------------------------------------------------------------------

def check_blocks(mask, blocks, min_block, aspect=(0.3, 1 / 0.3)):
    union = np.zeros_like(mask)
    for top, left, bh, bw in blocks:
        assert bh * bw >= min_block
        assert aspect[0] <= bh / bw <= aspect[1]
        assert top >= 0 and left >= 0 and top + bh <= mask.shape[0] and left + bw <= mask.shape[1]
        union[top:top + bh, left:left + bw] = True
    assert np.array_equal(union, mask)


def test_block_mask_rules_and_count():
    rng = np.random.default_rng(0)
    exact = 0
    for _ in range(300):
        mask, blocks = block_mask((14, 14), 98, 14, rng=rng, return_blocks=True)
        check_blocks(mask, blocks, 14)
        assert 98 - 14 < mask.sum() <= 98
        exact += mask.sum() == 98
    assert exact >= 0.95 * 300  # stops short only when no block of ≥14 tokens can add what remains
    for _ in range(50):  # official variant: blocks of ≥ 1 token, target λ·p + 14 reached exactly
        mask, blocks = block_mask((14, 14), 112, 1, rng=rng, return_blocks=True)
        check_blocks(mask, blocks, 1)
        assert mask.sum() == 112
    with pytest.raises(ValueError, match='196 masked tokens of 196'):
        block_mask((14, 14), 196)
    with pytest.raises(ValueError, match='min_block=14'):
        block_mask((3, 3), 4, 14)


def test_normalize_map():
    m = normalize_map(torch.tensor([[1., 3., 0., -1.], [0., 0., 0., 0.]]))
    assert torch.allclose(m, torch.tensor([[0.25, 0.75, 0., 0.], [0.25, 0.25, 0.25, 0.25]]))


def test_random_token_mask_count():
    m = random_token_mask(6, (14, 14), 98, gen(0))
    assert m.flatten(1).sum(1).eq(98).all() and len({tuple(r.flatten().tolist()) for r in m}) == 6


@pytest.mark.parametrize('per_sample, mask_type', [(False, 'block'), (True, 'block'), (True, 'random')])
def test_tokenmix_mixing(per_sample, mask_type):
    x, y = batch(B=4, size=224)
    mixed = TokenMix(C, per_sample=per_sample, mask_type=mask_type, generator=gen(0))(x, y)
    m = pasted(x, mixed).float()
    assert torch.equal(m, mixed.token_mask.repeat_interleave(16, 1).repeat_interleave(16, 2))
    assert torch.allclose(mixed.lam_area, mixed.token_mask.mean((1, 2)))
    assert (mixed.lam_area > (98 - 14) / 196).all() and (mixed.lam_area <= 0.5).all()
    distinct = len({tuple(t.flatten().tolist()) for t in mixed.token_mask})
    assert (distinct > 1) == per_sample
    assert mixed.needs == {'label_maps'}  # the paper's source by default
    assert TokenMix(C, source='attention').needs == {'clean_attn'}


def test_tokenmix_targets_hand_computed():
    x, y = batch(B=2, size=32)
    mixed = TokenMix(2, variant='official', min_block_tokens=1, extra_target_tokens=0, label_smoothing=0.1,
                     source='attention')(x, y)
    mixed = hand_batch(mixed, [[[1, 0], [0, 0]], [[0, 1], [1, 1]]], [0.25, 0.75], [0, 1], [1, 0])
    # clean attention; sample 1's map is not normalised (sums to 2.4) → Â_1 = [0.5, 0.25, 0.125, 0.125]
    attn = torch.tensor([[0.4, 0.3, 0.2, 0.1], [1.2, 0.6, 0.3, 0.3]])
    w_self, w_partner = mixed.label_weights(attn=attn)
    # sample 0 keeps tokens 1-3 of itself (0.3+0.2+0.1) and gets token 0 of sample 1 (0.5)
    # sample 1 keeps token 0 of itself (0.5) and gets tokens 1-3 of sample 0 (0.3+0.2+0.1)
    assert torch.allclose(w_self, torch.tensor([0.6, 0.5])) and torch.allclose(w_partner, torch.tensor([0.5, 0.6]))
    on, off = 0.95, 0.05  # smoothing 0.1, 2 classes; the weights sum to 1.1: not renormalised
    expect = torch.tensor([[0.6 * on + 0.5 * off, 0.6 * off + 0.5 * on], [0.6 * on + 0.5 * off, 0.5 * on + 0.6 * off]])
    assert torch.allclose(mixed.targets(attn=attn), expect)


def test_tokenmix_sources_and_errors(tmp_path):
    x, y = batch(B=4, size=64)
    area = TokenMix(C, variant='official', extra_target_tokens=0, source='area', generator=gen(0))(x, y)
    w_self, w_partner = area.label_weights()
    assert torch.allclose(w_partner, area.lam_area) and torch.allclose(w_self + w_partner, torch.ones(4))

    teacher = CAMTeacher('test_resnet', num_classes=C)
    teacher.model.get_classifier().weight.data.abs_()  # positive CAM everywhere (features are post-ReLU)
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.model.state_dict()}, path)
    reloaded = CAMTeacher('test_resnet', checkpoint=str(path), num_classes=C)
    cam = reloaded(x, y, (4, 4))
    assert torch.allclose(cam, teacher(x, y, (4, 4))) and torch.allclose(cam.sum(1), torch.ones(4))
    feats = teacher.model.forward_features(x)
    raw = torch.einsum('bchw,bc->bhw', feats, teacher.model.get_classifier().weight[y]).relu()
    expect = F.interpolate(raw[:, None], size=(4, 4), mode='bilinear', align_corners=False).flatten(1)
    assert torch.allclose(cam, expect / expect.sum(1, keepdim=True), atol=1e-6)

    mixer = TokenMix(C, variant='official', extra_target_tokens=0, source='teacher', teacher=teacher,
                     generator=gen(0))
    mixed = mixer(x, y)
    assert mixed.needs == frozenset() and torch.allclose(mixed.activation, cam)
    w_self, w_partner = mixed.label_weights()
    m = mixed.token_mask.flatten(1)
    assert torch.allclose(w_partner, (m * cam[mixed.partner]).sum(1))
    assert torch.allclose(w_self, ((1 - m) * cam).sum(1))

    with pytest.raises(FileNotFoundError):
        CAMTeacher('test_resnet', checkpoint=str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match='CAMTeacher'):
        TokenMix(C, source='teacher')
    for ratio in (0., 1.):
        with pytest.raises(ValueError, match=f'got {ratio}'):
            TokenMix(C, mask_ratio=ratio)
    with pytest.raises(ValueError, match='min_block=14'):
        TokenMix(C)(x, y)  # 4×4 grid: no block of 14 tokens fits the 8 to paste


def test_cam_teacher_refuses_a_head_norm():
    """ConvNeXt's head normalises the pooled features before its Linear: W·F is not its CAM."""
    with pytest.raises(ValueError, match=r'convnext_atto applies head\.norm \(LayerNorm2d\) before head\.fc'):
        CAMTeacher('convnext_atto', num_classes=C)
    teacher = CAMTeacher('resnet18', num_classes=C)  # fc directly on the pooled features
    x, y = batch(B=2, size=64)
    assert teacher(x, y, (2, 2)).shape == (2, 4)


def test_cam_teacher_is_float32_under_autocast():
    teacher = CAMTeacher('test_resnet', num_classes=C)
    x, y = batch(B=4, size=64)
    want = teacher(x, y, (4, 4))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        feats = teacher.model.forward_features(x)
        got = teacher(x, y, (4, 4))
    assert got.dtype == torch.float32
    # the features are bfloat16 under autocast; the CAM from them is computed in float32
    raw = torch.einsum('bchw,bc->bhw', feats.float(), teacher.model.get_classifier().weight[y]).relu()
    expect = F.interpolate(raw[:, None], size=(4, 4), mode='bilinear', align_corners=False).flatten(1)
    assert torch.allclose(got, normalize_map(expect), atol=1e-6)
    assert torch.allclose(got, want, atol=2e-2)


# --- invariants over all methods, seeding ----------------------------------------------------------------------

def all_mixers(generator=None):
    return [
        NoMix(C), Mixup(C, generator=generator), Mixup(C, mode='elem', generator=generator),
        CutMix(C, generator=generator), CutMix(C, mode='elem', generator=generator),
        TransMix(C, mode='elem', generator=generator), TransMix(C, label='attn', generator=generator),
        MaskMix(C, pal=True, generator=generator), MaskMix(C, mode='elem', generator=generator),
        TokenMix(C, source='attention', generator=generator),
        TokenMix(C, source='attention', per_sample=True, mask_type='random', generator=generator),
    ]


def test_invariants_random_inputs():
    g = gen(0)
    x, y = batch(B=6, size=224)
    for trial in range(3):
        for mixer in all_mixers(g):
            mixed = mixer(x, y)
            attn = torch.rand(6, 196, generator=g) ** 4
            logits = torch.randn(6, C, generator=g) * 3
            w_self, w_partner = mixed.label_weights(attn=attn, logits=logits)
            t = mixed.targets(attn=attn, logits=logits)
            assert mixed.token_mask.shape == (6, 14, 14) and mixed.partner.dtype == torch.long
            assert ((mixed.lam_area >= 0) & (mixed.lam_area <= 1)).all()
            assert ((w_partner >= 0) & (w_partner <= 1)).all() and ((w_self >= 0) & (w_self <= 1)).all()
            assert (t >= 0).all()
            if mixed.method == 'tokenmix':  # weights are not renormalised: each in [0, 1], sum in [0, 2]
                assert torch.allclose(t.sum(1), w_self + w_partner, atol=1e-5)
            else:
                assert torch.allclose(t.sum(1), torch.ones(6), atol=1e-5), mixed.method


def test_seeded_runs_repeat():
    x, y = batch(B=4, size=224)
    runs = [[m(x, y) for m in all_mixers(gen(seed))] for seed in (7, 7, 8)]
    for a, b, c in zip(*runs):
        assert torch.equal(a.images, b.images) and torch.equal(a.token_mask, b.token_mask)
        assert torch.equal(a.partner, b.partner) and torch.equal(a.lam_area, b.lam_area)
        if a.method != 'none':
            assert not torch.equal(a.images, c.images), a.method
    torch.manual_seed(3)  # the global torch RNG works the same
    a = MaskMix(C)(x, y)
    torch.manual_seed(3)
    assert torch.equal(a.images, MaskMix(C)(x, y).images)


def test_block_mask_that_cannot_place_any_block_is_an_error():
    import numpy as np

    from pretrain.mix.tokenmix import block_mask
    # 2x8 grid, 8 tokens to mask, blocks >= 8 tokens with aspect in [0.3, 3.3]: 2x4 (0.5) fits; 1x8 does not
    assert block_mask((2, 8), 8, min_block=8, rng=np.random.default_rng(0)).sum() == 8
    with pytest.raises(ValueError, match='no block of >= 8 tokens'):
        block_mask((1, 16), 8, min_block=8, rng=np.random.default_rng(0))

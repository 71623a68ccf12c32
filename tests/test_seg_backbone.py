"""MixsegViT (mixseg/backbones/vit.py): parity with mmseg's VisionTransformer, weight files, refusals, shapes."""
import math

import pytest
import torch

pytest.importorskip('mmseg')
timm = pytest.importorskip('timm')

from mixseg.backbones.vit import MixsegViT, mmseg_vit_converter  # noqa: E402
from mixcore.weights.backbone_file import save_backbone_file  # noqa: E402
from mixcore.weights.load import CheckpointMismatchError


pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest


def _random_timm_state(arch='deit_small_patch16_224', seed=0, **kwargs):
    """A timm state dict (with its classifier head) whose every tensor is random, norms and biases included,
    so that a wrong eps, a dropped bias or a skipped norm shows up in the outputs."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope='module')
def deit_t_state():
    return _random_timm_state('deit_tiny_patch16_224')[1]


@pytest.fixture(scope='module')
def deit_s_pth(tmp_path_factory):
    """An official-DeiT-style .pth ({'model': state dict with head}) of a random DeiT-S."""
    _, sd = _random_timm_state('deit_small_patch16_224')
    path = tmp_path_factory.mktemp('w') / 'deit_small_random.pth'
    torch.save({'model': sd, 'epoch': 299}, path)
    return path, sd


@pytest.fixture(scope='module')
def mmseg_vit(deit_s_pth, tmp_path_factory):
    """mmseg's VisionTransformer (Segmenter settings, patch bias on) loaded from the same weights."""
    from mmseg.models.backbones import VisionTransformer
    path, sd = deit_s_pth
    converted = mmseg_vit_converter()({k: v for k, v in sd.items() if not k.startswith('head')})
    mm_path = tmp_path_factory.mktemp('w') / 'deit_small_random_mmseg.pth'
    torch.save({'state_dict': converted}, mm_path)
    model = VisionTransformer(
        img_size=(512, 512), patch_size=16, in_channels=3, embed_dims=384, num_layers=12, num_heads=6,
        mlp_ratio=4, qkv_bias=True, patch_bias=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.,
        with_cls_token=True, final_norm=True, norm_cfg=dict(type='LN', eps=1e-6), interpolate_mode='bicubic',
        init_cfg=dict(type='Pretrained', checkpoint=str(mm_path)))
    model.init_weights()
    # mmseg really got the weights (its loader is not strict): every tensor equals the converted one
    own = model.state_dict()
    assert own['patch_embed.projection.bias'].abs().sum() > 0
    for k, v in converted.items():
        if k != 'pos_embed':
            assert torch.equal(own[k], v), k
    model.eval()  # (mmseg's VisionTransformer.train() returns None)
    return model


@pytest.fixture(scope='module')
def ours(deit_s_pth):
    path, _ = deit_s_pth
    model = MixsegViT(arch='deit_small_patch16_224', img_size=512, checkpoint=str(path), drop_path_rate=0.)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('size', [(512, 512), (480, 400), (300, 512)])
def test_parity_with_mmseg_vision_transformer(ours, mmseg_vit, size):
    """Same weights (timm DeiT-S -> mmseg via vit2mmseg), same input: same features. 512x512 uses the
    position embedding resized at load time (14x14 -> 32x32); the other sizes (sliding windows at image
    borders) also resize it on the fly and pad to whole patches."""
    torch.manual_seed(1)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        a, = ours(x)
        b, = mmseg_vit(x)
    assert a.shape == b.shape == (1, 384, math.ceil(size[0] / 16), math.ceil(size[1] / 16))
    diff = (a - b).abs().max().item()
    print(f'parity {size}: max |ours - mmseg| = {diff:.2e}')
    assert diff <= 1e-4, diff
    assert a.abs().mean() > 0.1  # not a trivially small output


def test_parity_detects_a_different_model(ours, mmseg_vit):
    """The comparison above can fail: perturb one weight of ours and the features differ."""
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        saved = ours.blocks[5].mlp.fc1.bias.clone()
        ours.blocks[5].mlp.fc1.bias.add_(0.05)
        try:
            diff = (ours(x)[0] - mmseg_vit(x)[0]).abs().max().item()
        finally:
            ours.blocks[5].mlp.fc1.bias.copy_(saved)
    assert diff > 1e-3


def test_loads_timm_weights_and_resizes_pos_embed(ours, deit_s_pth):
    from timm.layers import resample_abs_pos_embed
    _, sd = deit_s_pth
    own = ours.state_dict()
    assert set(own) == {k for k in sd if not k.startswith('head.')}  # the timm layout, minus the head
    for k, v in own.items():
        if k != 'pos_embed':
            assert torch.equal(v, sd[k]), k
    assert own['pos_embed'].shape == (1, 1 + 32 * 32, 384)
    assert torch.equal(own['pos_embed'][:, 0], sd['pos_embed'][:, 0])  # class-token slot kept
    expected = resample_abs_pos_embed(sd['pos_embed'], [32, 32], num_prefix_tokens=1, antialias=False)
    assert torch.allclose(own['pos_embed'], expected)
    assert own['patch_embed.proj.bias'].abs().sum() > 0  # the patch-embedding bias is kept


def test_backbone_file_and_mmengine_checkpoint_load_the_same(ours, deit_s_pth, tmp_path):
    _, sd = deit_s_pth
    backbone_sd = {k: v for k, v in sd.items() if not k.startswith('head.')}
    bf = save_backbone_file(tmp_path / 'deit-s_transmix.safetensors', backbone_sd, arch='deit_small_patch16_224',
                            img_size=224, patch_size=16, method='transmix', epochs=300)
    a = MixsegViT(arch='deit_small_patch16_224', img_size=512, checkpoint=str(bf), drop_path_rate=0.)
    a.init_weights()
    # an mmengine checkpoint of a whole segmentor: backbone keys under 'backbone.', plus a decoder
    ckpt = {'meta': {'epoch': 1}, 'state_dict': {**{f'backbone.{k}': v for k, v in backbone_sd.items()},
                                                 'decode_head.conv_seg.weight': torch.zeros(150, 384, 1, 1)}}
    torch.save(ckpt, tmp_path / 'iter_1.pth')
    b = MixsegViT(arch='deit_small_patch16_224', img_size=512, checkpoint=str(tmp_path / 'iter_1.pth'),
                  drop_path_rate=0.)
    b.init_weights()
    ref = ours.state_dict()
    for m in (a, b):
        for k, v in m.state_dict().items():
            assert torch.equal(v, ref[k]), k


def test_stage2_checkpoint_reloads_at_another_crop(ours, tmp_path):
    """A trained segmentor's backbone (pos embed at 32x32) fine-tunes again at 480x480 (30x30)."""
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in ours.state_dict().items()}}, tmp_path / 'seg.pth')
    m = MixsegViT(arch='deit_small_patch16_224', img_size=480, checkpoint=str(tmp_path / 'seg.pth'),
                  drop_path_rate=0.)
    m.init_weights()
    assert m.pos_embed.shape == (1, 1 + 30 * 30, 384)
    assert torch.equal(m.blocks[3].attn.qkv.weight, ours.blocks[3].attn.qkv.weight)


def test_wrong_architecture_is_refused(tmp_path, deit_t_state):
    tiny = deit_t_state
    torch.save({'model': tiny}, tmp_path / 'deit_tiny.pth')
    m = MixsegViT(arch='deit_small_patch16_224', img_size=224, checkpoint=str(tmp_path / 'deit_tiny.pth'))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as e:
        m.init_weights()
    msg = str(e.value)
    assert 'deit_tiny.pth' in msg
    assert 'shape mismatch: blocks.0.attn.qkv.weight: file (576, 192) vs model (1152, 384)' in msg
    for k, v in m.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_missing_and_unexpected_keys_are_listed(tmp_path, deit_t_state):
    sd = dict(deit_t_state)
    # a deeper file (a block too many) and one without the final norm
    sd['blocks.12.mlp.fc1.weight'] = sd['blocks.11.mlp.fc1.weight']
    del sd['norm.weight']
    torch.save(sd, tmp_path / 'odd.pth')
    m = MixsegViT(arch='deit_tiny_patch16_224', img_size=224, checkpoint=str(tmp_path / 'odd.pth'))
    with pytest.raises(CheckpointMismatchError) as e:
        m.init_weights()
    msg = str(e.value)
    assert 'missing keys (1): norm.weight' in msg
    assert 'unexpected keys (1): blocks.12.mlp.fc1.weight' in msg
    # the classifier head of the file is not reported: a backbone ignores heads
    assert 'head' not in msg


def test_other_patch_size_is_refused(tmp_path, deit_t_state):
    torch.save({'model': deit_t_state}, tmp_path / 'p16.pth')
    m = MixsegViT(arch='deit_tiny_patch16_224', img_size=224, checkpoint=str(tmp_path / 'p16.pth'),
                  model_kwargs=dict(patch_size=8))
    with pytest.raises(CheckpointMismatchError, match=r'patch_embed\.proj\.weight: file \(192, 3, 16, 16\)'):
        m.init_weights()


def test_distilled_deit_matches_timm():
    """Class + distillation token: the patch tokens after the final norm are timm's own."""
    ref, sd = _random_timm_state('deit_tiny_distilled_patch16_224', num_classes=0,
                                 dynamic_img_size=True, dynamic_img_pad=True)
    ref.eval()
    m = MixsegViT(arch='deit_tiny_distilled_patch16_224', img_size=224, drop_path_rate=0.).eval()
    m.load_state_dict(sd)
    assert m.num_prefix_tokens == 2
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a, = m(x)
        b, = ref.forward_intermediates(x, indices=[11], norm=True, intermediates_only=True)
    assert a.shape == (2, 192, 14, 14)
    assert torch.allclose(a, b, atol=1e-5)


def test_out_indices_final_norm_shapes_and_gradients():
    m = MixsegViT(arch='vit_tiny_patch16_224', img_size=128, out_indices=(1, -1), drop_path_rate=0.2,
                  model_kwargs=dict(patch_size=8, embed_dim=64, depth=4, num_heads=2))
    assert m.out_indices == [1, 3]
    m.train()
    x = torch.randn(2, 3, 100, 132, requires_grad=True)  # not a multiple of the patch: padded
    outs = m(x)
    assert [tuple(o.shape) for o in outs] == [(2, 64, 13, 17)] * 2
    # the last output went through the final LayerNorm (zero mean over channels), the first did not
    assert outs[1].mean(1).abs().max() < 1e-4
    assert outs[0].mean(1).abs().max() > 1e-3
    sum(o.sum() for o in outs).backward()
    assert x.grad is not None and m.pos_embed.grad.abs().sum() > 0 and m.patch_embed.proj.bias.grad is not None
    with pytest.raises(ValueError, match='out_indices'):
        MixsegViT(arch='vit_tiny_patch16_224', img_size=128, out_indices=7,
                  model_kwargs=dict(embed_dim=64, depth=4, num_heads=2))


def test_blocks_after_the_last_output_are_not_run():
    kw = dict(arch='vit_tiny_patch16_224', img_size=64, drop_path_rate=0.,
              model_kwargs=dict(embed_dim=32, depth=4, num_heads=2))
    torch.manual_seed(0)
    m = MixsegViT(out_indices=(0, 1), **kw).eval()
    torch.manual_seed(0)
    full = MixsegViT(out_indices=(0, 1, 3), **kw).eval()  # the same weights, all four blocks run
    ran = []
    for i in (2, 3):
        m.blocks[i].register_forward_hook(lambda *_, i=i: ran.append(i))
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        outs, ref = m(x), full(x)
    assert ran == [] and len(outs) == 2
    assert all(torch.equal(a, b) for a, b in zip(outs, ref[:2]))
    with pytest.raises(ValueError, match='out_indices'):
        MixsegViT(out_indices=(), **kw)


def test_final_norm_off_drops_the_norm_weights(tmp_path, deit_t_state):
    sd = deit_t_state
    torch.save({'model': sd}, tmp_path / 't.pth')
    m = MixsegViT(arch='deit_tiny_patch16_224', img_size=224, final_norm=False, checkpoint=str(tmp_path / 't.pth'))
    m.init_weights()
    assert not any(k.startswith('norm.') for k in m.state_dict())
    assert torch.equal(m.blocks[11].mlp.fc2.weight, sd['blocks.11.mlp.fc2.weight'])


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ValueError, match='not_a_model'):
        MixsegViT(arch='not_a_model')
    with pytest.raises(ValueError, match='not a ViT-style model'):
        MixsegViT(arch='resnet18', img_size=224)
    # a crop that is not whole patches is padded: the position embedding belongs to the padded grid (32x32 = 512 px)
    m = MixsegViT(arch='deit_tiny_patch16_224', img_size=500)
    assert m.grid_size == (32, 32) and m.pos_embed.shape == (1, 1 + 32 * 32, 192) and m.img_size == (500, 500)


def test_registered_in_mmseg():
    from mmseg.registry import MODELS
    m = MODELS.build(dict(type='MixsegViT', arch='vit_tiny_patch16_224', img_size=64,
                          model_kwargs=dict(embed_dim=32, depth=1, num_heads=1)))
    assert isinstance(m, MixsegViT)

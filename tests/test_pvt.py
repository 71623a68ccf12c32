"""PVT v1 (pretrain/models/pvt.py): architecture, key layout, timm registration, checkpoint conversion, and
numerical parity with mmdet's own ``PyramidVisionTransformer`` loading our weights through ``pvt_convert``."""
import math

import pytest
import torch
import torch.nn.functional as F

timm = pytest.importorskip('timm')

import pretrain.models  # noqa: E402,F401  (registers pvt_* with timm)
from pretrain.models.pvt import PyramidVisionTransformer, checkpoint_filter_fn  # noqa: E402

# Published parameter counts (PVT paper, Table 1/2; 1000-class head), in millions.
PUBLISHED_PARAMS = {'pvt_tiny': 13.2, 'pvt_small': 24.5, 'pvt_medium': 44.2, 'pvt_large': 61.4}
DEPTHS = {'pvt_tiny': (2, 2, 2, 2), 'pvt_small': (3, 4, 6, 3), 'pvt_medium': (3, 4, 18, 3),
          'pvt_large': (3, 8, 27, 3)}


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter a non-degenerate random value (not the near-zero trunc-normal 0.02 init, under
    which attention is almost uniform and e.g. swapped q/k would go unnoticed)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:  # LayerNorm weights
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif 'pos_embed' in name or 'cls_token' in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(fan_in)))
    return model


@pytest.mark.parametrize('name', sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_the_paper(name):
    with torch.device('meta'):  # counts only: no memory, no init cost
        model = timm.create_model(name)
    n = sum(p.numel() for p in model.parameters())
    assert round(n / 1e6, 1) == PUBLISHED_PARAMS[name], f'{name}: {n / 1e6:.3f}M'
    assert tuple(len(getattr(model, f'block{i}')) for i in range(1, 5)) == DEPTHS[name]


def test_registered_with_timm_and_no_download_locations():
    for name in ('pvt_tiny', 'pvt_small', 'pvt_medium', 'pvt_large', 'pvt_nano'):
        assert timm.is_model(name)
        cfg = timm.models.get_pretrained_cfg(name)
        assert not cfg.url and not cfg.hf_hub_id, f'{name} must not point to a download'
    assert not timm.is_model_pretrained('pvt_small')


def test_original_state_dict_layout():
    with torch.device('meta'):
        model = timm.create_model('pvt_small')
    sd = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    # position embeddings: 56², 28², 14², and 1 + 7² (class slot) at 224
    assert shapes['pos_embed1'] == (1, 3136, 64) and shapes['pos_embed2'] == (1, 784, 128)
    assert shapes['pos_embed3'] == (1, 196, 320) and shapes['pos_embed4'] == (1, 50, 512)
    assert shapes['cls_token'] == (1, 1, 512) and shapes['head.weight'] == (1000, 512)
    assert shapes['patch_embed1.proj.weight'] == (64, 3, 4, 4)
    assert shapes['patch_embed4.proj.weight'] == (512, 320, 2, 2)
    assert shapes['block1.0.attn.q.weight'] == (64, 64) and shapes['block1.0.attn.kv.weight'] == (128, 64)
    assert shapes['block1.0.attn.sr.weight'] == (64, 64, 8, 8) and 'block1.0.attn.norm.weight' in sd
    assert shapes['block3.5.attn.sr.weight'] == (320, 320, 2, 2)
    assert not any(k.startswith('block4.0.attn.sr') or k.startswith('block4.0.attn.norm') for k in sd)  # sr 1
    assert shapes['block1.0.mlp.fc1.weight'] == (512, 64) and shapes['block4.2.mlp.fc2.weight'] == (512, 2048)
    allowed = (r'^(patch_embed[1-4]\.(proj|norm)\.(weight|bias)|pos_embed[1-4]|cls_token|norm\.(weight|bias)|'
               r'head\.(weight|bias)|'
               r'block[1-4]\.\d+\.(norm1|norm2|attn\.(q|kv|sr|norm|proj)|mlp\.(fc1|fc2))\.(weight|bias))$')
    import re
    assert all(re.match(allowed, k) for k in sd), [k for k in sd if not re.match(allowed, k)]
    assert model.num_prefix_tokens == 1


def test_original_norm_eps():
    model = timm.create_model('pvt_nano')
    assert model.patch_embed1.norm.eps == 1e-5 and model.block1[0].attn.norm.eps == 1e-5  # nn.LayerNorm default
    assert model.block1[0].norm1.eps == 1e-6 and model.norm.eps == 1e-6


def test_forward_shapes_and_class_token_at_stage_4():
    torch.manual_seed(0)
    model = timm.create_model('pvt_small').eval()
    x = torch.randn(2, 3, 224, 224)
    seen = []
    hook = model.block4[-1].register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        tokens = model.forward_features(x)
        logits = model.forward_head(tokens)
        maps = model.forward_pyramid(x)
        assert torch.equal(logits, model(x))
    hook.remove()
    assert tokens.shape == (2, 1 + 7 * 7, 512)  # class token + 7×7 stage-4 tokens
    assert logits.shape == (2, 1000)
    assert torch.allclose(model.forward_head(tokens, pre_logits=True), tokens[:, 0])
    assert [tuple(m.shape) for m in maps] == [(2, 64, 56, 56), (2, 128, 28, 28), (2, 320, 14, 14), (2, 512, 7, 7)]
    # the stage-4 map is the last block's patch tokens (class token dropped, not mixed into the grid), and
    # forward_features is the same sequence after the final norm
    assert len(seen) == 3 and seen[1].shape == (2, 50, 512)  # (forward_features, forward_pyramid, forward)
    assert torch.equal(maps[3], seen[1][:, 1:].transpose(1, 2).reshape(2, 512, 7, 7))
    with torch.no_grad():
        assert torch.allclose(tokens, model.norm(seen[0]), atol=1e-5)
    assert model.strides == (4, 8, 16, 32) and model.output_stride == 32


def test_dynamic_input_size_resamples_position_embeddings():
    torch.manual_seed(0)
    model = randomize_(timm.create_model('pvt_nano')).eval()
    x = torch.randn(1, 3, 256, 320)
    with torch.no_grad():
        maps = model.forward_pyramid(x)
        assert [tuple(m.shape[-2:]) for m in maps] == [(64, 80), (32, 40), (16, 20), (8, 10)]
        assert model(x).shape == (1, 1000)
        # the stored grid is used as is at the pretraining size, resampled (bicubic) elsewhere
        assert model._pos_embed(0, (56, 56)) is model.pos_embed1
        pe = model._pos_embed(3, (8, 10))
        assert pe.shape == (1, 1 + 80, 256) and torch.equal(pe[:, :1], model.pos_embed4[:, :1])
        ref = F.interpolate(model.pos_embed4[:, 1:].reshape(1, 7, 7, -1).permute(0, 3, 1, 2), size=(8, 10),
                            mode='bicubic', align_corners=False)
        assert torch.allclose(pe[:, 1:], ref.flatten(2).transpose(1, 2), atol=1e-6)


def test_fused_attention_equals_explicit_attention():
    torch.manual_seed(0)
    model = randomize_(timm.create_model('pvt_nano')).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        fused = model.forward_pyramid(x) + [model(x)]
        for m in model.modules():
            if hasattr(m, 'fused_attn'):
                assert m.fused_attn  # SDPA is the default path
                m.fused_attn = False
        explicit = model.forward_pyramid(x) + [model(x)]
    for a, b in zip(fused, explicit):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


def test_q_kv_hook_layout_reproduces_last_block_attention():
    """What the class-attention probe relies on: the outputs of block4[-1].attn.q / .kv, split as
    (2, num_heads, head_dim), reproduce the attention of the last block."""
    torch.manual_seed(0)
    model = randomize_(timm.create_model('pvt_nano')).eval()
    attn = model.block4[-1].attn
    seen = {}
    hooks = [attn.q.register_forward_hook(lambda m, i, o: seen.__setitem__('q', o)),
             attn.kv.register_forward_hook(lambda m, i, o: seen.__setitem__('kv', o)),
             attn.register_forward_hook(lambda m, i, o: seen.__setitem__('out', o))]
    with torch.no_grad():
        model(torch.randn(2, 3, 224, 224))
    for h in hooks:
        h.remove()
    q, kv = seen['q'], seen['kv']
    B, N, C = q.shape
    assert N == 1 + 49 and kv.shape == (B, N, 2 * C)
    q = q.reshape(B, N, attn.num_heads, -1).transpose(1, 2)
    k, v = kv.reshape(B, N, 2, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    a = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1)
    out = attn.proj((a @ v).transpose(1, 2).reshape(B, N, C))
    assert torch.allclose(out, seen['out'], atol=1e-5)
    cls_row = a[:, :, 0, 1:].mean(1)  # class token → patch tokens, head mean
    assert cls_row.shape == (B, 49) and not torch.allclose(cls_row, torch.full_like(cls_row, 1 / 50), atol=1e-3)


def test_checkpoint_filter_unwraps_and_resamples():
    torch.manual_seed(0)
    src = randomize_(timm.create_model('pvt_nano', img_size=288))  # another pretraining resolution
    sd = {'model': {f'module.{k}': v for k, v in src.state_dict().items()}}
    dst = timm.create_model('pvt_nano')
    out = checkpoint_filter_fn(sd, dst)
    dst.load_state_dict(out, strict=True)
    assert out['pos_embed1'].shape == (1, 56 * 56, 32) and out['pos_embed4'].shape == (1, 1 + 49, 256)
    assert torch.equal(out['pos_embed4'][:, 0], src.pos_embed4[:, 0].detach())  # class slot kept, not resampled
    assert torch.equal(out['block2.0.attn.kv.weight'], src.block2[0].attn.kv.weight.detach())
    # dense form: no class token, no head → class slot, cls_token and head dropped
    dense = timm.create_model('pvt_nano', class_token=False, num_classes=0, global_pool='')
    out = checkpoint_filter_fn(src.state_dict(), dense)
    assert 'cls_token' not in out and not any(k.startswith('head.') for k in out)
    dense.load_state_dict(out, strict=True)
    assert dense.num_prefix_tokens == 0 and dense.pos_embed4.shape == (1, 49, 256)


def test_timm_pretrained_file_overlay(tmp_path):
    """timm's own loading path (pretrained_cfg_overlay=dict(file=...)) goes through checkpoint_filter_fn."""
    torch.manual_seed(0)
    src = randomize_(timm.create_model('pvt_nano'))
    path = tmp_path / 'pvt_nano.pth'
    torch.save({'model': src.state_dict()}, path)
    model = timm.create_model('pvt_nano', pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_features_only():
    model = timm.create_model('pvt_nano', features_only=True)
    feats = model(torch.randn(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == model.feature_info.channels() == [32, 64, 128, 256]
    assert model.feature_info.reduction() == [4, 8, 16, 32]


def test_features_only_stops_after_the_last_stage_taken():
    """features_only with out_indices (0, 1): stages 3-4 are not run; the maps are those of a full pass."""
    model = timm.create_model('pvt_nano', features_only=True, out_indices=(0, 1)).eval()
    randomize_(model)
    pvt, ran = model.model, []
    for name in ('block3', 'block4'):
        getattr(pvt, name)[0].register_forward_hook(lambda *_, name=name: ran.append(name))
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = model(x)
        assert ran == []
        _, full = pvt.forward_intermediates(x, indices=(0, 1))  # final features too: all four stages
    assert ran == ['block3', 'block4']
    assert len(feats) == len(full) == 2
    assert all(torch.equal(f, g) for f, g in zip(feats, full))


def test_resize_grid_pos_embed_is_timms_but_keeps_float64():
    """Forward-time resampling: timm's resample_abs_pos_embed (no antialias) in float32/bfloat16/float16;
    timm computes float64 in float32, ours keeps float64 (the float64 parity test with mmdet's PVT)."""
    from timm.layers import resample_abs_pos_embed
    from pretrain.models.pvt import resize_grid_pos_embed
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        for prefix in (0, 1):
            for mode in ('bilinear', 'bicubic'):
                pos = torch.randn(1, prefix + 7 * 7, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
                ours = resize_grid_pos_embed(pos, (7, 7), (5, 9), prefix, mode)
                timms = resample_abs_pos_embed(pos, [5, 9], old_size=[7, 7], num_prefix_tokens=prefix,
                                               interpolation=mode, antialias=False)
                assert ours.dtype == dtype and ours.shape == (1, prefix + 45, 16)
                assert torch.equal(ours[:, :prefix], pos[:, :prefix])
                if dtype == torch.float64:
                    want = resize_grid_pos_embed(pos.float(), (7, 7), (5, 9), prefix, mode).double()
                    assert not torch.equal(ours, timms) and torch.equal(timms, want)
                    assert torch.allclose(ours, timms, atol=1e-5)
                else:
                    assert torch.equal(ours, timms), (dtype, prefix, mode)


# --------------------------------------------------------------------------- mmdet parity
def _mmdet_pvt(tmp_path, sd, num_layers, **kw):
    pvt_mod = pytest.importorskip('mmdet.models.backbones.pvt')
    from mmengine.config import ConfigDict
    path = tmp_path / 'pvt_weights.pth'
    torch.save(sd, path)  # the flat layout of the official PVT release files
    mm = pvt_mod.PyramidVisionTransformer(
        num_layers=list(num_layers), convert_weights=True, drop_path_rate=0.0,
        init_cfg=ConfigDict(type='Pretrained', checkpoint=str(path)), **kw)
    mm.init_weights()
    # mmdet loads non-strictly: check every one of its tensors came from our file
    converted = pvt_mod.pvt_convert(torch.load(path, map_location='cpu', weights_only=True))
    assert set(converted) == set(mm.state_dict()), set(converted) ^ set(mm.state_dict())
    for k, v in converted.items():
        assert torch.equal(mm.state_dict()[k], v), k
    return mm.eval()


def _dense_pvt(sd, name='pvt_small', **kw):
    """Our PVT in the dense form mmdet's PVT has (no class token): the class slot is dropped on load."""
    model = timm.create_model(name, class_token=False, num_classes=0, global_pool='',
                              pos_embed_interp='bilinear', **kw)
    model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
    return model.eval()


def test_mmdet_pvt_loads_our_weights_and_matches_at_224(tmp_path):
    """Our PVT-S weights (original layout, seeded random init) → mmdet's PyramidVisionTransformer
    (convert_weights=True, init_cfg Pretrained): the same four stage maps (≤ 1e-5).

    mmdet's PVT has no class token, so it is compared with our model in its dense form (class token and its
    position slot dropped by checkpoint_filter_fn). mmdet uses one LayerNorm eps (1e-6) for all norms, where
    the original PVT has PyTorch's default 1e-5 in the patch-embedding and spatial-reduction norms: the
    parity runs with ``embed_norm_eps=1e-6``; the size of that eps effect is checked separately."""
    pytest.importorskip('mmdet.models.backbones.pvt')
    torch.manual_seed(0)
    ours = timm.create_model('pvt_small').eval()
    sd = ours.state_dict()
    mm = _mmdet_pvt(tmp_path, sd, (3, 4, 6, 3))
    dense = _dense_pvt(sd, embed_norm_eps=1e-6)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = mm(x)
        got = dense.forward_pyramid(x)
        cls_maps = ours.forward_pyramid(x)
        orig_eps = _dense_pvt(sd).forward_pyramid(x)
    assert [tuple(r.shape) for r in ref] == [tuple(g.shape) for g in got]
    diffs = [(r - g).abs().max().item() for r, g in zip(ref, got)]
    assert max(diffs) <= 1e-5, diffs
    assert all(r.std() > 0.5 for r in ref)  # a real signal, not a vanishing one
    # stages 1-3 of the classification model are the same maps (the class token enters at stage 4) ...
    assert max((r - g).abs().max().item() for r, g in zip(orig_eps[:3], cls_maps[:3])) == 0
    # ... and the class token does change stage 4 (it takes part in attention)
    assert not torch.allclose(cls_maps[3], orig_eps[3], atol=1e-3)
    # the original eps (1e-5) in the embedding norms moves the maps by ~1e-4 only
    eps_effect = max((r - g).abs().max().item() for r, g in zip(ref, orig_eps))
    assert 1e-6 < eps_effect < 1e-3, eps_effect


def test_mmdet_pvt_same_function_in_float64(tmp_path):
    """Strongly randomised PVT-T weights (non-uniform attention, non-trivial norms and biases), a non-square
    input (position embeddings resampled) in float64: ours and mmdet's PVT compute the same function to
    rounding (float32 differs only by summation order, ~1e-6 relative: SDPA vs explicit attention, Linear vs
    1x1 conv)."""
    pytest.importorskip('mmdet.models.backbones.pvt')
    sd = randomize_(timm.create_model('pvt_tiny'), seed=1).state_dict()
    mm = _mmdet_pvt(tmp_path, sd, (2, 2, 2, 2)).double()
    dense = _dense_pvt(sd, 'pvt_tiny', embed_norm_eps=1e-6).double()
    x = torch.randn(1, 3, 128, 192, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        ref, got = mm(x), dense.forward_pyramid(x)
    assert all(r.std() > 2 for r in ref)
    diffs = [(r - g).abs().max().item() for r, g in zip(ref, got)]
    assert max(diffs) <= 1e-10, diffs


def test_mmdet_layout_round_trip():
    """checkpoint_filter_fn inverts mmdet's pvt_convert (mmdet-trained PVT weights load into our model)."""
    pvt_mod = pytest.importorskip('mmdet.models.backbones.pvt')
    torch.manual_seed(0)
    src = randomize_(timm.create_model('pvt_nano'))
    sd = src.state_dict()
    mm_sd = pvt_mod.pvt_convert(sd)
    dense = timm.create_model('pvt_nano', class_token=False, num_classes=0, global_pool='')
    back = checkpoint_filter_fn(dict(mm_sd), dense)
    want = {k: v for k, v in checkpoint_filter_fn(sd, dense).items() if not k.startswith('norm.')}
    assert set(back) == set(want)
    for k in want:
        assert torch.equal(back[k], want[k]), k

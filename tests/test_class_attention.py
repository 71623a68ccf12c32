"""ClassAttentionProbe: equals row 0 of the explicit attention matrix, fused SDPA kept, no extra attention pass."""
import copy

import pytest
import timm
import torch
import torch.nn.functional as F

from pretrain.models.class_attention import ClassAttentionProbe


def last_attn(model):
    return model.blocks[-1].attn if hasattr(model, 'blocks') else model.block4[-1].attn


def make(name, **kwargs):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=7, **kwargs)
    # sharpen the last block's attention so that the comparison is not between near-uniform rows
    with torch.no_grad():
        for p in last_attn(model).parameters():
            p.normal_(0, 0.15)
    return model.eval()


def explicit_attention(model, x):
    """Row 0 of the full attention matrix of the last block, from the model's own unfused path."""
    ref = copy.deepcopy(model)
    attn = last_attn(ref)
    attn.fused_attn = False
    captured = []
    attn.attn_drop.register_forward_hook(lambda m, args, out: captured.append(args[0]))  # B×heads×N×N softmax
    logits = ref(x)
    full = captured[-1]
    assert torch.allclose(full.sum(-1), torch.ones_like(full.sum(-1)), atol=1e-5)
    return logits, full[:, :, 0].mean(1)


class CountSDPA:
    def __init__(self, monkeypatch):
        self.calls = 0
        sdpa = F.scaled_dot_product_attention

        def counted(*args, **kwargs):
            self.calls += 1
            return sdpa(*args, **kwargs)
        monkeypatch.setattr(F, 'scaled_dot_product_attention', counted)


VITS = [
    ('deit_tiny_patch16_224', 1),
    ('deit_small_patch16_224', 1),
    ('deit_tiny_distilled_patch16_224', 2),
    ('deit_small_distilled_patch16_224', 2),
]


@pytest.mark.parametrize('name, prefix', VITS)
def test_probe_equals_row0_of_explicit_attention(name, prefix, monkeypatch):
    model = make(name, depth=2, img_size=64)
    probe = ClassAttentionProbe(model)
    assert probe.num_prefix_tokens == prefix and probe.patch_size == 16 and probe.grid_size((64, 64)) == (4, 4)
    x = torch.randn(3, 3, 64, 64)
    sdpa = CountSDPA(monkeypatch)
    logits, attn = probe(x)
    assert sdpa.calls == 2  # one fused attention per block: no second attention pass
    assert model.blocks[-1].attn.fused_attn is True
    ref_logits, row0 = explicit_attention(model, x)
    assert attn.shape == (3, 16) and attn.dtype == torch.float32
    assert (attn - row0[:, prefix:]).abs().max() <= 1e-5
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    assert attn.max() > 3 / 17  # far from uniform: the comparison means something
    assert torch.all(attn.sum(1) < 1)  # prefix columns dropped, not renormalised


def test_probe_qk_norm_dynamic_size_and_train_mode():
    model = make('vit_tiny_patch16_224', depth=2, img_size=64, qk_norm=True, dynamic_img_size=True).train()
    model.blocks[-1].attn.q_norm.weight.data.uniform_(0.5, 2)
    probe = ClassAttentionProbe(model)
    x = torch.randn(2, 3, 96, 64)
    logits, attn = probe(x)
    assert attn.shape == (2, 24) and probe.grid_size((96, 64)) == (6, 4)
    assert logits.requires_grad and not attn.requires_grad
    model.eval()
    _, attn = probe(x)
    _, row0 = explicit_attention(model, x)
    assert (attn - row0[:, 1:]).abs().max() <= 1e-5


def test_probe_attention_is_float32_under_autocast():
    """The class row is computed with autocast off: float32 from the (bfloat16) projections, not a bf16 einsum."""
    model = make('deit_tiny_patch16_224', depth=2, img_size=64)
    probe = ClassAttentionProbe(model)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 192, generator=g).bfloat16(), torch.randn(3, 17, 192, generator=g).bfloat16()
    want = probe._class_attention(q, k)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = probe._class_attention(q, k)
    assert want.dtype == got.dtype == torch.float32 and torch.equal(got, want)
    # end to end: exactly the float32 class row of the (bfloat16) projections the autocast forward made
    x = torch.randn(2, 3, 64, 64, generator=g)
    _, ref = probe(x)
    qkv = []
    handle = model.blocks[-1].attn.qkv.register_forward_hook(lambda m, args, out: qkv.append(out))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, attn = probe(x)
    handle.remove()
    out, D = qkv[0], probe.attn_dim
    assert out.dtype == torch.bfloat16 and attn.dtype == torch.float32
    assert torch.equal(attn, probe._class_attention(out[:, 0, :D], out[..., D:2 * D]))
    assert torch.allclose(attn, ref, atol=2e-2)  # and near the float32 forward


def test_probe_distilled_training_returns_model_output():
    model = make('deit_tiny_distilled_patch16_224', depth=1, img_size=32).train()
    model.set_distilled_training(True)
    out, attn = ClassAttentionProbe(model)(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and len(out) == 2 and attn.shape == (2, 4)


def test_probe_off():
    model = make('deit_tiny_patch16_224', depth=1, img_size=32)
    probe = ClassAttentionProbe(model, enabled=False)
    qkv = model.blocks[-1].attn.qkv
    assert len(qkv._forward_hooks) == 0
    x = torch.randn(2, 3, 32, 32)
    logits, attn = probe(x)
    assert attn is None and torch.allclose(logits, model(x))
    probe.enabled = True
    assert len(qkv._forward_hooks) == 1 and probe(x)[1].shape == (2, 4)
    assert probe(x, with_attn=False)[1] is None
    probe.enabled = False
    assert len(qkv._forward_hooks) == 0
    with pytest.raises(ValueError, match='disabled'):
        probe(x, with_attn=True)


def test_probe_errors():
    no_cls = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=1, img_size=32, class_token=False,
                               global_pool='avg')
    with pytest.raises(ValueError, match='class token.*VisionTransformer'):
        ClassAttentionProbe(no_cls)
    with pytest.raises(ValueError, match='ResNet'):
        ClassAttentionProbe(timm.create_model('test_resnet', pretrained=False))
    probe = ClassAttentionProbe(make('deit_tiny_patch16_224', depth=1, img_size=32))
    with pytest.raises(ValueError, match='40x32.*16'):
        probe.grid_size((40, 32))


def test_probe_pvt():
    try:
        import pretrain.models.pvt  # noqa: F401  (registers pvt_* with timm)
    except ImportError as e:
        pytest.skip(f'pretrain.models.pvt is not importable yet: {e}')
    model = make('pvt_nano', img_size=64)
    probe = ClassAttentionProbe(model)
    assert probe.patch_size == 32 and probe.num_prefix_tokens == 1 and probe.grid_size((64, 96)) == (2, 3)
    x = torch.randn(2, 3, 64, 96)
    logits, attn = probe(x)
    ref_logits, row0 = explicit_attention(model, x)
    assert attn.shape == (2, 6) and (attn - row0[:, 1:]).abs().max() <= 1e-5
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    assert last_attn(model).fused_attn is True

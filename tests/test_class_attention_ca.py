"""ClassAttentionProbe on CaiT and XCiT: the last class-attention layer's class→patch attention, exact, no extra pass.

CaiT (``blocks_token_only``) and XCiT (``cls_attn_blocks``) read the class token in class-attention layers (timm
``ClassAttn``: q from the class token only, keys over [cls, patches]). The probe hooks ``attn.q`` / ``attn.k`` of
the last one. Swin has no class token: the probe refuses it and :func:`token_stride` gives its last-stage grid.
"""
import copy

import pytest
import timm
import torch
import torch.nn.functional as F

from pretrain.models.class_attention import ClassAttentionProbe, has_class_token, token_stride

torch.set_num_threads(1)

CA_MODELS = [
    # (timm name, tiny overrides, class-attention layers attribute)
    ('cait_xxs24_224', dict(depth=2, img_size=64), 'blocks_token_only'),
    ('cait_s24_224', dict(depth=1, embed_dim=64, img_size=64), 'blocks_token_only'),
    ('xcit_tiny_24_p16_224', dict(depth=2, img_size=64), 'cls_attn_blocks'),
    ('xcit_small_12_p16_224', dict(depth=1, embed_dim=64, img_size=64), 'cls_attn_blocks'),
]


def make(name, layers, **kwargs):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=7, **kwargs)
    with torch.no_grad():  # sharpen the last class-attention layer so the rows are far from uniform
        for p in getattr(model, layers)[-1].attn.parameters():
            p.normal_(0, 0.3)
    return model.eval()


def explicit_class_attention(model, layers, x):
    """softmax(q·kᵀ·scale) of the last class-attention layer, written out here from its own input and weights."""
    attn = getattr(model, layers)[-1].attn
    inputs = []
    handle = attn.register_forward_hook(lambda m, args, out: inputs.append(args[0]))
    with torch.no_grad():
        logits = model(x)
    handle.remove()
    u = inputs[-1]  # B×N×C: [cls, patches], normalised (CaiT: cat(cls, x); XCiT: all tokens)
    B, N, C = u.shape
    h = attn.num_heads
    q = attn.q(u[:, 0]).reshape(B, h, 1, C // h)
    k = attn.k(u).reshape(B, N, h, C // h).transpose(1, 2)
    a = ((q @ k.transpose(-2, -1)) * (C // h) ** -0.5).softmax(-1)  # B×h×1×N
    return logits, a[:, :, 0].mean(1)


def unfused_class_attention(model, layers, x):
    """Row of the model's own unfused class-attention path (fused_attn off, the softmax caught at attn_drop)."""
    ref = copy.deepcopy(model)
    attn = getattr(ref, layers)[-1].attn
    attn.fused_attn = False
    caught = []
    attn.attn_drop.register_forward_hook(lambda m, args, out: caught.append(args[0]))
    with torch.no_grad():
        ref(x)
    return caught[-1][:, :, 0].mean(1)


class CountSDPA:
    def __init__(self, monkeypatch):
        self.calls = 0
        sdpa = F.scaled_dot_product_attention

        def counted(*args, **kwargs):
            self.calls += 1
            return sdpa(*args, **kwargs)
        monkeypatch.setattr(F, 'scaled_dot_product_attention', counted)


@pytest.mark.parametrize('name, kwargs, layers', CA_MODELS, ids=[m[0] for m in CA_MODELS])
def test_probe_is_the_last_class_attention_row(name, kwargs, layers, monkeypatch):
    model = make(name, layers, **kwargs)
    probe = ClassAttentionProbe(model)
    assert probe.attn_module is getattr(model, layers)[-1].attn
    assert probe.patch_size == 16 and probe.num_prefix_tokens == 1 and probe.grid_size((64, 96)) == (4, 6)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        probe.enabled = False
        bare = model(x)
        probe.enabled = True
    sdpa = CountSDPA(monkeypatch)
    with torch.no_grad():
        logits, attn = probe(x)
    calls_with_probe = sdpa.calls
    sdpa.calls = 0
    with torch.no_grad():
        model(x)
    assert calls_with_probe == sdpa.calls >= 1  # no extra attention pass; the layer stays on the fused path
    assert getattr(model, layers)[-1].attn.fused_attn is True
    assert torch.equal(logits, bare)  # the hooks leave the logits untouched
    ref_logits, row = explicit_class_attention(model, layers, x)
    assert torch.equal(logits, ref_logits)
    assert attn.shape == (3, 16) and attn.dtype == torch.float32 and not attn.requires_grad
    assert (attn - row[:, 1:]).abs().max() <= 1e-5  # the class→patch columns, class column dropped
    assert (attn - unfused_class_attention(model, layers, x)[:, 1:]).abs().max() <= 1e-5
    assert torch.all(attn.max(1).values > 1.5 * attn.mean(1))  # far from uniform: the comparison means something
    assert torch.all(attn.sum(1) < 1)  # the class column is dropped, not renormalised


@pytest.mark.parametrize('name, kwargs, layers', CA_MODELS[::2], ids=[m[0] for m in CA_MODELS[::2]])
def test_probe_reads_the_last_layer_not_the_first(name, kwargs, layers):
    """Changing the first class-attention layer's query changes nothing in the probe's formula but the input of the
    last layer; changing the last one's query must change the probe's row (it is the last layer that is read)."""
    model = make(name, layers, **kwargs)
    probe = ClassAttentionProbe(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, before = probe(x)
        getattr(model, layers)[-1].attn.q.weight.mul_(3)
        _, after = probe(x)
        _, row = explicit_class_attention(model, layers, x)
    assert not torch.allclose(before, after, atol=1e-4)
    assert (after - row[:, 1:]).abs().max() <= 1e-5


def test_probe_cait_train_mode_keeps_gradients():
    model = make('cait_xxs24_224', 'blocks_token_only', depth=1, img_size=32).train()
    logits, attn = ClassAttentionProbe(model)(torch.randn(2, 3, 32, 32))
    assert logits.requires_grad and not attn.requires_grad and attn.shape == (2, 4)


def test_probe_xcit_other_image_size():
    """XCiT's Fourier position encoding follows the input: the probe's grid follows it too."""
    model = make('xcit_tiny_24_p16_224', 'cls_attn_blocks', depth=1, img_size=64)
    probe = ClassAttentionProbe(model)
    x = torch.randn(2, 3, 96, 64)
    _, attn = probe(x)
    _, row = explicit_class_attention(model, 'cls_attn_blocks', x)
    assert attn.shape == (2, 24) and (attn - row[:, 1:]).abs().max() <= 1e-5


def test_pruned_class_attention_is_refused():
    model = timm.create_model('cait_xxs24_224', pretrained=False, depth=1, img_size=32, depth_token_only=0)
    with pytest.raises(ValueError, match='no class-attention layer'):
        ClassAttentionProbe(model)


def test_swin_has_no_class_token_and_a_32px_grid():
    swin = timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, img_size=64, window_size=2,
                             embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), num_classes=5)
    assert not has_class_token(swin)
    with pytest.raises(ValueError, match='class token.*SwinTransformer'):
        ClassAttentionProbe(swin)
    assert token_stride(swin) == 32  # 4-px patches merged three times: the 7×7 grid at 224
    cait = timm.create_model('cait_xxs24_224', pretrained=False, depth=1, img_size=32)
    assert has_class_token(cait) and token_stride(cait) == 16

"""MixClassifier: mixing → forward (+ class attention) → targets → loss; registry; export helpers."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.registry import MODELS as ROOT_MODELS
from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy

from pretrain import mix
from pretrain.classifier import ClsDataPreprocessor, MixClassifier
from pretrain.export import backbone_state_dict, classifier_names
from pretrain.registry import MODELS

VIT = dict(arch='vit_tiny_patch16_224', img_size=32, num_classes=10,
           model_kwargs=dict(patch_size=8, embed_dim=48, depth=2, num_heads=3))
PVT = dict(arch='pvt_nano', img_size=64, num_classes=10)


def make(spec=VIT, drop_path_rate=0.0, **kw):
    torch.manual_seed(0)
    return MixClassifier(**spec, drop_path_rate=drop_path_rate, **kw)


def batch(spec=VIT, b=4):
    g = torch.Generator().manual_seed(1)
    s = spec['img_size']
    return torch.randn(b, 3, s, s, generator=g), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7][:b])


def test_registered_names_and_scope():
    import pretrain.data  # noqa: F401
    import pretrain.export  # noqa: F401
    import pretrain.metrics  # noqa: F401
    from pretrain import registry as r
    assert {'MixClassifier', 'ClsDataPreprocessor', 'SoftTargetCrossEntropy', 'BinaryCrossEntropy', 'NoMix',
            'Mixup', 'CutMix', 'TransMix', 'MaskMix', 'TokenMix', 'MixSwitch', 'CAMTeacher', 'deit_mix',
            'transmix_recipe', 'mixpro_recipe', 'tokenmix_recipe'} <= set(r.MODELS.module_dict)
    assert set(r.DATASETS.module_dict) >= {'ImageNetFolder'}
    assert set(r.DATA_SAMPLERS.module_dict) >= {'RepeatAugSampler'}
    assert set(r.TRANSFORMS.module_dict) >= {'TimmTransform'}
    assert set(r.METRICS.module_dict) >= {'Accuracy'}
    assert set(r.HOOKS.module_dict) >= {'BackboneExportHook'}
    assert MODELS.scope == 'pretrain' and MODELS.parent is ROOT_MODELS
    # a config in the 'pretrain' scope reaches our classes through mmengine's root registry
    with DefaultScope.overwrite_default_scope('pretrain'):
        m = ROOT_MODELS.build(dict(type='MixClassifier', **VIT, mixer=dict(type='transmix_recipe')))
    assert isinstance(m, MixClassifier) and m.method == 'transmix'
    assert isinstance(m.mixer, mix.MixSwitch) and m.mixer.patch_size == 8 and m.mixer.num_classes == 10
    assert all(child.patch_size == 8 for child in m.mixer.mixers)


def test_patch_size_reaches_nested_switch_members():
    m = make(mixer=dict(type='mixpro_recipe'))  # MixSwitch([MaskMix, MixSwitch([Mixup, CutMix])])
    leaves = [m.mixer.mixers[0], *m.mixer.mixers[1].mixers]
    assert [type(x).__name__ for x in leaves] == ['MaskMix', 'Mixup', 'CutMix']
    assert m.mixer.mixers[1].patch_size == 8 and all(x.patch_size == 8 for x in leaves)


def test_state_dict_holds_the_timm_model_once():
    m = make()
    keys = list(m.state_dict())
    assert keys and all(k.startswith('model.') for k in keys)
    assert set(k[len('model.'):] for k in keys) == set(m.model.state_dict())


@pytest.mark.parametrize('spec', [VIT, PVT], ids=['vit', 'pvt'])
@pytest.mark.parametrize('mixer,loss', [
    (dict(type='deit_mix'), None),
    (dict(type='transmix_recipe'), None),
    (dict(type='mixpro_recipe', maskmix_prob=1.0), None),
    (dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=2, source='attention'),
     dict(type='BinaryCrossEntropy', smoothing=0.0)),
], ids=['baseline', 'transmix', 'mixpro', 'tokenmix'])
def test_training_step_every_method(spec, mixer, loss):
    m = make(spec, drop_path_rate=0.1, mixer=mixer, loss=loss)
    m.train()
    x, y = batch(spec)
    out = m(x, y, mode='loss')
    assert set(out) == {'loss'} and out['loss'].ndim == 0 and torch.isfinite(out['loss'])
    out['loss'].backward()
    # every parameter takes part (DDP without find_unused_parameters needs that)
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    assert m.model.training


def _patch_size_set(m):
    return m.mixer.patch_size == m.patch_size


def test_transmix_loss_uses_class_attention_of_the_mixed_batch():
    m = make(mixer=dict(type='TransMix', alpha=50.0))  # λ ≈ 0.5: a box of about half the image
    with torch.no_grad():  # a random init attends almost uniformly: sharpen the last block's attention
        m.model.blocks[-1].attn.qkv.weight.mul_(6)
    m.train()
    x, y = batch()
    torch.manual_seed(5)
    loss = m(x, y, mode='loss')['loss']
    # the same step by hand
    torch.manual_seed(5)
    mixed = m.mixer(x, y)
    logits, attn = m.probe(mixed.images)
    targets = mixed.targets(attn=attn)
    want = SoftTargetCrossEntropy()(logits, targets)
    assert torch.allclose(loss, want, atol=1e-6)
    # the attention moved the label away from the area label (uniform attention = area share of tokens)
    assert 0 < mixed.token_mask.mean() < 1
    assert (targets - mixed.targets(attn=torch.ones_like(attn))).abs().max() > 1e-3
    assert _patch_size_set(m) and attn.shape == (4, 16)


def test_mixpro_pal_gets_attention_and_logits_with_gradient():
    m = make(PVT, mixer=dict(type='MaskMix', pal=True))
    m.train()
    x, y = batch(PVT)
    torch.manual_seed(3)
    loss = m(x, y, mode='loss')['loss']
    torch.manual_seed(3)
    mixed = m.mixer(x, y)
    logits, attn = m.probe(mixed.images)
    assert attn.shape == (4, 4)  # PVT: 2×2 stage-4 grid at 64²
    want = SoftTargetCrossEntropy()(logits, mixed.targets(attn=attn, logits=logits))
    assert torch.allclose(loss, want, atol=1e-6)


def test_tokenmix_self_source_is_a_no_grad_eval_forward_of_the_clean_images():
    m = make(drop_path_rate=0.2, mixer=dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=2, source='attention'),
             loss=dict(type='BinaryCrossEntropy', smoothing=0.0))
    assert isinstance(m.loss_fn, BinaryCrossEntropy)
    m.train()
    calls = []
    h = m.model.register_forward_pre_hook(lambda mod, args: calls.append(
        (mod.training, torch.is_grad_enabled(), args[0].clone())))
    x, y = batch()
    torch.manual_seed(2)
    loss = m(x, y, mode='loss')['loss']
    h.remove()
    assert [(c[0], c[1]) for c in calls] == [(False, False), (True, True)]
    assert torch.equal(calls[0][2], x) and not torch.equal(calls[1][2], x)
    assert m.model.training
    # targets from the clean attention in eval mode
    torch.manual_seed(2)
    mixed = m.mixer(x, y)
    m.model.eval()
    with torch.no_grad():
        _, clean = m.probe(x)
    m.model.train()
    w_self, w_partner = mixed.label_weights(attn=clean)
    assert not torch.allclose(w_self + w_partner, torch.ones(4))  # activation mass, not area shares
    assert torch.isfinite(loss)


def test_no_attention_work_for_methods_that_do_not_need_it(monkeypatch):
    m = make(mixer=dict(type='deit_mix'))
    m.train()
    calls = []
    orig = m.probe._class_attention
    monkeypatch.setattr(m.probe, '_class_attention', lambda *a: calls.append(1) or orig(*a))
    m(*batch(), mode='loss')
    assert calls == []
    m2 = make(mixer=dict(type='TransMix'))
    monkeypatch.setattr(m2.probe, '_class_attention', lambda *a: calls.append(1) or orig(*a))
    m2.train()
    m2(*batch(), mode='loss')
    assert len(calls) == 1  # TransMix: one class-attention row per step, from the training forward


def test_predict_topk_and_tensor_mode():
    m = make()
    m.eval()
    x, y = batch()
    out = m(x, y, mode='predict')
    logits = m(x, mode='tensor')
    assert len(out) == 4 and all(len(o['topk']) == 5 for o in out)
    assert [o['topk'][0] for o in out] == logits.argmax(1).tolist()
    assert [o['gt_label'] for o in out] == y.tolist()


def test_errors_are_explicit():
    with pytest.raises(ValueError, match='num_classes'):
        make(mixer=dict(type='CutMix', num_classes=1000))
    with pytest.raises(ValueError, match='divisible'):
        MixClassifier(**dict(VIT, img_size=36))
    pre = ClsDataPreprocessor(num_classes=10)
    with pytest.raises(ValueError, match='outside'):
        pre(dict(inputs=torch.zeros(2, 3, 8, 8), data_samples=torch.tensor([3, 10])))
    out = pre(dict(inputs=[torch.zeros(3, 8, 8)] * 2, data_samples=[1, 2]))  # pseudo_collate form
    assert out['inputs'].shape == (2, 3, 8, 8) and out['data_samples'].tolist() == [1, 2]
    with pytest.raises(ValueError, match='no class token.*TransMix'):  # without one, attention labels are refused
        MixClassifier('vit_tiny_patch16_224', img_size=32, num_classes=10, mixer=dict(type='transmix_recipe'),
                      model_kwargs=dict(patch_size=8, embed_dim=48, depth=1, num_heads=3, class_token=False,
                                        global_pool='avg'))


def test_backbone_state_dict_drops_only_the_heads():
    import timm
    m = timm.create_model('deit_tiny_distilled_patch16_224', pretrained=False, num_classes=10, img_size=32)
    assert classifier_names(m) == ('head', 'head_dist')
    sd = backbone_state_dict(m)
    assert set(m.state_dict()) - set(sd) == {'head.weight', 'head.bias', 'head_dist.weight', 'head_dist.bias'}
    p = make(PVT).model
    assert set(p.state_dict()) - set(backbone_state_dict(p)) == {'head.weight', 'head.bias'}


@pytest.mark.parametrize('mixer', [dict(type='TransMix'), dict(type='MaskMix', pal=True)], ids=['transmix', 'mixpro'])
def test_attention_labels_under_autocast(mixer):
    """Mixed precision (AmpOptimWrapper on GPU; bfloat16 autocast here): float32 targets, finite loss."""
    m = make(PVT, mixer=mixer)
    m.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = m(*batch(PVT), mode='loss')['loss']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()

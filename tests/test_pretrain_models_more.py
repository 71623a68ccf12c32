"""MixClassifier on CaiT, XCiT (class-attention layers) and Swin (no class token): training steps, refusals, export."""
from pathlib import Path

import pytest
import timm
import torch
from mmengine.config import Config

from mixcore.weights.backbone_file import load_backbone_file
from pretrain import mix
from pretrain.classifier import MixClassifier
from pretrain.export import backbone_state_dict, save_classifier_backbone

torch.set_num_threads(1)

CAIT = dict(arch='cait_xxs24_224', img_size=32, num_classes=10,
            model_kwargs=dict(embed_dim=48, depth=1, num_heads=3, init_values=1e-5))
XCIT = dict(arch='xcit_tiny_24_p16_224', img_size=32, num_classes=10,
            model_kwargs=dict(embed_dim=48, depth=1, num_heads=3, eta=1e-5))
SWIN = dict(arch='swin_tiny_patch4_window7_224', img_size=64, num_classes=10,
            model_kwargs=dict(window_size=2, embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)))
SWIN224 = dict(SWIN, img_size=224, model_kwargs=dict(SWIN['model_kwargs'], window_size=7))
TOKENMIX_BCE = dict(type='BinaryCrossEntropy', smoothing=0.0)


def make(spec, drop_path_rate=0.0, **kw):
    torch.manual_seed(0)
    return MixClassifier(**spec, drop_path_rate=drop_path_rate, **kw)


def batch(spec, b=4):
    g = torch.Generator().manual_seed(1)
    s = spec['img_size']
    return torch.randn(b, 3, s, s, generator=g), torch.arange(b)


def step(m, spec):
    m.train()
    out = m(*batch(spec), mode='loss')
    assert set(out) == {'loss'} and out['loss'].ndim == 0 and torch.isfinite(out['loss'])
    out['loss'].backward()
    # every parameter takes part (DDP without find_unused_parameters needs that)
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    return out['loss']


@pytest.mark.parametrize('spec', [CAIT, XCIT], ids=['cait', 'xcit'])
@pytest.mark.parametrize('mixer,loss', [
    (dict(type='deit_mix'), None),
    (dict(type='transmix_recipe', switch_prob=1.0), None),
    (dict(type='mixpro_recipe', maskmix_prob=1.0), None),
    (dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=2, source='attention'), TOKENMIX_BCE),  # own attention
], ids=['baseline', 'transmix', 'mixpro', 'tokenmix'])
def test_class_attention_models_train_with_every_method(spec, mixer, loss):
    m = make(spec, drop_path_rate=0.1, mixer=mixer, loss=loss)
    layers = m.model.blocks_token_only if hasattr(m.model, 'blocks_token_only') else m.model.cls_attn_blocks
    assert m.probe is not None and m.probe.attn_module is layers[-1].attn  # the last class-attention layer
    assert m.patch_size == 16 and m.mixer.patch_size == 16
    step(m, spec)


def test_transmix_on_cait_labels_by_the_class_attention_layer(monkeypatch):
    """The TransMix label of a CaiT batch is built from the probe's attention of the mixed images."""
    m = make(CAIT, mixer=dict(type='TransMix'))
    seen = []
    real = m.probe.__class__.__call__

    def spy(self, images, with_attn=None):
        out = real(self, images, with_attn)
        seen.append(out[1])
        return out
    monkeypatch.setattr(m.probe.__class__, '__call__', spy)
    step(m, CAIT)
    assert len(seen) == 1 and seen[0].shape == (4, 4)


@pytest.mark.parametrize('mixer,loss', [
    (dict(type='deit_mix'), None),
    (dict(type='mixpro_recipe', maskmix_prob=1.0, pal=False), None),  # MaskMix with area labels (MixPro's Swin)
    (dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=2, source='area'), TOKENMIX_BCE),
    (dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=2, source='teacher',
          teacher=dict(type='CAMTeacher', model_name='test_resnet', num_classes=10)), TOKENMIX_BCE),
], ids=['baseline', 'maskmix-area', 'tokenmix-area', 'tokenmix-teacher'])
def test_swin_trains_with_the_methods_that_need_no_class_token(mixer, loss):
    m = make(SWIN, drop_path_rate=0.1, mixer=mixer, loss=loss)
    assert m.probe is None and m.patch_size == 32 and m.mixer.patch_size == 32  # last-stage grid
    step(m, SWIN)


@pytest.mark.parametrize('mixer,match', [
    (dict(type='transmix_recipe'), 'no class token.*TransMix weighs the CutMix box'),
    (dict(type='TransMix'), 'no class token.*TransMix'),
    (dict(type='mixpro_recipe'), "no class token.*Progressive Attention Labeling.*pal=False"),
    (dict(type='tokenmix_recipe', source='attention'), "no class token.*source='attention'"),
], ids=['transmix', 'transmix-alone', 'mixpro-pal', 'tokenmix-own-attention'])
def test_swin_refuses_methods_that_need_class_attention(mixer, match):
    with pytest.raises(ValueError, match=match):
        make(SWIN, mixer=mixer)


def test_swin_token_grid_at_224_and_tokenmix_mask_on_it():
    """At 224, Swin's label / mask grid is its last stage's 7×7 (32 px); TokenMix's blocks are whole 32-px tokens."""
    m = make(SWIN224, mixer=dict(type='TokenMix', mask_ratio=0.5, source='area'), loss=TOKENMIX_BCE)
    tm = m.mixer
    assert isinstance(tm, mix.TokenMix) and tm.patch_size == 32 and tm.min_block_tokens == 14
    torch.manual_seed(0)
    x, y = batch(SWIN224, b=2)
    mixed = tm(x, y)
    assert mixed.token_mask.shape == (2, 7, 7)
    assert int(mixed.token_mask[0].sum()) == tm.num_masked((7, 7))
    # the pixels follow the token mask, token by token
    pasted = (mixed.images != x).any(1).float()  # B×224×224, 1 where the partner's pixel differs
    want = mix.upsample_mask(mixed.token_mask, 32)
    assert torch.equal(pasted, want * (x[mixed.partner] != x).any(1).float())
    step(m, SWIN224)


@pytest.mark.parametrize('spec,heads', [(CAIT, {'head'}), (XCIT, {'head'}), (SWIN, {'head.fc'})],
                         ids=['cait', 'xcit', 'swin'])
def test_backbone_file_carries_the_arch(tmp_path, spec, heads):
    m = make(spec, mixer=dict(type='deit_mix'))
    path = save_classifier_backbone(tmp_path / 'backbone.safetensors', m, epochs=1)
    bf = load_backbone_file(path)
    assert bf.meta['arch'] == spec['arch'] and bf.meta['patch_size'] == m.patch_size
    assert bf.meta['img_size'] == [spec['img_size']] * 2 and bf.meta['model_kwargs'] == {
        k: list(v) if isinstance(v, tuple) else v for k, v in spec['model_kwargs'].items()}
    dropped = set(m.model.state_dict()) - set(bf.state_dict)
    assert {k.rpartition('.')[0] for k in dropped} == heads and set(bf.state_dict) == set(backbone_state_dict(m.model))
    # what stage 2 / the figures do: rebuild the arch from the metadata and load strictly
    rebuilt = timm.create_model(bf.meta['arch'], pretrained=False, num_classes=0, img_size=bf.meta['img_size'],
                                **bf.meta['model_kwargs'])
    rebuilt.load_state_dict(bf.state_dict, strict=True)
    x = batch(spec, b=2)[0]
    m.eval()
    assert torch.allclose(rebuilt.eval()(x), m.model.forward_head(m.model.forward_features(x), pre_logits=True),
                          atol=1e-5)


def test_swin_mixpro_config_maskmix_cells_of_56_px():
    """The swin-t mixpro config's MaskMix: 4×4 cells of 56 px on 224 (MixPro's Swin MASK_PATCH_SIZE), area labels,
    on a tiny Swin whose token grid is 7×7 of 32 px."""
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[1] /
                              'configs/pretrain/swin-t_mixpro_8xb128-300e_in1k.py'))
    mixer = dict(cfg.model.mixer.to_dict(), maskmix_prob=1.0)
    m = make(SWIN224, mixer=mixer)
    mm = m.mixer.mixers[0]
    assert isinstance(mm, mix.MaskMix) and mm.mask_patch == 56 and not mm.pal and mm.patch_size == 32
    torch.manual_seed(0)
    x, y = batch(SWIN224, b=3)
    try:
        mixed = mm(x, y)
    except ValueError as e:  # MaskMix of this branch: cells must be whole tokens (56 px is not 32-px tokens)
        if 'whole number of tokens' in str(e):
            pytest.skip(f'needs MaskMix cells on the pixel grid (docs/paper_facts.md#mixpro): {e}')
        raise
    assert mixed.token_mask.shape == (3, 7, 7) and mixed.needs == frozenset()
    # every 56-px cell comes whole from one image; the pasted share is the label
    from_partner = (mixed.images == x[mixed.partner]).all(1) & (x[mixed.partner] != x).any(1)
    cells = from_partner.view(3, 4, 56, 4, 56).float().mean((2, 4))
    assert torch.all((cells == 0) | (cells == 1))
    assert torch.allclose(cells.flatten(1).mean(1), mixed.lam_area)
    targets = mixed.targets()
    assert torch.allclose(targets.sum(1), torch.ones(3))
    step(m, SWIN224)

"""Stage-1 configs of CaiT, XCiT and Swin: each model's own ImageNet recipe, resolved and built.

Recipe values (sources in the config comments): CaiT — facebookresearch/deit (README_cait.md, main.py defaults) and
the CaiT paper; XCiT — facebookresearch/xcit (README, main.py defaults) and the XCiT paper's Table B.1;
Swin — microsoft/Swin-Transformer (config.py, configs/swin/*.yaml, main.py); MixPro's Swin configs — fistyee/MixPro.
"""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import pretrain.classifier  # noqa: F401  (registers)
from pretrain import mix
from pretrain.registry import MODELS

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

# model key -> (timm arch, family, drop path, LayerScale kwargs)
MODELS_ = {
    'cait-xxs24': ('cait_xxs24_224', 'cait', 0.05, dict(init_values=1e-5)),
    'cait-xxs36': ('cait_xxs36_224', 'cait', 0.1, dict(init_values=1e-5)),
    'cait-s24': ('cait_s24_224', 'cait', 0.1, dict(init_values=1e-5)),
    'xcit-t24': ('xcit_tiny_24_p16_224', 'xcit', 0.05, dict(eta=1e-5)),
    'xcit-s12': ('xcit_small_12_p16_224', 'xcit', 0.05, dict(eta=1.0)),
    'xcit-m24': ('xcit_medium_24_p16_224', 'xcit', 0.15, dict(eta=1e-5)),
    'xcit-l24': ('xcit_large_24_p16_224', 'xcit', 0.25, dict(eta=1e-5)),
    'swin-t': ('swin_tiny_patch4_window7_224', 'swin', 0.2, {}),
    'swin-s': ('swin_small_patch4_window7_224', 'swin', 0.3, {}),
}
METHODS = {'cait': ('baseline', 'transmix', 'mixpro', 'tokenmix'),
           'xcit': ('baseline', 'transmix', 'mixpro', 'tokenmix'),
           'swin': ('baseline', 'mixpro', 'mixpro-official', 'tokenmix')}
RECIPE = {
    # total batch 8 × 128; lr = 5e-4 × 1024 / 512; warmup from 1e-6 to lr, cosine to 1e-5
    'cait': dict(epochs=400, warmup=5, lr=1e-3, warmup_lr=1e-6, min_lr=1e-5, wd=0.05, clip=None, repeats=3,
                 crop_pct=1.0, token=16),
    'xcit': dict(epochs=400, warmup=5, lr=1e-3, warmup_lr=1e-6, min_lr=1e-5, wd=0.05, clip=None, repeats=3,
                 crop_pct=1.0, token=16),
    'swin': dict(epochs=300, warmup=20, lr=1e-3, warmup_lr=1e-6, min_lr=1e-5, wd=0.05, clip=5.0, repeats=None,
                 crop_pct=0.875, token=32),
}
CONFIGS = [ROOT / f'configs/pretrain/{k}_{m}_8xb128-{RECIPE[v[1]]["epochs"]}e_in1k.py'
           for k, v in MODELS_.items() for m in METHODS[v[1]]]


def load(path):
    return Config.fromfile(str(path))


def build(cfg_model, **override):
    with DefaultScope.overwrite_default_scope('pretrain'):
        return MODELS.build(dict(cfg_model, **override))


def local_teacher(cfg_model):
    """The Swin TokenMix configs name a local teacher file; the test builds the teacher without weights."""
    mixer = cfg_model.mixer.to_dict()
    if 'teacher' in mixer:
        assert mixer['teacher']['checkpoint'].startswith('checkpoints/')
        mixer['teacher'] = dict(mixer['teacher'], checkpoint=None)
    return mixer


def test_the_new_config_grid_is_complete():
    present = {p.name for p in (ROOT / 'configs/pretrain').glob('*.py') if p.name.split('_')[0] in MODELS_}
    assert present == {p.name for p in CONFIGS}
    for family in ('cait', 'xcit', 'swin'):  # at least two pretraining configs per family
        assert sum(p.name.startswith(family) for p in CONFIGS) >= 2


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_recipe_values(path):
    cfg = load(path)
    key, method = path.stem.split('_')[:2]
    arch, family, drop_path, ls = MODELS_[key]
    r = RECIPE[family]
    # model
    assert cfg.model.type == 'MixClassifier' and cfg.model.arch == arch and cfg.model.img_size == 224
    assert cfg.model.num_classes == 1000 and cfg.model.drop_path_rate == drop_path
    assert dict(cfg.model.get('model_kwargs') or {}) == ls
    # optimiser and schedule
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and math.isclose(opt.lr, r['lr']) and opt.weight_decay == r['wd']
    assert cfg.train_dataloader.batch_size == 128 and '8xb128' in path.stem
    assert cfg.auto_scale_lr.base_batch_size == 1024 and cfg.optim_wrapper.type == 'OptimWrapper'
    clip = cfg.optim_wrapper.get('clip_grad')
    want_clip = None if method == 'mixpro-official' else r['clip']  # MixPro clips after the step: no effect
    assert (clip.max_norm if clip else None) == want_clip
    if method == 'mixpro-official':  # MixPro's timm cosine from step 0 (tests/test_official_recipes_schedule.py)
        sched, = cfg.param_scheduler
        assert sched.type == 'TimmCosineLR' and (sched.t_initial, sched.warmup_t) == (r['epochs'], r['warmup'])
        assert (sched.warmup_lr_init, sched.lr_min) == (r['warmup_lr'], r['min_lr']) and sched.convert_to_iter_based
    else:
        warm, cos = cfg.param_scheduler
        assert warm.type == 'LinearLR' and (warm.begin, warm.end) == (0, r['warmup']) and warm.convert_to_iter_based
        assert math.isclose(warm.start_factor * opt.lr, r['warmup_lr'])
        assert cos.type == 'CosineAnnealingLR' and (cos.begin, cos.end) == (r['warmup'], r['epochs'])
        assert cos.T_max == cos.end - cos.begin and cos.eta_min == r['min_lr'] and cos.convert_to_iter_based
    assert cfg.train_cfg.max_epochs == r['epochs'] and f'-{r["epochs"]}e_' in path.name
    # data
    (train_t,) = cfg.train_dataloader.dataset.pipeline
    assert train_t.auto_augment == 'rand-m9-mstd0.5-inc1' and train_t.re_prob == 0.25 and train_t.input_size == 224
    assert train_t.interpolation == 'bicubic' and train_t.color_jitter == 0.4
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        (test_t,) = loader.dataset.pipeline
        assert test_t.crop_pct == r['crop_pct'] and test_t.input_size == 224 and not test_t.is_training
    sampler = cfg.train_dataloader.sampler
    if r['repeats']:
        assert sampler.type == 'RepeatAugSampler' and sampler.num_repeats == r['repeats']
    else:
        assert sampler.type == 'DefaultSampler' and sampler.shuffle and 'num_repeats' not in sampler
    assert [h.type for h in cfg.custom_hooks] == ['BackboneExportHook']  # EMA off (default_runtime.py)
    # the classifier builds (on the meta device: no memory, no init cost) with the method's mixer
    with torch.device('meta'):
        model = build(cfg.model, mixer=local_teacher(cfg.model))
    assert model.patch_size == r['token'] and model.mixer.patch_size == r['token']
    assert (model.probe is None) == (family == 'swin')
    check_mixer(model.mixer, method, cfg)
    check_drop_path(model.model, family, drop_path)


def check_drop_path(net, family, rate):
    probs = [m.drop_prob for m in net.modules() if type(m).__name__ == 'DropPath']
    assert probs, 'no stochastic depth in the model'
    if family == 'swin':  # linear over the blocks, up to the rate (timm and the official Swin)
        assert math.isclose(max(probs), rate, rel_tol=1e-6) and min(probs) < rate
    else:  # the same rate in every self-attention block, none in the class-attention layers (official CaiT / XCiT)
        assert set(probs) == {rate} and len(probs) == len(net.blocks) * (3 if family == 'xcit' else 1)


def check_mixer(m, method, cfg):
    assert isinstance(m, mix.MixSwitch) and m.num_classes == 1000
    assert m.recipe == method.split('-')[0]

    def members(s):
        return [(type(x).__name__, p) for x, p in zip(s.mixers, s.probs)]

    deit = [('Mixup', 0.5), ('CutMix', 0.5)]
    if method == 'baseline':
        assert members(m) == deit
    elif method == 'transmix':
        assert members(m) == [('Mixup', 0.5), ('TransMix', 0.5)] and m.mixers[1].label == 'mean'
    elif method.startswith('mixpro'):
        assert members(m) == [('MaskMix', 0.5), ('MixSwitch', 0.5)] and members(m.mixers[1]) == deit
        mm = m.mixers[0]
        assert mm.alpha == 1.0 and mm.partner == 'randperm'
        if cfg.model.arch.startswith('swin'):  # MixPro's Swin configs: 56-px cells, area labels
            assert mm.mask_patch == 56 and mm.pal is False
        else:
            assert mm.pal is True
    elif method == 'tokenmix':
        assert members(m) == [('Mixup', 0.5), ('TokenMix', 0.5)]
        tm = m.mixers[1]
        assert tm.mask_ratio == 0.5 and tm.min_block_tokens == 14 and tm.mask_type == 'block'
        assert tm.source == 'label_maps'  # every TokenMix config labels from teacher label maps (the paper's source)
        assert cfg.train_dataloader.dataset.type == 'ImageNetFolderWithLabelMaps'
        assert cfg.model.loss.type == 'BinaryCrossEntropy'
    if method != 'tokenmix':
        assert cfg.model.loss.type == 'SoftTargetCrossEntropy'
    for x in [*m.mixers, *getattr(m.mixers[-1], 'mixers', [])]:
        assert x.label_smoothing == 0.1
        if isinstance(x, mix.Mixup):
            assert x.alpha == 0.8
        if isinstance(x, mix.CutMix):
            assert x.alpha == 1.0


@pytest.mark.parametrize('model_key', list(MODELS_))
def test_weight_decay_follows_timm_rules(model_key):
    """No decay where timm's optimizer factory (used by the DeiT/CaiT, XCiT and Swin scripts) has none: 1-D
    parameters and the model's no_weight_decay() names (CaiT: pos_embed, cls_token; XCiT: cls_token — its pos_embed
    is a module, whose conv weight the official code decays; Swin: the relative position bias tables)."""
    from timm.optim import param_groups_weight_decay
    arch, family, _, _ = MODELS_[model_key]
    method = 'baseline'
    cfg = load(ROOT / f'configs/pretrain/{model_key}_{method}_8xb128-{RECIPE[family]["epochs"]}e_in1k.py')
    with torch.device('meta'):
        model = build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    got = {names[id(p)][len('model.'):]: g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    # XCiT: the official code's list (facebookresearch/xcit xcit.py), matched by exact name as its timm 0.4.9 did;
    # timm 1.0.31's Xcit lists 'pos_embed.*' instead, which would exclude the position-encoding conv weight
    nwd = {'pos_embed', 'cls_token', 'dist_token'} if family == 'xcit' else model.model.no_weight_decay()
    timm_groups = param_groups_weight_decay(model.model, 0.05, no_weight_decay_list=nwd)
    pnames = {id(p): n for n, p in model.model.named_parameters()}
    want = {pnames[id(p)]: g['weight_decay'] for g in timm_groups for p in g['params']}
    assert got == want
    if family == 'cait':
        assert got['pos_embed'] == got['cls_token'] == got['blocks.0.gamma_1'] == 0.0
    elif family == 'xcit':
        assert got['cls_token'] == 0.0 and got['pos_embed.token_projection.weight'] == 0.05
        assert got['blocks.0.attn.temperature'] == 0.05  # (heads×1×1; the official top-level list misses it)
    else:
        tables = [k for k in got if k.endswith('relative_position_bias_table')]
        assert tables and all(got[k] == 0.0 for k in tables)


@pytest.mark.parametrize('model_key', [k for k, v in MODELS_.items() if v[1] != 'swin'])
def test_layerscale_init(model_key):
    """The LayerScale init of the config (CaiT ε, XCiT η) is what the built model holds (one block, real init)."""
    arch, family, _, ls = MODELS_[model_key]
    cfg = load(ROOT / f'configs/pretrain/{model_key}_baseline_8xb128-400e_in1k.py')
    kwargs = dict(cfg.model.model_kwargs, depth=1)
    model = build(cfg.model, model_kwargs=kwargs, img_size=32, num_classes=2).model
    value = ls.get('init_values', ls.get('eta'))
    gammas = ([model.blocks[0].gamma_1, model.blocks_token_only[0].gamma_1] if family == 'cait'
              else [model.blocks[0].gamma1, model.cls_attn_blocks[0].gamma1])
    for g in gammas:
        assert torch.all(g == value)

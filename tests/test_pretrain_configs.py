"""Every stage-1 config carries the papers' recipe (docs/paper_facts.md#pretraining-recipe and the method sections)."""
import itertools
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

ROOT = Path(__file__).resolve().parents[1]
MODELS_ = {'deit-t': 'deit_tiny_patch16_224', 'deit-s': 'deit_small_patch16_224', 'deit-b': 'deit_base_patch16_224',
           'pvt-t': 'pvt_tiny', 'pvt-s': 'pvt_small', 'pvt-m': 'pvt_medium', 'pvt-l': 'pvt_large'}
METHODS = ('baseline', 'transmix', 'mixpro', 'tokenmix')
CONFIGS = [ROOT / f'configs/pretrain/{m}_{k}_8xb128-300e_in1k.py' for m, k in itertools.product(MODELS_, METHODS)]

# docs/paper_facts.md#pretraining-recipe, docs/paper_facts.md#mixup-and-cutmix, TransMix official EMA
RECIPE = dict(lr_per_512=5e-4, weight_decay=0.05, warmup_epochs=5, warmup_lr=1e-6, epochs=300, min_lr=1e-5,
              gpus=8, batch_per_gpu=128, smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
              mix_prob=1.0, switch_prob=0.5, randaug='rand-m9-mstd0.5-inc1', re_prob=0.25, repeats=3,
              crop_pct=0.875, img_size=224, interpolation='bicubic', ema_decay=0.99996, maskmix_prob=0.5,
              tokenmix_ratio=0.5, tokenmix_min_block=14)
# drop path: DeiT Table 9 (DeiT-T/S/B 0.1); PVT v1: whai362/PVT classification/configs/pvt/*.py, which also clip
# gradients at norm 1.0 for Medium/Large
DROP_PATH = {'deit-t': 0.1, 'deit-s': 0.1, 'deit-b': 0.1, 'pvt-t': 0.1, 'pvt-s': 0.1, 'pvt-m': 0.3, 'pvt-l': 0.3}
CLIP_GRAD = {'pvt-m': 1.0, 'pvt-l': 1.0}


def load(path):
    return Config.fromfile(str(path))


def build_mixer(cfg):
    with DefaultScope.overwrite_default_scope('pretrain'):
        return MODELS.build(dict(cfg.model.mixer, num_classes=cfg.model.num_classes))


def test_the_config_grid_is_complete():
    # the common-protocol grid; the official family (*-official_*) is checked in tests/test_official_recipes.py
    present = sorted(p.name for p in (ROOT / 'configs/pretrain').glob('*.py')
                     if p.name.split('_')[0] in MODELS_ and '-official_' not in p.name)
    assert present == sorted(p.name for p in CONFIGS)
    for p in CONFIGS:  # each is model base + its method's base + ..., and says which family it belongs to
        text, method = p.read_text(), p.name.split('_')[1]
        assert f"'../_base_/methods/{method}.py'" in text and 'common protocol' in text, p.name


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_recipe_values(path):
    cfg = load(path)
    r = RECIPE
    model_key, method = path.stem.split('_')[:2]
    # model
    assert cfg.model.type == 'MixClassifier' and cfg.model.arch == MODELS_[model_key]
    assert cfg.model.num_classes == 1000 and cfg.model.img_size == r['img_size']
    assert cfg.model.drop_path_rate == DROP_PATH[model_key]
    clip = cfg.optim_wrapper.get('clip_grad')
    assert (clip.max_norm if clip else None) == CLIP_GRAD.get(model_key)
    # batch 1024 = 8 × 128, lr = 5e-4 × batch / 512, auto-scaling consistent with it
    assert '8xb128' in path.stem and cfg.train_dataloader.batch_size == r['batch_per_gpu']
    total = r['gpus'] * r['batch_per_gpu']
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and math.isclose(opt.lr, r['lr_per_512'] * total / 512)
    assert math.isclose(opt.lr / cfg.auto_scale_lr.base_batch_size, r['lr_per_512'] / 512)
    assert opt.weight_decay == r['weight_decay'] and cfg.optim_wrapper.type == 'OptimWrapper'
    # schedule: linear warmup 5 epochs from 1e-6, cosine to 1e-5 at 300 epochs, per iteration
    warm, cos = cfg.param_scheduler
    assert warm.type == 'LinearLR' and (warm.begin, warm.end) == (0, r['warmup_epochs']) and warm.by_epoch
    assert math.isclose(warm.start_factor * opt.lr, r['warmup_lr'])
    assert cos.type == 'CosineAnnealingLR' and (cos.begin, cos.end) == (r['warmup_epochs'], r['epochs'])
    assert cos.T_max == cos.end - cos.begin and cos.eta_min == r['min_lr']
    assert warm.convert_to_iter_based and cos.convert_to_iter_based
    assert cfg.train_cfg.max_epochs == r['epochs'] and '300e' in path.stem
    # data: DeiT augmentation, repeated augmentation ×3, eval crop 0.875
    (train_t,) = cfg.train_dataloader.dataset.pipeline
    assert train_t.type == 'TimmTransform' and train_t.is_training and train_t.input_size == r['img_size']
    assert train_t.auto_augment == r['randaug'] and train_t.re_prob == r['re_prob']
    assert train_t.interpolation == r['interpolation']
    (test_t,) = cfg.val_dataloader.dataset.pipeline
    assert test_t.crop_pct == r['crop_pct'] and test_t.interpolation == r['interpolation']
    assert test_t.input_size == r['img_size'] and not test_t.is_training
    assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
    assert cfg.train_dataloader.sampler.num_repeats == r['repeats']
    assert cfg.val_evaluator.type == 'Accuracy' and tuple(cfg.val_evaluator.topk) == (1, 5)
    # EMA off by default, the backbone file written at the end
    assert [h.type for h in cfg.custom_hooks] == ['BackboneExportHook']
    assert math.isclose(1 - cfg.ema_hook.momentum, r['ema_decay']) and cfg.ema_hook.type == 'EMAHook'
    # the mixer, as built
    check_mixer(build_mixer(cfg), method, cfg)


def check_mixer(m, method, cfg):
    r = RECIPE
    assert isinstance(m, mix.MixSwitch) and m.recipe == method and m.num_classes == 1000

    def members(s):
        return [(type(x).__name__, p) for x, p in zip(s.mixers, s.probs)]

    def all_mixers(s):
        for x in s.mixers:
            yield from (all_mixers(x) if isinstance(x, mix.MixSwitch) else [x])

    assert {x.label_smoothing for x in all_mixers(m)} == {r['smoothing']}
    deit = [('Mixup', r['mix_prob'] * (1 - r['switch_prob'])), ('CutMix', r['mix_prob'] * r['switch_prob'])]
    if method == 'baseline':
        assert members(m) == deit
    elif method == 'transmix':
        assert members(m) == [('Mixup', 1 - r['switch_prob']), ('TransMix', r['switch_prob'])]
        assert m.mixers[1].label == 'mean'  # (λ_area + λ_attn)/2, paper §4.1 and official code
    elif method == 'mixpro':
        assert members(m) == [('MaskMix', r['maskmix_prob']), ('MixSwitch', 1 - r['maskmix_prob'])]
        assert m.mixers[0].pal and m.mixers[0].alpha == 1.0  # r ~ Beta(1, 1), PAL on (paper)
        assert members(m.mixers[1]) == deit
    elif method == 'tokenmix':
        assert members(m) == [('Mixup', 1 - r['switch_prob']), ('TokenMix', r['switch_prob'])]
        tm = m.mixers[1]
        assert tm.mask_ratio == r['tokenmix_ratio'] and tm.min_block_tokens == r['tokenmix_min_block']
        assert tm.mask_type == 'block' and tm.source == 'label_maps'  # teacher label maps (the paper's source)
        assert cfg.train_dataloader.dataset.type == 'ImageNetFolderWithLabelMaps'
        assert cfg.train_dataloader.dataset.label_map_root == 'data/imagenet/label_top5_train_nfnet'
        assert cfg.model.loss.type == 'BinaryCrossEntropy'  # paper Table 11
    if method != 'tokenmix':
        assert cfg.model.loss.type == 'SoftTargetCrossEntropy'
    for x in all_mixers(m):
        if isinstance(x, mix.Mixup):
            assert x.alpha == r['mixup_alpha'] and x.mode == 'batch'
        if isinstance(x, mix.CutMix):  # TransMix included
            assert x.alpha == r['cutmix_alpha']


@pytest.mark.parametrize('model_key', list(MODELS_))
def test_weight_decay_follows_timm_rules(model_key):
    """No decay on 1-D parameters (norms, biases) and the model's no_weight_decay() — what timm's optimizer
    factory does in the DeiT / PVT / TransMix / MixPro training scripts; decay 0.05 on everything else."""
    from timm.optim import param_groups_weight_decay
    cfg = load(ROOT / f'configs/pretrain/{model_key}_transmix_8xb128-300e_in1k.py')
    with DefaultScope.overwrite_default_scope('pretrain'), torch.device('meta'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    got = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            got[names[id(p)][len('model.'):]] = g['weight_decay']
    timm_groups = param_groups_weight_decay(model.model, 0.05, no_weight_decay_list=model.model.no_weight_decay())
    pnames = {id(p): n for n, p in model.model.named_parameters()}
    want = {pnames[id(p)]: g['weight_decay'] for g in timm_groups for p in g['params']}
    assert got == want
    if model_key.startswith('deit'):
        assert got['pos_embed'] == got['cls_token'] == 0.0
    else:  # PVT v1 decays its position embeddings (its no_weight_decay is {'cls_token'})
        assert got['pos_embed1'] == 0.05 and got['cls_token'] == 0.0


def test_ema_toggle(tmp_path):
    """EMA on, as default_runtime.py says: the leaf lists the EMA hook next to the backbone export."""
    text = (ROOT / 'configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py').read_text()
    text = text.replace("'../_base_/", f"'{ROOT}/configs/_base_/")
    text += "custom_hooks = [dict(type='BackboneExportHook'), _base_.ema_hook]\n"
    path = tmp_path / 'deit-s_transmix_ema.py'
    path.write_text(text)
    cfg = load(path)
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert set(hooks) == {'BackboneExportHook', 'EMAHook'}
    assert math.isclose(1 - hooks['EMAHook'].momentum, RECIPE['ema_decay'])


DEMOS = sorted((ROOT / 'configs/demo').glob('pretrain_*.py'))


def test_demo_configs_use_the_recipe_mixers():
    assert len(DEMOS) == 8
    for path in DEMOS:
        cfg = load(path)
        arch, method = path.stem.split('_')[1:3]
        assert cfg.train_dataloader.dataset.data_root == 'data/demo/imagenet'
        assert cfg.val_dataloader.dataset.data_root == 'data/demo/imagenet'
        assert cfg.default_scope == 'pretrain' and cfg.model.num_classes == 10
        assert cfg.model.arch == {'vit-nano': 'vit_tiny_patch16_224', 'pvt-nano': 'pvt_nano'}[arch]
        if method == 'tokenmix':  # labels from teacher label maps, as the recipe
            assert cfg.train_dataloader.dataset.type == 'ImageNetFolderWithLabelMaps'
            assert cfg.train_dataloader.dataset.label_map_root
        if (arch, method) == ('pvt-nano', 'tokenmix'):  # 4×4 grid: smaller blocks, CE; otherwise the recipe
            assert cfg.model.method == 'tokenmix' and [m.type for m in cfg.model.mixer.mixers] == ['Mixup', 'TokenMix']
            continue
        recipe = load(ROOT / f'configs/pretrain/deit-s_{method}_8xb128-300e_in1k.py')
        assert cfg.model.mixer == recipe.model.mixer and cfg.model.loss == recipe.model.loss
        assert cfg.train_dataloader.dataset.pipeline[0].auto_augment == RECIPE['randaug']

"""The official TokenMix family resolves to the values of the released code (Sense-X/TokenMix, commit 0e17d5d).

The values are data here, each with where it comes from, so that a change of a config that leaves the official
recipe fails this test. Sources: ``main.py`` (argument defaults, lr scaling, scheduler, EMA, loss choice),
``exp/deit_small/run.sh`` (the command of the released run), ``tokenmix.py`` (mask and label rules),
``datasets.py`` / ``relabel/`` (data pipeline, label maps), ``deit.py`` (models); docs/paper_facts.md#tokenmix.
"""
import math
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import pretrain.classifier  # noqa: F401  (registers)
from pretrain import mix
from pretrain.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]

OFFICIAL = {
    # value: (expected, source)
    'gpus': (8, 'run.sh: srun -n 8 --gres=gpu:8'),
    'batch_per_gpu': (128, 'run.sh --batch-size 128'),
    'lr': (1e-3, 'main.py: --lr 5e-4 × batch 128 × world 8 / 512'),
    'optimizer': ('AdamW', 'main.py --opt fusedadamw (apex FusedAdam, AdamW mode)'),
    'weight_decay': (0.05, 'main.py --weight-decay 0.05'),
    'opt_eps': (1e-8, 'main.py --opt-eps 1e-8'),
    'betas': ((0.9, 0.999), 'main.py --opt-betas None: the optimizer default'),
    'clip_grad': (None, 'main.py --clip-grad None'),
    'epochs': (300, 'run.sh --epochs 300'),
    'cooldown_epochs': (10, 'main.py --cooldown-epochs 10 (timm create_scheduler adds them)'),
    'warmup_epochs': (5, 'main.py --warmup-epochs 5'),
    'warmup_lr': (1e-6, 'main.py --warmup-lr 1e-6'),
    'min_lr': (1e-5, 'main.py --min-lr 1e-5'),
    'lr_lag': (1, 'main.py lr_scheduler.step(epoch) after epoch `epoch`: epoch e trains at lr(e - 1)'),
    'drop_path': (0.1, 'run.sh --drop-path 0.1'),
    'img_size': (224, 'run.sh --input-size 224'),
    'randaug': ('rand-m9-mstd0.5-inc1', 'main.py --aa default'),
    'color_jitter': (0.4, 'main.py --color-jitter 0.4'),
    'train_interpolation': ('bicubic', 'main.py --train-interpolation bicubic'),
    're_prob': (0.25, 'run.sh --reprob 0.25'),
    're_mode': ('pixel', 'main.py --remode pixel'),
    're_count': (1, 'main.py --recount 1'),
    'repeated_aug': (False, 'main.py --repeated-aug default False (DistributedSampler)'),
    'smoothing': (0.1, 'main.py --smoothing 0.1'),
    'mixup_alpha': (0.8, 'run.sh --mixup 0.8'),
    'switch_prob': (0.5, 'main.py --mixup-switch-prob 0.5 (TokenMix with p 0.5, else Mixup), --mixup-prob 1.0'),
    'mask_ratio': (0.5, 'tokenmix.py Mixup.lam_constant = 0.5'),
    'mask_type': ('block', 'main.py --mask-type block'),
    'min_block_tokens': (1, 'tokenmix.py generate_mask(min_num_patches=1)'),
    'extra_target_tokens': (14, 'tokenmix.py Mixup(minimum_tokens=14): int(0.5·196) + 14 = 112 tokens'),
    'mask_per_batch': (True, 'main.py --mixup-mode batch; tokenmix.py _mix_batch: one mask per batch'),
    'partner': ('flip', 'tokenmix.py: x.flip(0)'),
    'smoothing_rule': ('official', 'tokenmix.py Mixup.__call__: on = w - ε/2 + ε/(2C), off = ε/(2C), no clamp'),
    'label_source': ('label_maps', 'tokenmix.py get_labelmaps_with_coords; run.sh --label_dir label_top5_train_nfnet'),
    'label_maps': ('label_top5_train_nfnet', 'run.sh --label_dir /path/to/label_top5_train_nfnet'),
    'loss': ('BinaryCrossEntropy', 'run.sh --use-bce (timm BinaryCrossEntropy)'),
    'ema': (True, 'main.py --model-ema default True'),
    'ema_decay': (0.99996, 'main.py --model-ema-decay 0.99996'),
    'eval_crop_pct': (0.875, 'main.py build_transform: resize int(256/224 · 224), centre crop 224'),
    'eval_batch': (192, 'main.py: int(1.5 × batch-size)'),
    'seed': (0, 'main.py --seed 0 (+ rank)'),
}
MODELS_ = {  # deit.py deit_tiny / deit_small; DeiT-B: timm's (deit.py has no deit_base; --model takes any timm name)
    't': 'deit_tiny_patch16_224', 's': 'deit_small_patch16_224', 'b': 'deit_base_patch16_224'}
CONFIGS = {k: ROOT / f'configs/pretrain/deit-{k}_tokenmix-official_8xb128-300e_in1k.py' for k in MODELS_}


def V(key):
    return OFFICIAL[key][0]


@pytest.mark.parametrize('size', list(CONFIGS))
def test_official_tokenmix_config_resolves_to_the_official_values(size):
    cfg = Config.fromfile(str(CONFIGS[size]))
    # model
    assert cfg.model.arch == MODELS_[size] and cfg.model.img_size == V('img_size')
    assert cfg.model.drop_path_rate == V('drop_path')
    # batch, optimizer, schedule
    dl = cfg.train_dataloader
    assert f"{V('gpus')}xb{V('batch_per_gpu')}" in CONFIGS[size].name and dl.batch_size == V('batch_per_gpu')
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == V('optimizer') and math.isclose(opt.lr, V('lr'))
    assert opt.weight_decay == V('weight_decay') and opt.eps == V('opt_eps') and tuple(opt.betas) == V('betas')
    assert cfg.optim_wrapper.get('clip_grad') == V('clip_grad')
    assert cfg.auto_scale_lr.base_batch_size == V('gpus') * V('batch_per_gpu')
    sched, = cfg.param_scheduler  # timm's cosine from epoch 0, once per epoch, one epoch late (schedule test)
    assert sched.type == 'TimmCosineLR' and sched.by_epoch and not sched.convert_to_iter_based
    assert (sched.t_initial, sched.warmup_t, sched.lag) == (V('epochs'), V('warmup_epochs'), V('lr_lag'))
    assert (sched.warmup_lr_init, sched.lr_min) == (V('warmup_lr'), V('min_lr'))
    assert cfg.train_cfg.max_epochs == V('epochs') + V('cooldown_epochs')
    # data
    t = dl.dataset.pipeline[0]
    assert t.type == 'TimmTransform' and t.is_training and t.input_size == V('img_size')
    assert t.auto_augment == V('randaug') and t.color_jitter == V('color_jitter')
    assert t.interpolation == V('train_interpolation')
    assert (t.re_prob, t.re_mode, t.re_count) == (V('re_prob'), V('re_mode'), V('re_count'))
    assert 'hflip' not in t and 'scale' not in t  # timm defaults 0.5 and (0.08, 1): datasets.py passes those
    assert (dl.sampler.type == 'RepeatAugSampler') == V('repeated_aug') and dl.sampler.shuffle
    assert dl.dataset.type == 'ImageNetFolderWithLabelMaps'
    assert Path(dl.dataset.label_map_root).name == V('label_maps')
    v = cfg.val_dataloader
    assert v.dataset.pipeline[0].crop_pct == V('eval_crop_pct') and v.batch_size == V('eval_batch')
    # EMA, seed
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert ('EMAHook' in hooks) == V('ema') and math.isclose(1 - hooks['EMAHook'].momentum, V('ema_decay'))
    assert cfg.randomness.seed == V('seed') and cfg.randomness.diff_rank_seed
    # mixing, resolved through the registry as a run builds it
    assert cfg.model.loss.type == V('loss')
    with DefaultScope.overwrite_default_scope('pretrain'):
        sw = MODELS.build(dict(cfg.model.mixer, num_classes=1000))
    assert isinstance(sw, mix.MixSwitch) and sw.probs == [1 - V('switch_prob'), V('switch_prob')]
    mixup, tm = sw.mixers
    assert isinstance(mixup, mix.Mixup) and mixup.alpha == V('mixup_alpha') and mixup.mode == 'batch'
    assert isinstance(tm, mix.TokenMix) and tm.mask_ratio == V('mask_ratio') and tm.mask_type == V('mask_type')
    assert tm.min_block_tokens == V('min_block_tokens') and tm.extra_target_tokens == V('extra_target_tokens')
    assert tm.num_masked((14, 14)) == 112 and tm.variant == 'official'
    assert tm.per_sample is not V('mask_per_batch') and tm.partner == V('partner') == mixup.partner
    assert tm.smoothing_rule == V('smoothing_rule') and tm.source == V('label_source')
    assert {mixup.label_smoothing, tm.label_smoothing} == {V('smoothing')}
    assert tm.box_order == 'xyxy'  # the released transposed box is a bug: the intent, 'official' as an option


def test_every_official_value_has_a_source():
    assert all(isinstance(src, str) and src for _, src in OFFICIAL.values())


def test_official_block_mask_follows_generate_mask():
    import numpy as np

    from pretrain.mix import block_mask
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(200):
        mask, blocks = block_mask((14, 14), 112, 1, rng=rng, return_blocks=True, official=True)
        assert all(bh < 14 and bw < 14 for _, _, bh, bw in blocks)  # generate_mask: w < width and h < height
        counts.append(int(mask.sum()))
    assert max(counts) == 112 and min(counts) > 100  # stops short only after 10 failed draws

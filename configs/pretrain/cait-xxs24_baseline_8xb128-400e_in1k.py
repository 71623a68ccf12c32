_base_ = [
    '../_base_/models/cait-xxs24.py', '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# Baseline: per batch CutMix (α 1.0) with p 0.5 else Mixup (α 0.8), always mixed, label smoothing 0.1
# (facebookresearch/deit main.py defaults: mixup 0.8, cutmix 1.0, mixup_prob 1.0, switch 0.5, smoothing 0.1).
model = dict(mixer=dict(type='deit_mix', mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                        label_smoothing=0.1))

# EMA: facebookresearch/deit main.py keeps a ModelEma (0.99996) by default; off here as in every pretraining
# config of the project (use_ema = True turns it on).
use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

_base_ = [
    '../_base_/models/swin-s.py', '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# Baseline: per batch CutMix (α 1.0) with p 0.5 else Mixup (α 0.8), always mixed, label smoothing 0.1
# (microsoft/Swin-Transformer config.py AUG: mixup 0.8, cutmix 1.0, mixup_prob 1.0, switch 0.5, smoothing 0.1).
model = dict(mixer=dict(type='deit_mix', mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                        label_smoothing=0.1))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

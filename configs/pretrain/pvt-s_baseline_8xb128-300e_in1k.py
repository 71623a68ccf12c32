# COMMON PROTOCOL: one recipe for every method (DeiT's: 8 GPUs x 128, lr 1e-3, repeated augmentation, random
# erasing 0.25, no EMA; docs/paper_facts.md#pretraining-recipe), so that methods compare like with like. The OFFICIAL
# family (configs/pretrain/*-official_*.py, README "Recipes") runs a method as its official code did.
_base_ = [
    '../_base_/models/pvt-s.py', '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt.py', '../_base_/default_runtime.py',
]
# DeiT baseline: per batch CutMix (α 1.0) with p 0.5 else Mixup (α 0.8), always mixed, label smoothing 0.1.
model = dict(mixer=dict(type='deit_mix', mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                        label_smoothing=0.1))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

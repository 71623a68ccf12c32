_base_ = [
    '../_base_/models/vit-nano.py', '../_base_/datasets/imagenet_demo.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# The DeiT baseline mixer of configs/pretrain/*_baseline_*.py on a tiny model and the demo ImageNet tree.
model = dict(mixer=dict(type='deit_mix', mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                        label_smoothing=0.1))

use_ema = False  # True: EMA of the weights, used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

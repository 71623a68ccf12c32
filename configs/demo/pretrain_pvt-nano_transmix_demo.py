_base_ = [
    '../_base_/models/pvt-nano.py', '../_base_/datasets/imagenet_demo_128.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# The TransMix mixer of configs/pretrain/*_transmix_*.py on a tiny model and the demo ImageNet tree.
model = dict(mixer=dict(type='transmix_recipe', mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, label='mean',
                        label_smoothing=0.1))

use_ema = False  # True: EMA of the weights, used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

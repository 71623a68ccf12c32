_base_ = [
    '../_base_/models/vit-nano.py', '../_base_/datasets/imagenet_demo.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# The TokenMix mixer and BCE loss of configs/pretrain/*_tokenmix_*.py on a tiny model and the demo ImageNet tree
# (8×8 tokens: 32 pasted tokens in blocks of ≥ 14).
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='attention',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

use_ema = False  # True: EMA of the weights, used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

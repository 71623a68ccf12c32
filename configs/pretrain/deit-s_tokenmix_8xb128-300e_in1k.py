# COMMON PROTOCOL: one recipe for every method (DeiT's: 8 GPUs x 128, lr 1e-3, repeated augmentation, random
# erasing 0.25, no EMA; PAPERS.md "Pretraining recipe"), so that methods compare like with like. The OFFICIAL
# family (configs/pretrain/*-official_*.py, README "Recipes") runs a method as its official code did.
_base_ = [
    '../_base_/models/deit-s.py', '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e.py', '../_base_/default_runtime.py',
]
# TokenMix (ECCV 2022): token-level block masks (λ = 0.5, blocks ≥ 14 tokens) with p 0.5 else Mixup; label weights
# = activation mass each image keeps, here from the model's own class attention on the clean images (no teacher
# weights are downloaded; source='teacher', teacher=dict(type='CAMTeacher', model_name=..., checkpoint=...) uses a
# local CNN teacher as the paper). BCE loss (paper Table 11: +0.5 over CE on DeiT-S).
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='attention',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

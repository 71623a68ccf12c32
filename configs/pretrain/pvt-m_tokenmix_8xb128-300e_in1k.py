# COMMON PROTOCOL: one recipe for every method (DeiT's: 8 GPUs x 128, lr 1e-3, repeated augmentation, random
# erasing 0.25, no EMA; docs/paper_facts.md#pretraining-recipe), so that methods compare like with like. The OFFICIAL
# family (configs/pretrain/*-official_*.py, README "Recipes") runs a method as its official code did.
_base_ = [
    '../_base_/models/pvt-m.py', '../_base_/datasets/imagenet_bs128_label-maps.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt-clip.py', '../_base_/default_runtime.py',
]
# TokenMix (ECCV 2022): token-level block masks (λ = 0.5, blocks ≥ 14 tokens) with p 0.5 else Mixup; label weights
# = mass of each image's ground-truth activation map it keeps, from the teacher label maps (the paper's source:
# NFNet-F6 maps in the TokenLabeling format, cropped with the image; see imagenet_bs128_label-maps.py).
# source='attention' (the model's own class attention on the clean images, OpenMixup's substitute: 1.31× a
# CutMix step) and source='teacher' (a CAMTeacher run each step) are options. BCE loss (paper Table 11: +0.5
# over CE on DeiT-S). The official TokenMix recipe is configs/pretrain/deit-*_tokenmix-official_*.py.
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='label_maps',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

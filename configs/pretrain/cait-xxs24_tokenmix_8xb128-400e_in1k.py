_base_ = [
    '../_base_/models/cait-xxs24.py', '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# TokenMix (ECCV 2022) on the model's own recipe: token block masks (λ = 0.5, blocks ≥ 14 tokens) with p 0.5 else
# Mixup; label weights from the last class-attention layer's attention on the clean images (no teacher weights are
# downloaded; source='teacher' with a CAMTeacher uses a local CNN teacher as the paper). BCE (paper Table 11).
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='attention',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

# EMA: facebookresearch/deit main.py keeps a ModelEma (0.99996) by default; off here as in every pretraining
# config of the project (use_ema = True turns it on).
use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

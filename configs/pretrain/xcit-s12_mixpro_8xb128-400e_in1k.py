_base_ = [
    '../_base_/models/xcit-s12.py', '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e_xcit.py', '../_base_/default_runtime.py',
]
# MixPro (ICLR 2023) on the model's own recipe: MaskMix (r ~ Beta(1, 1), token-aligned cells) with p 0.5 labelled
# by Progressive Attention Labeling from the last class-attention layer; otherwise the Mixup/CutMix switch.
model = dict(mixer=dict(type='mixpro_recipe', maskmix_prob=0.5, pal=True, mixup_alpha=0.8, cutmix_alpha=1.0,
                        switch_prob=0.5, label_smoothing=0.1))

# EMA: facebookresearch/xcit main.py keeps a ModelEma (0.99996) by default; off here as in every pretraining
# config of the project (use_ema = True turns it on).
use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

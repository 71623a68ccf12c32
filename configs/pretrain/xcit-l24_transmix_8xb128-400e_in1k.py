_base_ = [
    '../_base_/models/xcit-l24.py', '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e_xcit.py', '../_base_/default_runtime.py',
]
# TransMix (CVPR 2022) on the model's own recipe: the Mixup/CutMix switch whose CutMix batches get
# λ = (λ_area + λ_attn)/2, λ_attn = the last class-attention layer's class→patch attention inside the box
# (switch prob 0.5, the model recipe's; the official TransMix DeiT configs use 0.8).
model = dict(mixer=dict(type='transmix_recipe', mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, label='mean',
                        label_smoothing=0.1))

# EMA: facebookresearch/xcit main.py keeps a ModelEma (0.99996) by default; off here as in every pretraining
# config of the project (use_ema = True turns it on).
use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

_base_ = [
    '../_base_/models/swin-s.py', '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# MixPro (ICLR 2023) on Swin: MaskMix with p 0.5 (r ~ Beta(1, 1), 56-px cells: 4×4 on 224, MixPro's Swin configs'
# MASK_PATCH_SIZE 56), otherwise the Mixup/CutMix switch. Swin has no class token, so MaskMix batches keep the
# area label (pal=False): Progressive Attention Labeling needs class attention (the paper's Swin rows use CA-Swin,
# Swin with class-attention layers, which is not released; docs/pretrain_models.md). The 56-px cells lie on the pixel
# grid and the label side on the 7×7 grid through ↓M (needs MaskMix's pixel-grid cells, docs/paper_facts.md#mixpro).
model = dict(mixer=dict(type='mixpro_recipe', maskmix_prob=0.5, mask_patch=56, pal=False, mixup_alpha=0.8,
                        cutmix_alpha=1.0, switch_prob=0.5, label_smoothing=0.1))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

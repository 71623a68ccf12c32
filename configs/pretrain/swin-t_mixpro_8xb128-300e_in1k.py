_base_ = [
    '../_base_/models/swin-t.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# swin-t pretrained with MixPro, common protocol (README "Recipes").
# Swin has no class token, so MaskMix batches keep the area label (pal=False): PAL needs class attention
# (the paper's Swin rows use CA-Swin, which is not released; docs/pretrain_models.md). 56-px cells (4×4 on
# 224, MixPro's Swin configs' MASK_PATCH_SIZE 56) on the pixel grid, read on the 7×7 label grid through ↓M
# (docs/paper_facts.md#mixpro).
model = dict(mixer=dict(_base_.mixer, mask_patch=56, pal=False))

_base_ = [
    '../_base_/models/swin-s.py', '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# MixPro's released Swin recipe (fistyee/MixPro
# configs/swin/swin_small_patch4_window7_mask56_224_alpha1.yaml, config.py, main.py):
# MaskMix with MASKMIX_PROB 0.5, MASKMIX_ALPHA 1 (r ~ Beta(1, 1)), MASK_PATCH_SIZE 56 (4×4 cells on 224), PAL_ATTN False
# (area labels: Swin returns no attention), partner torch.randperm, else timm Mixup/CutMix (0.8 / 1.0, switch 0.5,
# smoothing 0.1); DROP_PATH_RATE 0.3; main.py hard-codes BASE_LR 1e-3, WARMUP_LR 1e-6, MIN_LR 1e-5 (batch 8 × 128 in
# the README); 300 epochs, 20 warmup, wd 0.05, random erasing 0.25, no repeated augmentation, no EMA. Its
# TRAIN.CLIP_GRAD 5.0 is applied after the optimizer step (no effect, PAPERS.md MixPro): no clipping here.
model = dict(mixer=dict(type='mixpro_recipe', maskmix_prob=0.5, mask_patch=56, pal=False, mixup_alpha=0.8,
                        cutmix_alpha=1.0, switch_prob=0.5, label_smoothing=0.1))
optim_wrapper = dict(clip_grad=None)  # lr / warmup / min lr: the Swin schedule's 1e-3 / 1e-6 / 1e-5 at 8 × 128

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

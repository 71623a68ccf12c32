_base_ = [
    '../_base_/models/swin-t.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# MixPro's released Swin recipe (fistyee/MixPro @ 53a229e:
# configs/swin/swin_tiny_patch4_window7_mask56_224_alpha1.yaml, config.py, main.py, lr_scheduler.py):
# MaskMix with MASKMIX_PROB 0.5, MASKMIX_ALPHA 1 (r ~ Beta(1, 1)), MASK_PATCH_SIZE 56 (4×4 cells on 224),
# PAL_ATTN False (area labels: Swin returns no attention), partner torch.randperm, else timm Mixup/CutMix
# (0.8 / 1.0, switch 0.5, smoothing 0.1); DROP_PATH_RATE 0.2; 300 epochs, 20 warmup, wd 0.05, random erasing 0.25,
# no repeated augmentation, no EMA. Its TRAIN.CLIP_GRAD 5.0 is applied after the optimizer step on the default
# (GradScaler) path, where it has no effect: no clipping here.
# Batch: config.py DATA.BATCH_SIZE 128 per GPU. The GPU count is not given: the README has launch lines for the
# DeiT configs only (8 GPUs) and a generic `--nproc_per_node <num-of-gpus-to-use>` line; we assume 8 (as its DeiT
# runs and Swin's own recipe), total 1024. main.py hard-codes BASE_LR 1e-3, WARMUP_LR 1e-6, MIN_LR 1e-5 (its
# linear-scaling lines are commented out), so the lr does not depend on that count.
# the method base's values are the released ones (configs/_base_/methods/mixpro.py: fistyee/MixPro config.py
# MASKMIX_PROB 0.5, Mixup 0.8 / CutMix 1.0, switch 0.5, smoothing 0.1), and the yaml's MASK_PATCH_SIZE 56 (4×4 cells
# on 224) and PAL_ATTN False (area labels: Swin returns no attention)
model = dict(mixer=dict(_base_.mixer, mask_patch=56, pal=False))
optim_wrapper = dict(clip_grad=None)  # lr 1e-3: the Swin schedule's (and main.py's constant)
# lr_scheduler.py: timm CosineLRScheduler(t_initial=EPOCHS·n_iter, warmup_t=WARMUP_EPOCHS·n_iter, t_mul 1,
# lr_min=MIN_LR, warmup_lr_init=WARMUP_LR, cycle_limit 1, t_in_epochs=False) — warmup_prefix not passed (False in
# timm 0.4.12): the cosine runs over all 300 epochs from step 0, under the warmup (Swin-Transformer's own configs
# start it after the warmup: imagenet_adamw_300e_swin.py). main.py calls step_update(epoch·n_iter + idx) after
# iteration idx: iteration k trains at lr(k - 1), lag=1. TimmCosineLR (pretrain/schedulers.py) is that schedule.
custom_imports = dict(imports=['pretrain.install_patches',
                               'pretrain.classifier', 'pretrain.data', 'pretrain.label_map_data',
                               'pretrain.metrics', 'pretrain.export', 'pretrain.mixers', 'pretrain.schedulers'],
                      allow_failed_imports=False)  # + TimmCosineLR
param_scheduler = [
    dict(type='TimmCosineLR', t_initial=300, warmup_t=20, warmup_lr_init=1e-6, lr_min=1e-5,  # config.py, main.py
         lag=1, by_epoch=True, begin=0, convert_to_iter_based=True),
]

# no EMA: fistyee/MixPro main.py (the Swin-Transformer training loop) keeps no model EMA; to add one:
# custom_hooks = [dict(type='BackboneExportHook'), _base_.ema_hook]
custom_hooks = [dict(type='BackboneExportHook')]

# Swin schedule (microsoft/Swin-Transformer config.py, main.py): AdamW, base lr 5e-4, warmup lr 5e-7, min lr 5e-6,
# each × total batch / 512 (main.py linear_scaled_lr) = 1e-3 / 1e-6 / 1e-5 at 8 × 128; wd 0.05; 20 warmup epochs then
# cosine (WARMUP_PREFIX) to 300 epochs, stepped per iteration; gradient clipping at norm 5.0 (TRAIN.CLIP_GRAD, applied
# before the optimizer step by its NativeScaler). No weight decay on norms, biases (1-D) and the relative position bias
# tables (no_weight_decay_keywords; timm's Swin lists them in no_weight_decay()).
_base_ = './imagenet_adamw_300e.py'
base_lr = 5e-4 * 1024 / 512
warmup_epochs = 20
max_epochs = 300
optim_wrapper = dict(
    clip_grad=dict(max_norm=5.0, norm_type=2),
    paramwise_cfg=dict(custom_keys=dict(_delete_=True, relative_position_bias_table=dict(decay_mult=0.0))),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, end_factor=1.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

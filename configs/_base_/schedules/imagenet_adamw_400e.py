# CaiT / XCiT schedule: the DeiT schedule (imagenet_adamw_300e.py: AdamW, lr 5e-4 × total batch / 512 = 1e-3 at
# 8 × 128, wd 0.05, 5 warmup epochs from 1e-6, cosine to 1e-5, no clipping) for 400 epochs.
# Sources: facebookresearch/deit README_cait.md ("All models are trained during 400 epochs"; main.py defaults: lr 5e-4,
# linear scaling by batch / 512, warmup 5, warmup lr 1e-6, min lr 1e-5, wd 0.05, clip none); facebookresearch/xcit
# main.py (--epochs 400, the same lr / warmup / min lr / wd defaults, lr × batch × world size / 512, clip none).
_base_ = './imagenet_adamw_300e.py'
base_lr = 5e-4 * 1024 / 512
warmup_epochs = 5
max_epochs = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, end_factor=1.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)

# 1x schedule of the official PVT detection recipe: 12 epochs, AdamW lr 2e-4 (batch 16), weight decay 1e-4,
# linear warmup over 500 iterations from 0.001x, lr x0.1 after epochs 8 and 11, no gradient clipping.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.0001))
# The lr above is for a total batch of 16 (8 GPUs x 2 images); `--auto-scale-lr` style scaling is off.
auto_scale_lr = dict(enable=False, base_batch_size=16)

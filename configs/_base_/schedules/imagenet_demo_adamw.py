# Demo schedule (not the recipe: a few epochs on the demo tree on a CPU): AdamW lr 1e-3, wd 0.05 with the
# recipe's no-decay rules, 1 warmup epoch, cosine to 1e-5.
_base_ = './imagenet_adamw_300e.py'
base_lr = 1e-3
warmup_epochs = 1
max_epochs = 12
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, end_factor=1.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32, enable=False)

# The schedule of the official TokenMix runs (Sense-X/TokenMix main.py defaults; exp/deit_small/run.sh: 8 GPUs × 128).
# Same shape as imagenet_adamw_300e.py, plus timm's 10 cooldown epochs at the minimum lr.
# Not a value but the shape: the official code steps timm's CosineLRScheduler once per epoch, its cosine counting
# from epoch 0 under the warmup; here the lr is stepped per iteration, the cosine running from the warmup's end.
_base_ = './imagenet_adamw_300e.py'
base_lr = 5e-4 * 1024 / 512  # main.py: --lr 5e-4 scaled by batch 128 × 8 GPUs / 512 = 1e-3
warmup_epochs = 5  # main.py --warmup-epochs 5 (from --warmup-lr 1e-6)
cosine_epochs = 300  # run.sh --epochs 300
cooldown_epochs = 10  # main.py --cooldown-epochs 10: timm's create_scheduler returns 300 + 10 epochs, all trained

optim_wrapper = dict(
    # main.py --opt fusedadamw (apex FusedAdam in AdamW mode = AdamW), --opt-eps 1e-8, betas: the optimizer default,
    # --weight-decay 0.05 (timm create_optimizer: no decay on 1-D parameters and no_weight_decay(), as the base)
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05, betas=(0.9, 0.999), eps=1e-8),
    # main.py --clip-grad None: no clipping (the base has none)
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, end_factor=1.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),  # --warmup-lr 1e-6
    dict(type='CosineAnnealingLR', T_max=cosine_epochs - warmup_epochs, eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, end=cosine_epochs, convert_to_iter_based=True),  # --min-lr 1e-5
    # epochs 300-310: no scheduler, the lr stays at eta_min (timm's cooldown)
]
train_cfg = dict(by_epoch=True, max_epochs=cosine_epochs + cooldown_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024, enable=False)  # the lr above belongs to 8 × 128

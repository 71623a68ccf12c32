# The schedule of the official TokenMix runs (Sense-X/TokenMix main.py defaults; exp/deit_small/run.sh: 8 GPUs × 128).
# main.py: create_scheduler (timm 0.5.4, README) → CosineLRScheduler(t_initial=--epochs, warmup_t=--warmup-epochs,
# warmup_lr_init=--warmup-lr, lr_min=--min-lr, cycle_limit 1, t_in_epochs=True): the lr is set once per epoch and
# the cosine counts from epoch 0 under the warmup (warmup_prefix=False), then --cooldown-epochs at the minimum lr.
# main.py calls lr_scheduler.step(epoch) *after* epoch `epoch`, so epoch e trains at timm's lr(e - 1) (epochs 0
# and 1 both at the warmup lr): TimmCosineLR(lag=1) (pretrain/schedulers.py) is that schedule; the config that
# takes this file imports pretrain.schedulers (custom_imports).
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
    dict(type='TimmCosineLR',
         t_initial=cosine_epochs,  # run.sh --epochs 300
         warmup_t=warmup_epochs,  # main.py --warmup-epochs 5
         warmup_lr_init=1e-6,  # main.py --warmup-lr 1e-6 (absolute: not scaled with the batch)
         lr_min=1e-5,  # main.py --min-lr 1e-5 (absolute)
         lag=1,  # main.py lr_scheduler.step(epoch) after the epoch: epoch e at lr(e - 1)
         by_epoch=True, begin=0, convert_to_iter_based=False),  # t_in_epochs=True: once per epoch
    # epochs 300-310 (the cooldown): TimmCosineLR holds lr_min past t_initial, as timm
]
train_cfg = dict(by_epoch=True, max_epochs=cosine_epochs + cooldown_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024, enable=False)  # the lr above belongs to 8 × 128

# OFFICIAL FAMILY — TransMix on DeiT as its official code ran it (Beckschen/TransMix @ 0e4d31e).
# Sources: TM/B = configs/deit_b_transmix.yaml, TM/S = configs/deit_s_transmix.yaml, TM/train = train.py argparse
# defaults (a yaml key sets the default of the parser argument of the same name), timm 0.5.4 (requirements.txt):
# create_loader / create_scheduler / ModelEmaV2 / vision_transformer.py default_cfgs of the models it names.
# The values below are DeiT-B's (TM/B); configs/pretrain/deit-s_transmix-official_*.py overrides DeiT-S's.
# The common-protocol configs (configs/pretrain/<model>_transmix_8xb128-300e_in1k.py) are the other family.
_base_ = ['../default_runtime.py']
custom_imports = dict(imports=['pretrain.install_patches',
                               'pretrain.classifier', 'pretrain.data', 'pretrain.metrics',
                               'pretrain.export', 'pretrain.mixers', 'pretrain.schedulers'],
                      allow_failed_imports=False)  # + TimmCosineLR

# ---------------------------------------------------------------------------------------------- data
dataset_type = 'ImageNetFolder'
data_root = 'data/imagenet'
img_size = 224  # TM/B img_size: 224
train_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=True,
         scale=(0.08, 1.0),                   # TM/train --scale default
         ratio=(3. / 4., 4. / 3.),            # TM/train --ratio default
         hflip=0.5, vflip=0.,                 # TM/train --hflip / --vflip defaults
         color_jitter=0.4,                    # TM/train --color-jitter default
         auto_augment='rand-m9-mstd0.5-inc1',  # TM/B aa
         interpolation='random',              # TM/train --train-interpolation default 'random' (bilinear|bicubic)
         re_prob=0.,                          # TM/train --reprob default 0 (no random erasing)
         re_mode='pixel', re_count=1),        # TM/train --remode / --recount defaults (unused at re_prob 0)
]
test_pipeline = [
    # resolve_data_config from the model's default_cfg (TransMix timm/models/vision_transformer.py _cfg for
    # deit_*_patch16_224): bicubic, crop_pct 0.9 (resize 248, centre crop 224). DeiT's own eval uses 0.875.
    dict(type='TimmTransform', input_size=img_size, is_training=False, interpolation='bicubic', crop_pct=0.9),
]
total_batch_size = 256  # TM/B total_batch_size: 256 (train.py: batch per GPU = total // world size; lr not rescaled)
gpus = 8                # TM README: "Suppose you're using 8 GPUs" (distributed_train.sh 8)
train_dataloader = dict(
    batch_size=total_batch_size // gpus,  # 32
    num_workers=8,                        # TM/B workers: 8
    persistent_workers=True,
    pin_memory=False,                     # TM/B pin_mem: False
    drop_last=True,                       # timm create_loader: drop_last=is_training
    sampler=dict(type='DefaultSampler', shuffle=True),  # TM/train --aug-repeats 0: no repeated augmentation
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=total_batch_size // gpus,  # TM/train: validation_batch_size or batch_size
    num_workers=8,
    persistent_workers=True,
    pin_memory=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# ---------------------------------------------------------------------------------------------- model
model = dict(
    type='MixClassifier',
    arch=None,  # set by each leaf config (the model of its official config)
    num_classes=1000,
    img_size=img_size,
    data_preprocessor=dict(type='ClsDataPreprocessor'),
    drop_path_rate=0.1,  # TM/B drop_path: 0.1
    # TM/train: mixup_active → SoftTargetCrossEntropy (smoothing lives in the targets)
    loss=dict(type='SoftTargetCrossEntropy'),
    mixer=dict(
        type='transmix_recipe',
        mixup_alpha=0.8,     # TM/B mixup: 0.8
        cutmix_alpha=1.0,    # TM/B cutmix: 1.0
        switch_prob=0.8,     # TM/B mixup_switch_prob: 0.8 (CutMix→TransMix on 80 % of the batches)
        label='mean',        # transmix.py transmix_label: lam = (lam0 + lam1) / 2 (paper Eq. 7: λ_attn alone = 'attn')
        mode='batch',        # TM/train --mixup-mode default 'batch' (transmix.py asserts it)
        label_smoothing=0.1,  # TM/train --smoothing default 0.1
    ),
)

# ---------------------------------------------------------------------------------------------- schedule
base_lr = 1e-3          # TM/B lr: 1e-3, for total_batch_size 256
warmup_lr = 1e-6        # TM/B warmup_lr: 1e-6
min_lr = 1e-5           # TM/B min_lr: 1e-5
warmup_epochs = 5       # TM/B warmup_epochs: 5
epochs = 300            # TM/train --epochs default 300
cooldown_epochs = 10    # TM/train --cooldown-epochs default 10: timm runs epochs + 10 at min_lr (310 in all)
optim_wrapper = dict(
    type='OptimWrapper',  # TM/train --amp default False: float32 (tools/train.py --amp for mixed precision)
    optimizer=dict(type='AdamW',  # TM/B opt: adamw
                   lr=base_lr,
                   weight_decay=0.05,     # TM/B weight_decay: 5e-2
                   betas=(0.9, 0.999),    # TM/train --opt-betas default None: torch AdamW's
                   eps=1e-8),             # TM/train --opt-eps default None: torch AdamW's 1e-8
    # timm create_optimizer_v2 (filter_bias_and_bn): no decay on 1-D params (norms, biases) and the model's
    # no_weight_decay() = {pos_embed, cls_token, dist_token}
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0),
                                    '.dist_token': dict(decay_mult=0.0)}),
    clip_grad=None,  # TM/train --clip-grad default None
)
# timm 0.5.4 create_scheduler (sched 'cosine', TM/train default): CosineLRScheduler(t_initial=epochs, warmup_t,
# warmup_lr_init, lr_min, t_in_epochs=True): the lr is set once per epoch (lr_scheduler.step(epoch + 1)), the cosine
# runs from epoch 0 (warmup_prefix=False) and epochs 300..309 stay at min_lr (the cooldown). TimmCosineLR
# (pretrain/schedulers.py) is that formula; mmengine's LinearLR + CosineAnnealingLR would shift the cosine by up to
# 1.5 % of lr (5 warmup epochs) / 6.2 % (20).
param_scheduler = [
    dict(type='TimmCosineLR', t_initial=epochs, warmup_t=warmup_epochs, warmup_lr_init=warmup_lr, lr_min=min_lr,
         by_epoch=True, begin=0, convert_to_iter_based=False),
]
train_cfg = dict(by_epoch=True, max_epochs=epochs + cooldown_epochs, val_interval=1)  # TM/train: validate every epoch
val_cfg = dict()
test_cfg = dict()
# --auto-scale-lr (tools/train.py) rescales lr by (GPUs × batch per GPU) / base_batch_size
auto_scale_lr = dict(base_batch_size=total_batch_size, enable=False)

# ---------------------------------------------------------------------------------------------- runtime
# EMA (TM/B model_ema: True, model_ema_decay: 0.99996; timm ModelEmaV2 ema = decay·ema + (1-decay)·model over
# the whole state_dict, buffers included, after every optimizer step). mmengine's ExponentialMovingAverage
# computes ema = (1-momentum)·ema + momentum·model, so momentum = 1 - 0.99996 = 4e-5. TransMix validates the EMA
# model and keeps the best checkpoint by its top-1 (eval_metrics = ema_eval_metrics): so does EMAHook here,
# and the exported backbone holds the EMA weights.
ema_hook = dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=1 - 0.99996, update_buffers=True,
                priority='ABOVE_NORMAL')
custom_hooks = [dict(type='BackboneExportHook'), ema_hook]  # a leaf may switch EMA off (see its use_ema)
randomness = dict(seed=42, diff_rank_seed=True, deterministic=False)  # TM/train --seed 42; random_seed(seed, rank)

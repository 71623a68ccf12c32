# OFFICIAL FAMILY — MixPro on DeiT as its official code ran it (fistyee/MixPro @ 53a229e).
# Sources: MP/cfg = config.py defaults (yacs _C), MP/yaml = configs/deit/deit_*_patch14_mask56_224_alpha1.yaml
# (DeiT-B: deit_base_patch14_mask112_224_alpha1_attn_all.yaml), MP/main = main.py, MP/data = data/build.py,
# MP/opt = optimizer.py, MP/sched = lr_scheduler.py, MP/utils = utils.py, MP/README = README.md (launch lines);
# timm 0.4.12 (README install line). The values are DeiT-T/S's; the DeiT-B leaf overrides its batch.
# The common-protocol configs (configs/pretrain/<model>_mixpro_8xb128-300e_in1k.py) are the other family.
_base_ = ['../default_runtime.py']
custom_imports = dict(imports=['pretrain.install_patches',
                               'pretrain.classifier', 'pretrain.data', 'pretrain.metrics',
                               'pretrain.export', 'pretrain.mixers', 'pretrain.schedulers'],
                      allow_failed_imports=False)  # + TimmCosineLR

# ---------------------------------------------------------------------------------------------- data
dataset_type = 'ImageNetFolder'
data_root = 'data/imagenet'
img_size = 224  # MP/cfg DATA.IMG_SIZE
train_pipeline = [
    # MP/data build_transform → timm create_transform(is_training=True): RandomResizedCrop (timm's default
    # scale 0.08-1, ratio 3/4-4/3), flip 0.5
    dict(type='TimmTransform', input_size=img_size, is_training=True,
         color_jitter=0.4,                    # MP/cfg AUG.COLOR_JITTER
         auto_augment='rand-m9-mstd0.5-inc1',  # MP/cfg AUG.AUTO_AUGMENT
         interpolation='bicubic',             # MP/cfg DATA.INTERPOLATION
         re_prob=0.25,                        # MP/cfg AUG.REPROB
         re_mode='pixel', re_count=1),        # MP/cfg AUG.REMODE / AUG.RECOUNT
]
test_pipeline = [
    # MP/data: Resize(int(256 / 224 · 224) = 256, bicubic) + CenterCrop(224) (TEST.CROP True) = crop_pct 0.875
    dict(type='TimmTransform', input_size=img_size, is_training=False, interpolation='bicubic', crop_pct=0.875),
]
gpus = 8               # MP/README: --nproc_per_node 8
batch_per_gpu = 128    # MP/README: --batch-size 128 (DeiT-T/S; DeiT-B 64); = MP/cfg DATA.BATCH_SIZE
train_dataloader = dict(
    batch_size=batch_per_gpu,
    num_workers=8,        # MP/cfg DATA.NUM_WORKERS
    persistent_workers=True,
    pin_memory=True,      # MP/cfg DATA.PIN_MEMORY
    drop_last=True,       # MP/data: drop_last=True
    sampler=dict(type='DefaultSampler', shuffle=True),  # MP/data: DistributedSampler: no repeated augmentation
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=batch_per_gpu,  # MP/data: the val loader uses DATA.BATCH_SIZE
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# ---------------------------------------------------------------------------------------------- model
# PAL on or off: MP/yaml AUG.PAL_ATTN: False (all three DeiT configs; MP/cfg default False) — what the released
# code runs; the paper's method and its tables use PAL (MP/README's config block shows PAL_ATTN = True). A leaf
# sets `pal = True` for the paper's method. With PAL on, the official label rule is used (pal_label='official':
# α from the smoothed ỹ_area, loss λ·CE(y_A) + (1-λ)·CE(y_B) on hard labels; MP/main train_one_epoch).
model = dict(
    type='MixClassifier',
    arch=None,  # set by each leaf config (the model of its official config)
    num_classes=1000,
    img_size=img_size,
    data_preprocessor=dict(type='ClsDataPreprocessor'),
    drop_path_rate=0.1,  # MP/cfg MODEL.DROP_PATH_RATE 0.1 (MP/yaml DeiT-B: 0.1)
    loss=dict(type='SoftTargetCrossEntropy'),  # MP/main: AUG.MIXUP > 0 → SoftTargetCrossEntropy
    mixer=dict(
        type='mixpro_recipe',
        maskmix_prob=0.5,     # MP/yaml AUG.MASKMIX_PROB 0.5 (MP/main: np.random.rand() < MASKMIX_PROB per batch)
        mask_patch=56,        # MP/yaml MODEL.MASK_PATCH_SIZE 56 (a 4x4 grid of 4x4 tokens at 224 / patch 14)
        pal=False,            # MP/yaml AUG.PAL_ATTN False (paper: True, see above)
        pal_label='official',  # MP/main PAL branch: two hard-label CE, α from the smoothed area target
        detach_alpha=False,   # MP/main: sim = cosine_similarity(mix_targets, softmax(outputs)), not detached
        mixup_alpha=0.8,      # MP/cfg AUG.MIXUP
        cutmix_alpha=1.0,     # MP/cfg AUG.CUTMIX
        switch_prob=0.5,      # MP/cfg AUG.MIXUP_SWITCH_PROB (and AUG.MIXUP_PROB 1.0, AUG.MIXUP_MODE 'batch')
        label_smoothing=0.1,  # MP/cfg MODEL.LABEL_SMOOTHING
    ),
    # MaskMix: r ~ Beta(AUG.MASKMIX_ALPHA = 1, 1) per batch, ceil(16·r) cells per sample, partner randperm
    # (MP/utils MaskMix, MP/main index = torch.randperm): the MaskMix defaults of pretrain/mix/mixpro.py
)

# ---------------------------------------------------------------------------------------------- schedule
# MP/main overwrites the yacs values with constants (the linear-scaling lines are commented out):
# TRAIN.BASE_LR = 0.001, TRAIN.WARMUP_LR = 1.0e-06, TRAIN.MIN_LR = 1.0e-05 — for every batch size and GPU count.
base_lr = 1e-3
warmup_lr = 1e-6
min_lr = 1e-5
warmup_epochs = 20     # MP/cfg TRAIN.WARMUP_EPOCHS
epochs = 300           # MP/cfg TRAIN.EPOCHS (no cooldown: Swin's scheduler)
# Gradient clipping: MP/cfg TRAIN.CLIP_GRAD 5.0 — intended; but on its default path (--amp-opt-level O1: GradScaler)
# MP/main calls clip_grad_norm_ *after* scaler.step(optimizer), so the released code never clips (its O0 path —
# still under autocast, without GradScaler — clips before the step). We follow the intended 5.0;
# `optim_wrapper = dict(clip_grad=None)` in a leaf is the run as released.
clip_grad_max_norm = 5.0
optim_wrapper = dict(
    # MP/main: the forward runs under torch.cuda.amp autocast (fp16) on every path, with GradScaler by default
    # (O1): add tools/train.py --amp for that (AmpOptimWrapper); this config alone trains in float32
    type='OptimWrapper',
    optimizer=dict(type='AdamW',             # MP/cfg TRAIN.OPTIMIZER.NAME 'adamw'
                   lr=base_lr,
                   weight_decay=0.05,        # MP/cfg TRAIN.WEIGHT_DECAY
                   betas=(0.9, 0.999),       # MP/cfg TRAIN.OPTIMIZER.BETAS
                   eps=1e-8),                # MP/cfg TRAIN.OPTIMIZER.EPS
    # MP/opt set_weight_decay: no decay on 1-D params, '.bias', and model.no_weight_decay() =
    # {pos_embed, cls_token, dist_token}
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0),
                                    '.dist_token': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=clip_grad_max_norm, norm_type=2),
)
# MP/sched: timm CosineLRScheduler(t_initial=EPOCHS·n_iter, warmup_t=WARMUP_EPOCHS·n_iter, t_mul 1, cycle_limit 1,
# t_in_epochs=False): per iteration, cosine from step 0 (warmup_prefix not passed: False), see
# pretrain/schedulers.py. MP/main calls lr_scheduler.step_update(epoch·n_iter + idx) *after* iteration idx, so
# iteration k trains at timm's lr(k - 1): lag=1 (one iteration).
param_scheduler = [
    dict(type='TimmCosineLR', t_initial=epochs, warmup_t=warmup_epochs, warmup_lr_init=warmup_lr, lr_min=min_lr,
         lag=1, by_epoch=True, begin=0, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=1)  # MP/main: validate after every epoch
val_cfg = dict()
test_cfg = dict()
# the lr above belongs to the README's 8 GPUs × 128 (DeiT-B: × 64); --auto-scale-lr rescales from it
auto_scale_lr = dict(base_batch_size=gpus * batch_per_gpu, enable=False)

# ---------------------------------------------------------------------------------------------- runtime
custom_hooks = [dict(type='BackboneExportHook')]  # no EMA: MixPro (Swin's main.py) keeps none
randomness = dict(seed=0, diff_rank_seed=True, deterministic=False)  # MP/cfg SEED 0; MP/main seed = SEED + rank

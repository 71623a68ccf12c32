# Stage-1 (pretraining) runtime: mmengine Runner with the project's 'pretrain' registries.
default_scope = 'pretrain'
# the modules that register MixClassifier, ImageNetFolder(WithLabelMaps), RepeatAugSampler, Accuracy,
# BackboneExportHook, mixers
custom_imports = dict(imports=['pretrain.install_patches',
                               'pretrain.classifier', 'pretrain.data', 'pretrain.label_map_data',
                               'pretrain.metrics', 'pretrain.export', 'pretrain.mixers'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the last 3 epochs (resume) and the best top-1
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# EMA of the weights (TransMix's official configs: decay 0.99996 = mmengine momentum 4e-5; facebookresearch/deit and
# xcit main.py keep one by default too). Off in the common protocol; a leaf config turns it on with
#   custom_hooks = [dict(type='BackboneExportHook'), _base_.ema_hook]
# With EMA on, validation and the exported backbone file use the EMA weights.
ema_hook = dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=4e-5, update_buffers=True,
                priority='ABOVE_NORMAL')
# Writes <work_dir>/backbone.safetensors (no classifier head) at the end of training.
custom_hooks = [dict(type='BackboneExportHook')]

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo on machines without a GPU
)
# Mixing draws and augmentation differ per rank (DeiT: seed + rank); the sampler's shuffle stays in sync
# (mmengine then hands samplers no seed; tools/train.py gives them this one, the same on every rank).
randomness = dict(seed=0, diff_rank_seed=True, deterministic=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True, window_size=50)
# Training curves in TensorBoard (mmengine's TensorboardVisBackend, events in <work_dir>/<timestamp>/vis_data/):
# set True here, or `--cfg-options tensorboard=True`, or `tools/train.py --tensorboard` (mixcore.training_curves;
# needs `pip install tensorboard`).
tensorboard = False
log_level = 'INFO'
load_from = None
resume = False

# Runtime shared by the detection (mmdet) configs: mmdet 3.x default_runtime.
default_scope = 'mmdet'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
# Training curves in TensorBoard (mmengine's TensorboardVisBackend, events in <work_dir>/<timestamp>/vis_data/):
# set True here, or `--cfg-options tensorboard=True`, or `tools/train.py --tensorboard` (mixcore.training_curves;
# needs `pip install tensorboard`).
tensorboard = False
log_level = 'INFO'
# a fixed seed: runs repeat, and a run resumed with --resume continues exactly (see mixcore.hooks); vary it
# with `tools/train.py --seed N`. diff_rank_seed: every rank draws its own augmentation and drop-path masks
# (seed + rank; with one seed all ranks would drop the same paths); the train sampler keeps one shared seed
# (tools/train.py pins it, mixcore.runtime.make_reproducible).
randomness = dict(seed=0, diff_rank_seed=True)
load_from = None
resume = False

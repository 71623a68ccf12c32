# The ADE20K schedule of mmseg's Segmenter configs (configs/segmenter/segmenter_vit-*_8xb1-160k_ade20k-512x512.py:
# schedule_160k + SGD lr 1e-3 momentum 0.9 wd 0): poly (power 0.9) down to mmseg's eta_min 1e-4, 160k iterations.
# The Segmenter code (rstrudel/segmenter segm/train.py, segm/optim) differs: Nesterov SGD and poly down to 1e-5,
# see docs/RECIPES.md (selectable with --cfg-options: optim_wrapper.optimizer.nesterov=True
# param_scheduler.0.eta_min=1e-5).
optimizer = dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=160000, by_epoch=False),
]
# the lr belongs to a total batch of 8 (mmseg 8xb1; Segmenter segm/config.yml ade20k batch_size 8)
auto_scale_lr = dict(base_batch_size=8, enable=False)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)

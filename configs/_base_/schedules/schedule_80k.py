# Pascal Context schedule: as schedule_160k.py (mmseg: SGD lr 1e-3, poly power 0.9 down to mmseg's 1e-4; the
# Segmenter code: Nesterov, down to 1e-5, docs/RECIPES.md), 80k iterations.
_base_ = './schedule_160k.py'
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=80000, by_epoch=False),
]
# the lr belongs to a total batch of 16 (Segmenter paper / segm/config.yml pascal_context batch_size 16, lr 1e-3)
auto_scale_lr = dict(base_batch_size=16, enable=False)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))

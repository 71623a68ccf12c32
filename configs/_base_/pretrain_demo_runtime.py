# Stage-1 runtime for the CPU demos: log often, a checkpoint every epoch (a killed demo run continues with
# --resume; only the latest is kept), no "best" copy.
_base_ = './default_runtime.py'
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(_delete_=True, type='CheckpointHook', interval=1, max_keep_ckpts=1, save_last=True),
)
env_cfg = dict(cudnn_benchmark=False)
# `tensorboard = False` (training curves in TensorBoard) comes from default_runtime.py; the demo turns it on when
# the tensorboard package is installed.

_base_ = [
    '../_base_/models/pvt-nano.py', '../_base_/methods/baseline.py',
    '../_base_/datasets/imagenet_demo_128.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# the DeiT baseline (Mixup/CutMix switch) (configs/_base_/methods/baseline.py) on the tiny pvt-nano and the demo ImageNet tree.
model = dict(mixer=_base_.mixer)

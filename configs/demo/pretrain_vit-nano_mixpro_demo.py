_base_ = [
    '../_base_/models/vit-nano.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_demo.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# MixPro (configs/_base_/methods/mixpro.py) on the tiny vit-nano and the demo ImageNet tree.
model = dict(mixer=_base_.mixer)

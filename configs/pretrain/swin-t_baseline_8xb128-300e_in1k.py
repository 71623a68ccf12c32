_base_ = [
    '../_base_/models/swin-t.py', '../_base_/methods/baseline.py',
    '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# swin-t pretrained with the DeiT baseline (Mixup/CutMix switch), common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

_base_ = [
    '../_base_/models/deit-s.py', '../_base_/methods/baseline.py',
    '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e.py', '../_base_/default_runtime.py',
]
# deit-s pretrained with the DeiT baseline (Mixup/CutMix switch), common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

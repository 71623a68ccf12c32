_base_ = [
    '../_base_/models/cait-xxs36.py', '../_base_/methods/baseline.py',
    '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# cait-xxs36 pretrained with the DeiT baseline (Mixup/CutMix switch), common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

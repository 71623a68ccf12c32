_base_ = [
    '../_base_/models/xcit-t24.py', '../_base_/methods/baseline.py',
    '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e_xcit.py', '../_base_/default_runtime.py',
]
# xcit-t24 pretrained with the DeiT baseline (Mixup/CutMix switch), common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

_base_ = [
    '../_base_/models/xcit-s12.py', '../_base_/methods/transmix.py',
    '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e_xcit.py', '../_base_/default_runtime.py',
]
# xcit-s12 pretrained with TransMix, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

_base_ = [
    '../_base_/models/cait-xxs24.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# cait-xxs24 pretrained with MixPro, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

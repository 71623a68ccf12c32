_base_ = [
    '../_base_/models/deit-b.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e.py', '../_base_/default_runtime.py',
]
# deit-b pretrained with MixPro, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

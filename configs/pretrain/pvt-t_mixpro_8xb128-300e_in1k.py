_base_ = [
    '../_base_/models/pvt-t.py', '../_base_/methods/mixpro.py',
    '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt.py', '../_base_/default_runtime.py',
]
# pvt-t pretrained with MixPro, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

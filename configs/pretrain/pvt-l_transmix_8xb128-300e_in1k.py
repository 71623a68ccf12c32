_base_ = [
    '../_base_/models/pvt-l.py', '../_base_/methods/transmix.py',
    '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt-clip.py', '../_base_/default_runtime.py',
]
# pvt-l pretrained with TransMix, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer)

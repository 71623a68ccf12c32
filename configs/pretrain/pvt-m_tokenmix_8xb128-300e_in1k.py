_base_ = [
    '../_base_/models/pvt-m.py', '../_base_/methods/tokenmix.py',
    '../_base_/datasets/imagenet_bs128_label-maps.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt-clip.py', '../_base_/default_runtime.py',
]
# pvt-m pretrained with TokenMix, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer, loss=_base_.loss)

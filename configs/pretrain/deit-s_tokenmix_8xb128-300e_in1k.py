_base_ = [
    '../_base_/models/deit-s.py', '../_base_/methods/tokenmix.py',
    '../_base_/datasets/imagenet_bs128_label-maps.py',
    '../_base_/schedules/imagenet_adamw_300e.py', '../_base_/default_runtime.py',
]
# deit-s pretrained with TokenMix, common protocol (README "Recipes").
model = dict(mixer=_base_.mixer, loss=_base_.loss)

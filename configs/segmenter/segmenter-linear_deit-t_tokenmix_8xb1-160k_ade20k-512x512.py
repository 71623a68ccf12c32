# Table C: as segmenter-linear_deit-t_8xb1-160k_ade20k-512x512, DeiT-T pretrained with TokenMix
_base_ = './segmenter-linear_deit-t_8xb1-160k_ade20k-512x512.py'
pretrained = 'checkpoints/deit-t_tokenmix.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))

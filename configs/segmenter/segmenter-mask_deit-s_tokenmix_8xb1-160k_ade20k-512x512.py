# Table C: as segmenter-mask_deit-s_8xb1-160k_ade20k-512x512, DeiT-S pretrained with TokenMix
_base_ = './segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py'
pretrained = 'checkpoints/deit-s_tokenmix.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))
table_row = dict(method='tokenmix')

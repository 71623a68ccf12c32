# Table C: as segmenter-mask_deit-b_8xb1-160k_ade20k-512x512, DeiT-B pretrained with TokenMix
_base_ = './segmenter-mask_deit-b_8xb1-160k_ade20k-512x512.py'
pretrained = 'checkpoints/deit-b_tokenmix.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))
table_row = dict(method='tokenmix')

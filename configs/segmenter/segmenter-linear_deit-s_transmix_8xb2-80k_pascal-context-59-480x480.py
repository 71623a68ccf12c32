# Table A: as segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480, DeiT-S pretrained with TransMix
_base_ = './segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480.py'
pretrained = 'checkpoints/deit-s_transmix.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))
table_row = dict(method='transmix')

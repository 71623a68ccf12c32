# as segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480, with DeiT-T
_base_ = './segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480.py'
pretrained = 'checkpoints/deit-t_baseline.safetensors'
model = dict(
    backbone=dict(arch='deit_tiny_patch16_224', checkpoint=pretrained),
    decode_head=dict(in_channels=192, channels=192))
table_row = None  # not a row of table A

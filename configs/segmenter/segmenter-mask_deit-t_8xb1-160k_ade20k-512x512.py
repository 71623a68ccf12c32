# as segmenter-mask_deit-s_8xb1-160k_ade20k-512x512, with DeiT-T
_base_ = './segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py'
pretrained = 'checkpoints/deit-t_baseline.safetensors'
model = dict(
    backbone=dict(arch='deit_tiny_patch16_224', checkpoint=pretrained),
    decode_head=dict(in_channels=192, channels=192, embed_dims=192, num_heads=3))
table_row = dict(model='deit-t')

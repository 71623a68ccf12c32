# as segmenter-mask_deit-s_8xb1-160k_ade20k-512x512, with DeiT-B
_base_ = './segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py'
pretrained = 'checkpoints/deit-b_baseline.safetensors'
model = dict(
    backbone=dict(arch='deit_base_patch16_224', checkpoint=pretrained),
    decode_head=dict(in_channels=768, channels=768, embed_dims=768, num_heads=12))
table_row = dict(model='deit-b')

# Table A with MixPro's own DeiT-S: as segmenter-linear_deit-s_mixpro_8xb2-80k_pascal-context-59-480x480, on the
# 14-px-patch DeiT-S that MixPro's configs train (deit_small_patch14_224: 16x16 tokens at 224; pretrain with
# configs/pretrain/deit-s_mixpro-official_8xb128-300e_in1k.py). The 480 crop is padded to whole patches (490 px:
# 35x35 tokens); the file's 16x16 position embedding is resized to that grid when loading (bicubic).
_base_ = './segmenter-linear_deit-s_mixpro_8xb2-80k_pascal-context-59-480x480.py'
pretrained = 'checkpoints/deit-s-p14_mixpro-official.safetensors'
model = dict(backbone=dict(arch='deit_small_patch14_224', checkpoint=pretrained))

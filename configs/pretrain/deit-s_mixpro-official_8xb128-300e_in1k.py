# OFFICIAL FAMILY (MixPro as its official code ran it): DeiT-S with 14-px patches (deit_small_patch14_224, 16x16 tokens
# at 224), fistyee/MixPro configs/deit/deit_small_patch14_mask56_224_alpha1.yaml + config.py + main.py:
# 8 GPUs x 128, lr 1e-3, warmup 20, 300 epochs, MaskMix 56 px with p 0.5, random erasing 0.25, no EMA.
# Every value and its source: configs/_base_/official/mixpro_deit_in1k.py. The COMMON-PROTOCOL config of the same
# method (16-px DeiT, one recipe for every method): deit-s_mixpro_8xb128-300e_in1k.py.
_base_ = '../_base_/official/mixpro_deit_in1k.py'

pal = False  # MP/yaml AUG.PAL_ATTN: False (the released run); True: the paper's MaskMix + PAL
model = dict(
    arch='deit_small_patch14_224',  # MP/yaml MODEL.DEIT: PATCH_SIZE 14, the DeiT-S width/heads, depth 12
    mixer=dict(pal=pal))

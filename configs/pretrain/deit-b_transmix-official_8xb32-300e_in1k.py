# OFFICIAL FAMILY (TransMix as its official code ran it): DeiT-B, Beckschen/TransMix configs/deit_b_transmix.yaml
# + train.py defaults, 8 GPUs x 32 = 256, lr 1e-3, 300 epochs + 10 cooldown, EMA, switch prob 0.8. Every value
# and its source: configs/_base_/official/transmix_deit_in1k.py. The COMMON-PROTOCOL config of the same method
# (one DeiT recipe for every method, to compare methods like with like): deit-b_transmix_8xb128-300e_in1k.py.
_base_ = '../_base_/official/transmix_deit_in1k.py'
# TM/B model: deit_base_patch16_224_return_attn = timm's DeiT-B + the last block's attention (our probe)
model = dict(arch='deit_base_patch16_224')

use_ema = True  # TM/B model_ema: True (False: no EMA; validation and the exported backbone use the raw weights)
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

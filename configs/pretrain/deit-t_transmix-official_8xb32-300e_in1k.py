# OFFICIAL FAMILY (TransMix as its official code ran it): DeiT-T. The TransMix repository releases no DeiT-T config
# (nor a deit_tiny *_return_attn model): this is its train.py with the values of configs/deit_b_transmix.yaml, the
# config whose optimisation values are DeiT's own (wd 0.05, warmup 5) — 8 GPUs x 32 = 256, lr 1e-3, 300 epochs
# + 10 cooldown, EMA, switch prob 0.8. Every value and its source: configs/_base_/official/transmix_deit_in1k.py.
# The COMMON-PROTOCOL config of the same method: deit-t_transmix_8xb128-300e_in1k.py.
_base_ = '../_base_/official/transmix_deit_in1k.py'
model = dict(arch='deit_tiny_patch16_224')

use_ema = True
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

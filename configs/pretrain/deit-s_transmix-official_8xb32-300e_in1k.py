# OFFICIAL FAMILY (TransMix as its official code ran it): DeiT-S, Beckschen/TransMix configs/deit_s_transmix.yaml
# + train.py defaults: 8 GPUs x 32 = 256, lr 1e-3, wd 0.03, warmup 20, 300 epochs + 10 cooldown, EMA. Every other
# value and its source: configs/_base_/official/transmix_deit_in1k.py (TM/S = deit_s_transmix.yaml).
# The COMMON-PROTOCOL config of the same method: deit-s_transmix_8xb128-300e_in1k.py.
_base_ = '../_base_/official/transmix_deit_in1k.py'

# Switch prob: TM/S spells the key `mixup-switch-prob: 0.8`; train.py's parser stores it under that (unused)
# name, so `mixup_switch_prob` keeps its default 0.5 and the released DeiT-S run used 0.5. The intended value is
# 0.8 (the value written, and the key DeiT-B's yaml spells correctly); 0.5 = the run as released.
switch_prob = 0.8
warmup_epochs = 20  # TM/S warmup_epochs: 20
model = dict(
    arch='deit_small_patch16_224',  # TM/S model: deit_small_patch16_224_return_attn
    mixer=dict(switch_prob=switch_prob))
optim_wrapper = dict(optimizer=dict(weight_decay=0.03))  # TM/S weight_decay: 3e-2
param_scheduler = [
    dict(type='TimmCosineLR', t_initial=_base_.epochs, warmup_t=warmup_epochs, warmup_lr_init=_base_.warmup_lr,
         lr_min=_base_.min_lr, by_epoch=True, begin=0, convert_to_iter_based=False),
]

use_ema = True  # TM/S model_ema: True, model_ema_decay: 0.99996
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

# COMMON PROTOCOL: one recipe for every method (DeiT's: 8 GPUs x 128, lr 1e-3, repeated augmentation, random
# erasing 0.25, no EMA; docs/paper_facts.md#pretraining-recipe), so that methods compare like with like. The OFFICIAL
# family (configs/pretrain/*-official_*.py, README "Recipes") runs a method as its official code did.
_base_ = [
    '../_base_/models/pvt-t.py', '../_base_/datasets/imagenet_bs128.py',
    '../_base_/schedules/imagenet_adamw_300e_pvt.py', '../_base_/default_runtime.py',
]
# TransMix (CVPR 2022): the DeiT Mixup/CutMix switch; CutMix batches get the label weight
# λ = (λ_area + λ_attn)/2 (label='attn': λ_attn alone, Eq. 7), λ_attn = last-block class attention in the box.
# (The official TransMix configs use switch_prob=0.8, i.e. TransMix on 80 % of the batches: the official family,
# <model>_transmix-official_8xb32-300e_in1k.py; this common protocol keeps DeiT's 0.5.)
model = dict(mixer=dict(type='transmix_recipe', mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, label='mean',
                        label_smoothing=0.1))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

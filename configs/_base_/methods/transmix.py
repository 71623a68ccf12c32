# METHOD BASE — TransMix (CVPR 2022): the DeiT Mixup/CutMix switch (baseline.py) whose CutMix batches get the label
# weight λ = (λ_area + λ_attn)/2 (label='mean'; label='attn': λ_attn alone, the paper's Eq. 7), λ_attn = the last
# (class-attention) block's class→patch attention inside the pasted box (docs/paper_facts.md#transmix).
# switch_prob: 0.5 here, DeiT's value, so that every method runs one common recipe; the official TransMix DeiT-B
# config uses 0.8 (TransMix on 80 % of the batches; Beckschen/TransMix configs/deit_b_transmix.yaml), which the
# official family configs/pretrain/<model>_transmix-official_8xb32-300e_in1k.py keeps. Needs a class token (ViT, DeiT, CaiT, XCiT).
mixer = dict(type='transmix_recipe', mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, label='mean',
             label_smoothing=0.1)

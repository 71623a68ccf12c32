# METHOD BASE — TokenMix (ECCV 2022): with p 0.5 token-level block masks (λ = 0.5 of the tokens, blocks ≥ 14 tokens),
# else Mixup (α 0.8); each image's label weight = the mass of its ground-truth activation map that it keeps, read
# from teacher label maps cropped with the image (the paper's source: NFNet-F6 maps in the TokenLabeling format;
# the leaf's data base or train_dataloader names the folder, _base_/datasets/imagenet_bs128_label-maps.py says where
# they come from). Options: source='attention' (the model's own class attention on the clean images, OpenMixup's
# substitute: 1.31× a CutMix step; class-token models only), source='teacher' (a CAMTeacher run each step).
# docs/paper_facts.md#tokenmix. The official TokenMix recipe: configs/pretrain/deit-*_tokenmix-official_*.py.
mixer = dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='label_maps',
             variant='paper', label_smoothing=0.1)
# BCE on the dense mixed targets (paper Table 11: +0.5 top-1 over CE on DeiT-S); leaves: model = dict(mixer=
# _base_.mixer, loss=_base_.loss)
loss = dict(type='BinaryCrossEntropy', smoothing=0.0)

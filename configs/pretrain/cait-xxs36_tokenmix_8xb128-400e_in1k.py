_base_ = [
    '../_base_/models/cait-xxs36.py', '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# TokenMix (ECCV 2022) on the model's own recipe: token block masks (λ = 0.5, blocks ≥ 14 tokens) with p 0.5 else
# Mixup; label weights = mass of each image's ground-truth activation map it keeps, from teacher label maps
# (below). BCE (paper Table 11).
# Label maps (the paper's label source, as every TokenMix config): the teacher's dense map of each training image,
# cropped with the image and resized to this model's token grid (pretrain/label_map_data.py; maps in the TokenLabeling
# format, _base_/datasets/imagenet_bs128_label-maps.py says where they come from). source='attention' (the model's own
# class attention, OpenMixup's substitute, CaiT/XCiT only) and source='teacher' (a local CAMTeacher run each step)
# are options.
label_map_root = 'data/imagenet/label_top5_train_nfnet'
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps', label_map_root=label_map_root))
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='label_maps',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

# EMA: facebookresearch/deit main.py keeps a ModelEma (0.99996) by default; off here as in every pretraining
# config of the project (use_ema = True turns it on).
use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

_base_ = [
    '../_base_/models/vit-nano.py', '../_base_/datasets/imagenet_demo.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# The TokenMix mixer and BCE loss of configs/pretrain/*_tokenmix_*.py on a tiny model and the demo ImageNet tree
# (8×8 tokens: 32 pasted tokens in blocks of ≥ 14), labelled from teacher label maps cropped with the images.
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='label_maps',
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

# Label maps (the paper's source): the demo baseline ViT as teacher, made by `tools/make_label_maps.py` (the demo
# does it: tools/reproduce.py --demo, step 'label-maps'); another folder: train_dataloader.dataset.label_map_root=DIR
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps',
                                     label_map_root='work_dirs/demo/label_maps/vit-nano_baseline'))

use_ema = False  # True: EMA of the weights, used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])

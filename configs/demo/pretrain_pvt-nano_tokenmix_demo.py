_base_ = [
    '../_base_/models/pvt-nano.py', '../_base_/datasets/imagenet_demo_128.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# TokenMix on the 4×4 stage-4 grid of the demo PVT: the paper's blocks of ≥ 14 tokens cannot paste 8 of 16
# tokens, so blocks here have ≥ 4 tokens; and soft-target CE instead of the recipe's BCE, with which this tiny
# PVT stays at the class prior within the 144 demo steps (top-1 20 % vs 100 % with CE on the demo tree).
# Otherwise the recipe of configs/pretrain/*_tokenmix_*.py (p 0.5 else Mixup α 0.8, λ = 0.5, teacher label maps
# RoIAligned to the 4×4 grid; the maps cover whole images, so the ViT teacher's serve the PVT at 128² too).
model = dict(
    method='tokenmix',
    mixer=dict(type='MixSwitch', probs=[0.5, 0.5], mixers=[
        dict(type='Mixup', alpha=0.8, label_smoothing=0.1),
        dict(type='TokenMix', mask_ratio=0.5, min_block_tokens=4, source='label_maps', label_smoothing=0.1),
    ]),
    loss=dict(type='SoftTargetCrossEntropy'))

# Label maps (the paper's source): the demo baseline ViT as teacher, made by `tools/make_label_maps.py` (the demo
# does it: tools/reproduce.py --demo, step 'label-maps'); another folder: train_dataloader.dataset.label_map_root=DIR
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps',
                                     label_map_root='work_dirs/demo/label_maps/vit-nano_baseline'))

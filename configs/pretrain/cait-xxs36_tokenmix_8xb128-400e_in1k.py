_base_ = [
    '../_base_/models/cait-xxs36.py', '../_base_/methods/tokenmix.py',
    '../_base_/datasets/imagenet_bs128_full-crop.py',
    '../_base_/schedules/imagenet_adamw_400e.py', '../_base_/default_runtime.py',
]
# cait-xxs36 pretrained with TokenMix, common protocol (README "Recipes").
# TokenMix reads teacher label maps (the paper's source; _base_/datasets/imagenet_bs128_label-maps.py says where
# they come from); this model's data base has none, so the leaf names the folder.
label_map_root = 'data/imagenet/label_top5_train_nfnet'
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps', label_map_root=label_map_root))
model = dict(mixer=_base_.mixer, loss=_base_.loss)

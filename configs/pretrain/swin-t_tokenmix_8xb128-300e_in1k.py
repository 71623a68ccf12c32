_base_ = [
    '../_base_/models/swin-t.py', '../_base_/methods/tokenmix.py',
    '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# swin-t pretrained with TokenMix, common protocol (README "Recipes").
# On Swin: blocks on the 7×7 last-stage grid of 32-px tokens (official TokenMix: a 14×14 grid of 16-px tokens
# for every model); no class token, so the labels come from the label maps, never from attention.
# TokenMix reads teacher label maps (the paper's source; _base_/datasets/imagenet_bs128_label-maps.py says where
# they come from); this model's data base has none, so the leaf names the folder.
label_map_root = 'data/imagenet/label_top5_train_nfnet'
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps', label_map_root=label_map_root))
model = dict(mixer=_base_.mixer, loss=_base_.loss)

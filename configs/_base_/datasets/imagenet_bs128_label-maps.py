# imagenet_bs128.py with teacher label maps for TokenMix (the paper's label source, docs/paper_facts.md#official-label-maps):
# each training sample carries its image's dense label map, and the training transform records the random-resized
# crop box and flip, so TokenMix can RoIAlign the map to the crop at the token grid (pretrain/label_map_data.py).
# Maps: TokenLabeling format (<root>/<class>/<image stem>.pt, 2×k×H×W top-k scores + class indices). The official
# TokenMix runs read the NFNet-F6 maps the TokenLabeling authors published ("label_top5_train_nfnet",
# Sense-X/TokenMix exp/deit_small/run.sh --label_dir); download them there, or make maps with any local teacher:
#   python tools/make_label_maps.py data/imagenet/train data/imagenet/label_top5_train_nfnet --model ... --checkpoint ...
# Another folder: --cfg-options train_dataloader.dataset.label_map_root=DIR
_base_ = './imagenet_bs128.py'
label_map_root = 'data/imagenet/label_top5_train_nfnet'
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps', label_map_root=label_map_root))

_base_ = [
    '../_base_/models/vit-nano.py', '../_base_/methods/tokenmix.py',
    '../_base_/datasets/imagenet_demo.py',
    '../_base_/schedules/imagenet_demo_adamw.py', '../_base_/pretrain_demo_runtime.py',
]
# TokenMix (configs/_base_/methods/tokenmix.py: mixer and BCE loss) on the tiny vit-nano (8×8 tokens: 32 pasted
# tokens in blocks of ≥ 14) and the demo ImageNet tree, labelled from teacher label maps cropped with the images.
model = dict(mixer=_base_.mixer, loss=_base_.loss)

# Label maps (the paper's source): the demo baseline ViT as teacher, made by `tools/make_label_maps.py` (the demo
# does it: tools/reproduce.py --demo, step 'label-maps'); another folder: train_dataloader.dataset.label_map_root=DIR
train_dataloader = dict(dataset=dict(type='ImageNetFolderWithLabelMaps',
                                     label_map_root='work_dirs/demo/label_maps/vit-nano_baseline'))

# Segmenter (linear decoder, DeiT-S) on your own segmentation data: copy this file, set `classes`, `data_root`
# and `pretrained`, and train with tools/train.py (docs/OWN_DATA.md). Recipe: the Pascal Context one of
# configs/segmenter/segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480.py (mmseg's Segmenter recipe).
_base_ = [
    '../_base_/models/segmenter_vit_linear.py', '../_base_/datasets/custom_seg.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_80k.py'
]
# your classes, in the order of the label values: value i in a label PNG is classes[i]; 255 is ignored
classes = ('background', 'road', 'car')
data_root = 'data/my_seg'
# the pretrained backbone: a stage-1 backbone file, an official timm/DeiT .pth or an mmengine checkpoint
pretrained = 'checkpoints/deit-s_baseline.safetensors'
crop_size = (480, 480)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size, checkpoint=pretrained),
    decode_head=dict(num_classes=len(classes)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader

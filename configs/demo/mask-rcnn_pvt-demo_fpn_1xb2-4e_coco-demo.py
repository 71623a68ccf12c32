# Demo: Mask R-CNN + FPN with the small PVT v1 (`nano`: 4 blocks, dims 32/64/128/256) on the generated demo
# COCO, trains and evaluates (bbox + segm AP) in minutes on 2 CPU cores. Same detector as the COCO configs,
# narrower heads; random backbone unless `pretrained` names a demo backbone file (stage-1 demo export).
_base_ = [
    '../_base_/models/mask-rcnn_pvt-s_fpn.py', '../_base_/datasets/coco_instance_demo.py',
    '../_base_/schedules/schedule_1x_adamw.py', '../_base_/det_runtime.py'
]
pretrained = None
num_classes = 10  # len(classes) of coco_instance_demo.py
channels = 64
model = dict(
    # pretrain_img_size: the stage-1 demo (configs/demo/pretrain_pvt-nano_*) trains pvt_nano at 128²
    backbone=dict(arch='nano', checkpoint=pretrained, pretrain_img_size=128, drop_path_rate=0.0),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_convs=2, in_channels=channels, conv_out_channels=channels, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.001))
# a checkpoint every epoch (a killed demo run continues with --resume); only the latest is kept
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=1))
log_processor = dict(window_size=10)

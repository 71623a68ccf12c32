# Mask R-CNN + FPN (PVT-S) on your own COCO-format instance annotations (e.g. a labelme COCO export): copy this
# file, set `classes`, `data_root`, the file names and `pretrained`; check the annotation file first with
# `python tools/check_coco_annotations.py FILE` (docs/OWN_DATA.md). Recipe: the PVT-S Table B config it inherits
# (official PVT recipe: AdamW lr 2e-4, 12 epochs, 1333x800).
_base_ = ['../mask_rcnn/mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py']
# the file's category names, in the file's order (CheckedCocoDataset refuses names missing from the file or in
# another order: mmdet numbers the labels in the file's order)
classes = ('cat', 'dog')
data_root = 'data/my_coco/'
train_ann, val_ann = 'annotations/instances_train.json', 'annotations/instances_val.json'
pretrained = 'checkpoints/pvt-s_baseline.safetensors'
metainfo = dict(classes=classes)
model = dict(
    backbone=dict(checkpoint=pretrained),
    roi_head=dict(bbox_head=dict(num_classes=len(classes)), mask_head=dict(num_classes=len(classes))))
# degenerate_boxes='raise': boxes mmdet would drop (under 1 px, zero area) are errors naming them (the COCO 2017
# base drops the known ones of train2017 with a warning)
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=train_ann,
                                     data_prefix=dict(img='images/train/'), degenerate_boxes='raise'))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=val_ann,
                                   data_prefix=dict(img='images/val/'), degenerate_boxes='raise'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator
table_row = None  # your data: no row of the papers' tables

# Mask R-CNN 1x + FPN, PVT-M (baseline pretraining), COCO 2017; the recipe of mask-rcnn_pvt-s_fpn_8xb2-1x_coco
# with backbone drop path 0 as the official code (whai362/PVT detection/pvt.py: pvt_medium passes no
# drop_path_rate, the class default is 0.; T/S pass 0.1). mmdet's own PVT configs use 0.1 for every size.
_base_ = './mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'
pretrained = 'checkpoints/pvt-m_baseline.safetensors'
model = dict(backbone=dict(arch='medium', checkpoint=pretrained, drop_path_rate=0.0))
table_row = None  # not a row of table B

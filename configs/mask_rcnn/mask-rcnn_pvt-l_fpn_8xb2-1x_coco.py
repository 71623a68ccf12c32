# Mask R-CNN 1x + FPN, PVT-L (baseline pretraining), COCO 2017; the recipe of mask-rcnn_pvt-s_fpn_8xb2-1x_coco.
_base_ = './mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'
pretrained = 'checkpoints/pvt-l_baseline.safetensors'
model = dict(backbone=dict(arch='large', checkpoint=pretrained))
table_row = None  # not a row of table B

# Mask R-CNN 1x + FPN, PVT-M (baseline pretraining), COCO 2017; the recipe of mask-rcnn_pvt-s_fpn_8xb2-1x_coco.
_base_ = './mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'
pretrained = 'checkpoints/pvt-m_baseline.safetensors'
model = dict(backbone=dict(arch='medium', checkpoint=pretrained))
table_row = None  # not a row of table B

# Table B: as mask-rcnn_pvt-s_fpn_8xb2-1x_coco, PVT-S pretrained with TransMix
_base_ = './mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'
pretrained = 'checkpoints/pvt-s_transmix.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))
table_row = dict(method='transmix')

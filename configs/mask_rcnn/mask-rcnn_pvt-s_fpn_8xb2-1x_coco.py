# Table B: Mask R-CNN 1x + FPN, PVT-S (DeiT-recipe baseline pretraining: Mixup/CutMix), COCO 2017.
# Official PVT recipe: AdamW lr 2e-4, wd 1e-4, 12 epochs, steps 8/11, warmup 500 iterations,
# batch 16 (8 GPUs x 2 images), single scale 1333x800.
_base_ = [
    '../_base_/models/mask-rcnn_pvt-s_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_adamw.py', '../_base_/det_runtime.py'
]
# the pretrained backbone: a stage-1 backbone file, an official PVT .pth or an mmengine checkpoint
pretrained = 'checkpoints/pvt-s_baseline.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))  # PVT-S: from the model base
# the row of table B (tools/test.py copies it into the results; tools/tables.py reads it)
table_row = dict(table='B', model='pvt-s', method='baseline')

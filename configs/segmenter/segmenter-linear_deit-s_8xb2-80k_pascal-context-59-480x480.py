# Segmenter, linear decoder, DeiT-S, Pascal Context 59, 480x480 crops, 80k iterations, batch 16 (8 GPUs x 2).
# mmseg's Segmenter recipe; where the Segmenter code differs (Nesterov, eta_min 1e-5, decoder dropout, ADE20K
# stride 512, ...) and the --cfg-options that select its values: docs/RECIPES.md "Stage 2".
_base_ = [
    '../_base_/models/segmenter_vit_linear.py', '../_base_/datasets/pascal_context_59_480x480.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_80k.py'
]
# the pretrained backbone: a stage-1 backbone file, an official timm/DeiT .pth or an mmengine checkpoint
pretrained = 'checkpoints/deit-s_baseline.safetensors'
crop_size = (480, 480)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size, checkpoint=pretrained),
    decode_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
train_dataloader = dict(batch_size=2)
# the row of table A (tools/test.py copies it into the results; tools/tables.py reads it)
table_row = dict(table='A', model='deit-s', method='baseline', decoder='linear')

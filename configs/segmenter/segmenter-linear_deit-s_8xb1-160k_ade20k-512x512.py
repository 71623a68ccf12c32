# Segmenter, linear decoder, DeiT-S, ADE20K 512x512, 160k iterations, batch 8 (8 GPUs x 1).
# mmseg's Segmenter recipe; where the Segmenter code differs (Nesterov, eta_min 1e-5, decoder dropout, ADE20K
# stride 512, ...) and the --cfg-options that select its values: docs/RECIPES.md "Stage 2".
_base_ = [
    '../_base_/models/segmenter_vit_linear.py', '../_base_/datasets/ade20k_512x512.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_160k.py'
]
# the pretrained backbone: a stage-1 backbone file, an official timm/DeiT .pth or an mmengine checkpoint
pretrained = 'checkpoints/deit-s_baseline.safetensors'
model = dict(backbone=dict(checkpoint=pretrained))  # DeiT-S and the 512x512 crop: from the bases
train_dataloader = dict(batch_size=1)

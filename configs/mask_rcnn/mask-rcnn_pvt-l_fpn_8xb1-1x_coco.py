# Mask R-CNN 1x + FPN, PVT-L (baseline pretraining), COCO 2017; the recipe of mask-rcnn_pvt-s_fpn_8xb2-1x_coco
# with the official PVT-L differences (whai362/PVT detection/configs/mask_rcnn_pvt_l_fpn_1x_coco.py):
# 1 image per GPU (data.samples_per_gpu=1: a total batch of 8) and AdamW lr 2e-4 / 1.4 ≈ 1.43e-4; backbone drop
# path 0 (detection/pvt.py: pvt_large passes no drop_path_rate, the class default is 0.).
_base_ = './mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'
pretrained = 'checkpoints/pvt-l_baseline.safetensors'
model = dict(backbone=dict(arch='large', checkpoint=pretrained, drop_path_rate=0.0))
train_dataloader = dict(batch_size=1, num_workers=1)  # official: samples_per_gpu=1, workers_per_gpu=1
optim_wrapper = dict(optimizer=dict(lr=0.0002 / 1.4))  # official: lr=0.0002 / 1.4
auto_scale_lr = dict(base_batch_size=8)  # that lr belongs to 8 GPUs x 1 image
table_row = None  # not a row of table B

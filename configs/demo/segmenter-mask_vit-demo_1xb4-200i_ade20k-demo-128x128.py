# Demo: Segmenter (mask decoder) on a tiny ViT, on the generated demo ADE20K; trains and evaluates on a CPU
# in about a minute. Same code path as configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py.
_base_ = [
    '../_base_/models/segmenter_vit_mask.py', '../_base_/datasets/ade20k_demo.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/schedule_160k.py'
]
# the pretrained backbone (None: random init), e.g. the backbone file of the stage-1 demo run;
# arch + model_kwargs must describe the same network
pretrained = None
arch = 'vit_tiny_patch16_224'
model_kwargs = dict(patch_size=8, embed_dim=96, depth=4, num_heads=3)
data_root = 'data/demo/ade/ADEChallengeData2016'
max_iters = 200
crop_size = (128, 128)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch=arch, img_size=crop_size, checkpoint=pretrained, model_kwargs=model_kwargs, drop_path_rate=0.0),
    decode_head=dict(in_channels=96, channels=96, embed_dims=96, num_heads=3, num_layers=2),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(96, 96)))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# a random-init tiny model needs a livelier optimiser than fine-tuning does
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01, _delete_=True))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    # every 50 iterations (a killed demo run continues with --resume); only the latest is kept
    checkpoint=dict(interval=50, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

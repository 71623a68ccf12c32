# Swin's data recipe (microsoft/Swin-Transformer config.py + data/build.py): the DeiT augmentation (RandAugment
# rand-m9-mstd0.5-inc1, colour jitter 0.4, random erasing 0.25 'pixel', bicubic, eval resize 256 / centre crop 224)
# without repeated augmentation (a plain DistributedSampler), 128 per GPU.
_base_ = './imagenet_bs128.py'
train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))

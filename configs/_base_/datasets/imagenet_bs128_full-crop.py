# The DeiT data recipe (imagenet_bs128.py: RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, repeated
# augmentation ×3, 128 per GPU) evaluated at crop ratio 1.0 (resize 224 + centre crop 224), as CaiT and XCiT report:
# facebookresearch/deit README_cait.md "Evaluation transforms" (crop-ratio of 1.0 at test time) and
# facebookresearch/xcit README ("By default we use the --full_crop flag ... crop ratio of 1.0 ... following CaiT").
_base_ = './imagenet_bs128.py'
test_pipeline = [
    dict(type='TimmTransform', input_size=224, is_training=False, interpolation='bicubic', crop_pct=1.0),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

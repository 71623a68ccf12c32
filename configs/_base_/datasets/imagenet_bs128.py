# ImageNet-1k folder tree data/imagenet/{train,val}/<class>/*.JPEG with DeiT's augmentation (timm transforms):
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 ('pixel' mode, 1 erase), bicubic, random-resized crop
# 224, flip; eval: resize 256 (crop_pct 0.875) + centre crop 224. Repeated augmentation ×3. 128 per GPU.
dataset_type = 'ImageNetFolder'
data_root = 'data/imagenet'
img_size = 224

train_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=True, color_jitter=0.4,
         auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1),
]
test_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=False, interpolation='bicubic', crop_pct=0.875),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='RepeatAugSampler', num_repeats=3, shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=192,  # DeiT evaluates with 1.5 × the training batch
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The demo ImageNet tree written by `python tools/make_demo_data.py --out data/demo` (10 shape classes,
# 96² images; --size tiny: 64²) with the DeiT augmentation of imagenet_bs128.py at 64² (eval: crop_pct 0.875).
# Another tree: --cfg-options train_dataloader.dataset.data_root=DIR val_dataloader.dataset.data_root=DIR
dataset_type = 'ImageNetFolder'
data_root = 'data/demo/imagenet'
img_size = 64

train_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=True, color_jitter=0.4,
         auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1),
]
test_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=False, interpolation='bicubic', crop_pct=0.875),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    # DeiT's sampler; one repeat on the small demo set (the recipe's 3 repeats would show each epoch a third of it)
    sampler=dict(type='RepeatAugSampler', num_repeats=1, selected_round=0, shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

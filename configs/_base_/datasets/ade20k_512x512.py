# ADE20K (150 classes), 512x512 crops; sliding-window test at (2048, 512). mmseg's ADE20KDataset layout.
# CheckedLoadImageFromFile / CheckSegLabels (mixseg.datasets, imported by the model base): mmcv's loader and
# a label-range check that refuse truncated images and out-of-range labels with the file named.
num_classes = 150
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
img_scale = (2048, 512)
crop_size = (512, 512)
train_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mixseg.CheckSegLabels', num_classes=num_classes),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mixseg.CheckSegLabels', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
# "+MS": the test scale times each ratio (as mmseg 0.x / the Segmenter paper), each with and without flip.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(img_scale[0] * r), int(img_scale[1] * r)), keep_ratio=True)
             for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='mixseg.CheckSegLabels', num_classes=num_classes)],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        reduce_zero_label=True,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        reduce_zero_label=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# iou_metrics=['mIoU'] reports aAcc, mIoU and mAcc
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

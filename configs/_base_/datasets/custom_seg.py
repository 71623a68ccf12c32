# Your own segmentation data and classes (mixseg's FolderSegDataset; docs/OWN_DATA.md walks through it).
#   <data_root>/images/{train,val}/<name>.jpg|.jpeg|.png (any case, subfolders allowed)
#   <data_root>/annotations/{train,val}/<name>.png   single-channel label PNG: value i = classes[i], 255 = ignore
# A config inheriting this base names its classes once and passes them on (the label check follows the
# dataset; the head's num_classes is checked against the dataset when training starts):
#   classes = ('background', 'road', 'car')
#   model = dict(decode_head=dict(num_classes=len(classes)))
#   train_dataloader = dict(dataset=dict(metainfo=dict(classes=classes)))
#   val_dataloader = dict(dataset=dict(metainfo=dict(classes=classes)))
#   test_dataloader = val_dataloader
# Labels in ADE20K's convention (0 = unlabelled, class i stored as i + 1): add reduce_zero_label=True to the
# three `dataset=dict(...)`. Protocol: as Pascal Context's base (520x520 scale, 480x480 crops, slide test).
dataset_type = 'FolderSegDataset'
data_root = 'data/my_seg'
img_scale = (520, 520)
crop_size = (480, 480)
train_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's
    dict(type='mixseg.CheckSegLabels'),  # num_classes: the dataset's classes
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='mixseg.CheckSegLabels'),
    dict(type='PackSegInputs'),
]
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
            [dict(type='LoadAnnotations')],
            [dict(type='mixseg.CheckSegLabels')],
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
        data_prefix=dict(img_path='images/train', seg_map_path='annotations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='annotations/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# COCO 2017 instance segmentation (mmdet CocoDataset, boxes + masks), single scale 1333x800, flip;
# bbox and segm AP through mmdet's CocoMetric (pycocotools), as CheckedCocoMetric (mixseg.datasets: the same
# metric, renumbering annotation ids that start at 0, which pycocotools reads as "unmatched").
# CheckedCocoDataset / CheckedLoadImageFromFile (mixseg.datasets) are mmdet's CocoDataset / mmcv's loader
# that refuse broken annotations and truncated images with the file named, instead of skipping or
# decoding them silently; the model base's custom_imports loads them (mmengine forbids the same key in two
# bases of one config). degenerate_boxes='warn': COCO train2017 holds boxes of height 0 (e.g. annotation 918 of
# image 200365, cocodataset/cocoapi issue #355) that mmdet drops; they are dropped as in the official recipe,
# named in one warning (other datasets: the default 'raise' refuses them).
dataset_type = 'CheckedCocoDataset'
data_root = 'data/coco/'
backend_args = None
img_scale = (1333, 800)
train_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # the annotations are loaded after Resize so that the ground truth keeps the original size
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        degenerate_boxes='warn',
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        degenerate_boxes='warn',
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CheckedCocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

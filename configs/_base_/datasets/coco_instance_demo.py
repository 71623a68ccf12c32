# The generated demo COCO (tools/make_demo_data.py --out data/demo): same layout, loader and metric as
# coco_instance.py; the categories are the generated shapes (mixcore.demo_data.COCO_CLASSES, ids 1..10),
# images are ~320x256 and used at that scale; no worker processes. Degenerate boxes are refused (the generated
# data has none; data of one's own given with --data-root is checked strictly).
# Point it elsewhere with tools/train.py / tools/test.py --data-root DIR/
_base_ = './coco_instance.py'
data_root = 'data/demo/coco/'
classes = ('circle', 'square', 'triangle', 'star', 'ring', 'cross', 'diamond', 'hexagon', 'ellipse', 'crescent')
metainfo = dict(classes=classes)
img_scale = (320, 256)
train_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='mixseg.CheckedLoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, filter_cfg=dict(filter_empty_gt=True, min_size=8),
                 degenerate_boxes='raise', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, degenerate_boxes='raise', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

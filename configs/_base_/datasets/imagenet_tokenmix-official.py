# The data of the official TokenMix runs (Sense-X/TokenMix: main.py defaults, exp/deit_small/run.sh, datasets.py
# build_dataset_relabel, relabel/label_transforms_factory.py), on our ImageNet folder tree with label maps.
_base_ = './imagenet_bs128_label-maps.py'
img_size = 224  # run.sh --input-size 224
train_pipeline = [
    dict(type='TimmTransform', input_size=img_size, is_training=True,
         color_jitter=0.4,  # main.py --color-jitter default (unused by timm when RandAugment is on)
         auto_augment='rand-m9-mstd0.5-inc1',  # main.py --aa default
         interpolation='bicubic',  # main.py --train-interpolation default
         re_prob=0.25,  # run.sh --reprob 0.25
         re_mode='pixel', re_count=1),  # main.py --remode / --recount defaults
    # hflip 0.5, scale (0.08, 1), ratio (3/4, 4/3): datasets.py build_dataset_relabel / timm defaults
]
train_dataloader = dict(
    batch_size=128,  # run.sh --batch-size 128 per GPU on 8 GPUs (srun -n 8): total 1024
    num_workers=12,  # run.sh --num_workers 12
    # main.py: --repeated-aug defaults to False -> torch DistributedSampler(shuffle=True), no repeated augmentation
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline),
)
# eval (main.py build_transform): resize int(256 / 224 · 224) = 256 bicubic + centre crop 224 (crop_pct 0.875),
# batch 1.5 × 128 = 192 — as imagenet_bs128.py

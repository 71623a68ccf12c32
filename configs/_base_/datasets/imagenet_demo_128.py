# imagenet_demo.py at 128² (the demo PVT: stride 32 → a 4×4 stage-4 grid for the class attention).
_base_ = './imagenet_demo.py'
img_size = 128
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='TimmTransform', input_size=img_size, is_training=True, color_jitter=0.4,
         auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1),
]))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(type='TimmTransform', input_size=img_size, is_training=False, interpolation='bicubic', crop_pct=0.875),
]))
test_dataloader = val_dataloader

# Demo: linear decoder on the tiny ViT of segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py.
_base_ = './segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=96,
        channels=96,
        num_convs=0,
        concat_input=False,
        num_classes=150,
        dropout_ratio=0.0,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

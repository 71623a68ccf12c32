# Segmenter's linear decoder (a 1x1 classifier on the patch tokens: FCNHead without convolutions) on a timm
# ViT/DeiT (mixseg's MixsegViT backbone). Same backbone and preprocessing as segmenter_vit_mask.py.
_base_ = './segmenter_vit_mask.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=384,
        channels=384,
        num_convs=0,
        concat_input=False,
        num_classes=150,
        dropout_ratio=0.0,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

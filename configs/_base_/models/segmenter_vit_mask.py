# Segmenter with the mask transformer decoder (2 layers) on a timm ViT/DeiT (mixseg's MixsegViT backbone).
# mmseg's head defaults: drop path 0.1, dropout 0 (the Segmenter code: dropout 0.1, no drop path; docs/RECIPES.md).
# Leaves set the backbone (`arch`, `checkpoint`), the decoder width, the classes and the crop size.
# mixseg.datasets: the checked image loader and label check of the dataset bases
custom_imports = dict(imports=['mixseg.install_patches', 'mixseg.backbones.vit', 'mixseg.datasets'],
                      allow_failed_imports=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # DeiT is pretrained with ImageNet mean/std (timm's IMAGENET_DEFAULT_MEAN/STD), in 0..255 here
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='MixsegViT',
        arch='deit_small_patch16_224',
        img_size=(512, 512),
        checkpoint=None,
        out_indices=-1,
        final_norm=True,
        drop_path_rate=0.1,
        interpolate_mode='bicubic'),
    decode_head=dict(
        type='SegmenterMaskTransformerHead',
        in_channels=384,
        channels=384,
        num_classes=150,
        num_layers=2,
        num_heads=6,
        embed_dims=384,
        dropout_ratio=0.0,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    # mmseg's ADE20K sliding window 512 / stride 480 (the Segmenter code: stride 512, docs/RECIPES.md)
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(480, 480)))

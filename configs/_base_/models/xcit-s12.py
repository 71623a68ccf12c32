# XCiT-S12/16 (26M parameters, 4.8 GFLOPs: the table's "XCiT-S" row, baseline 82.0 = README
# xcit_small_12_p16 224): ImageNet-1k classifier; the method config sets the mixer.
# timm's Xcit: convolutional 16-px patch embedding, Fourier position encoding, cross-covariance (XCA) blocks over the
# patches, then 2 class-attention layers (cls_attn_blocks, tokens_norm=True) where the class token enters: the probe
# reads the last one, a 14×14 grid at 224.
model = dict(
    type='MixClassifier',
    arch='xcit_small_12_p16_224',
    num_classes=1000,
    img_size=224,
    drop_path_rate=0.05,  # the same rate in every XCA block: facebookresearch/xcit README
    # ("--model xcit_small_12_p16 --batch-size 128 --drop-path 0.05"), XCiT paper Table B.1
    # LayerScale init η: 1.0 for 12 layers, 1e-5 for 24 (facebookresearch/xcit xcit.py factories, timm's the same)
    model_kwargs=dict(eta=1.0),
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

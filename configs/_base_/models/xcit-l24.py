# XCiT-L24/16 (189M parameters, 36.1 GFLOPs: the table's "XCiT-L" row, baseline 82.9 = README
# xcit_large_24_p16 224): ImageNet-1k classifier; the method config sets the mixer.
# timm's Xcit: convolutional 16-px patch embedding, Fourier position encoding, cross-covariance (XCA) blocks over the
# patches, then 2 class-attention layers (cls_attn_blocks, tokens_norm=True) where the class token enters: the probe
# reads the last one, a 14×14 grid at 224.
model = dict(
    type='MixClassifier',
    arch='xcit_large_24_p16_224',
    num_classes=1000,
    img_size=224,
    drop_path_rate=0.25,  # the same rate in every XCA block: XCiT paper, appendix Table B.1
    # (the repository's files give only S12's, README: --drop-path 0.05)
    # LayerScale init η: 1.0 for 12 layers, 1e-5 for 24 (facebookresearch/xcit xcit.py factories, timm's the same)
    model_kwargs=dict(eta=1e-05),
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

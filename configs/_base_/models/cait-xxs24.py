# CaiT-XXS-24 (12.0M parameters, 2.5 GFLOPs; the TokenMix table's "CaiT-XXS-24", baseline 77.6): ImageNet-1k
# classifier; the method config sets the mixer.
# timm's Cait: 16-px patches, talking-heads self-attention blocks over the patches only, then 2 class-attention
# layers (blocks_token_only) where the class token enters: the probe reads the last one, a 14×14 grid at 224.
model = dict(
    type='MixClassifier',
    arch='cait_xxs24_224',
    num_classes=1000,
    img_size=224,
    # stochastic depth, the same rate in every self-attention block (CaiT paper, Table 1 / appendix: XXS-24 0.05,
    # XXS-36 0.1, S-24 0.1; timm's Cait applies drop_path_rate uniformly as the official cait_models.py)
    drop_path_rate=0.05,
    # LayerScale init ε = 1e-5 for 24/36 layers (CaiT paper §2, facebookresearch/deit cait_models.py init_scale=1e-5)
    model_kwargs=dict(init_values=1e-5),
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

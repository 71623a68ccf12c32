# A tiny ViT for CPU demos (not from a paper): timm VisionTransformer with a class token, patch 8 at 64²
# (8×8 tokens), width 96, depth 4, 3 heads (~0.5M parameters). The kwargs are stored in the backbone file.
model = dict(
    type='MixClassifier',
    arch='vit_tiny_patch16_224',
    model_kwargs=dict(patch_size=8, embed_dim=96, depth=4, num_heads=3),
    num_classes=10,
    img_size=64,
    drop_path_rate=0.1,
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

# DeiT-Tiny (5.7M parameters): ImageNet-1k classifier; the method config sets the mixer.
# timm's DeiT (class token, patch 16, 224²): the class attention grid is 14×14.
model = dict(
    type='MixClassifier',
    arch='deit_tiny_patch16_224',
    num_classes=1000,
    img_size=224,
    drop_path_rate=0.1,
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

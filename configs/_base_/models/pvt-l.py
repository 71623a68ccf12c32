# PVT-Large (61.4M parameters): ImageNet-1k classifier; the method config sets the mixer.
# PVT v1 (pretrain.models.pvt, class token in stage 4): the class attention grid is the 7×7 stage-4 grid (stride 32).
model = dict(
    type='MixClassifier',
    arch='pvt_large',
    num_classes=1000,
    img_size=224,
    drop_path_rate=0.3,  # official PVT v1 configs: 0.3 for Medium/Large (0.1 for Tiny/Small)
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

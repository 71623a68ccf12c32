# PVT-Tiny (13.2M parameters): ImageNet-1k classifier; the method config sets the mixer.
# PVT v1 (pretrain.models.pvt, class token in stage 4): the class attention grid is the 7×7 stage-4 grid (stride 32).
model = dict(
    type='MixClassifier',
    arch='pvt_tiny',
    num_classes=1000,
    img_size=224,
    drop_path_rate=0.1,
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

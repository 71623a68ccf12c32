# A tiny PVT v1 for CPU demos (mixseg's pvt_nano, not from the paper: depths 1-1-1-1, widths 32-64-128-256,
# 1.9M parameters) at 128²: the class attention runs on the 4×4 stage-4 grid (stride 32). Same network as the
# backbone of configs/demo/mask-rcnn_pvt-demo_*.py.
model = dict(
    type='MixClassifier',
    arch='pvt_nano',
    num_classes=10,
    img_size=128,
    drop_path_rate=0.1,
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

# Swin-S (49.6M parameters, 8.7 GFLOPs): ImageNet-1k classifier; the method config sets the mixer.
# timm's SwinTransformer: 4-px patches, window 7, patch merging ×3, global average pooling — no class token.
# Token grid of the labels and masks: the last stage's, 32 px (7×7 at 224). TransMix, PAL and TokenMix's own-attention
# source need a class token and are refused for it (pretrain/classifier.py).
model = dict(
    type='MixClassifier',
    arch='swin_small_patch4_window7_224',
    num_classes=1000,
    img_size=224,
    # stochastic depth, increasing linearly over the blocks (microsoft/Swin-Transformer
    # configs/swin/swin_small_patch4_window7_224.yaml DROP_PATH_RATE; timm's Swin uses the same linear rule)
    drop_path_rate=0.3,
    loss=dict(type='SoftTargetCrossEntropy'),
    data_preprocessor=dict(type='ClsDataPreprocessor'),
)

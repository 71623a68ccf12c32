# Mask R-CNN + FPN (mmdet 3.x mask-rcnn_r50_fpn) with our PVT v1 backbone (mixseg/backbones/pvt.py):
# PVT-S, FPN on the four stage maps (channels 64/128/320/512), drop path 0.1 as the official PVT detection code
# (whai362/PVT detection/pvt.py: pvt_tiny / pvt_small drop_path_rate=0.1; pvt_medium / pvt_large: 0, set by their
# configs).
# Everything else (heads, train/test settings) is mmdet's own model config.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mixseg.install_patches', 'mixseg.backbones.pvt', 'mixseg.datasets'],
                      allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='MixsegPVT',
        arch='small',
        checkpoint=None,  # set by each config from its `pretrained` variable
        pretrain_img_size=224,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1,
        norm_eval=False),
    neck=dict(in_channels=[64, 128, 320, 512]))

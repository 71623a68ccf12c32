# The PVT schedule with gradient clipping at norm 1.0, as the official PVT v1 configs of PVT-Medium/Large
# (whai362/PVT classification/configs/pvt/pvt_{medium,large}.py: clip_grad=1.0; Tiny/Small: none).
_base_ = './imagenet_adamw_300e_pvt.py'
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))

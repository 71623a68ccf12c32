# The DeiT schedule for PVT v1. PVT's no_weight_decay() holds only cls_token (the original PVT code decays the
# position embeddings), and timm's optimizer factory used by the PVT/TransMix/MixPro training scripts follows
# the model's list: so here the pos_embed{1..4} are decayed, the class token, norms and biases are not.
_base_ = './imagenet_adamw_300e.py'
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, **{'.cls_token': dict(decay_mult=0.0)})))

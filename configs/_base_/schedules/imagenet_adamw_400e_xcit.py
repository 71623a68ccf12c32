# The CaiT/XCiT 400-epoch schedule with XCiT's weight-decay exclusions. XCiT's no_weight_decay() is
# {'pos_embed', 'cls_token'}, but its pos_embed is a module (Fourier features + a 1×1 conv): timm's optimizer factory
# (used by facebookresearch/xcit main.py) matches parameter names, so the conv weight pos_embed.token_projection.weight
# is decayed there; only cls_token, norms and biases are not. '.pos_embed' must therefore not be a custom key here.
_base_ = './imagenet_adamw_400e.py'
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, **{'.cls_token': dict(decay_mult=0.0)})))

# The CaiT/XCiT 400-epoch schedule with XCiT's weight-decay exclusions. The official xcit.py's no_weight_decay() is
# {'pos_embed', 'cls_token', 'dist_token'}, but its pos_embed is a module (Fourier features + a 1×1 conv) and the
# optimizer factory of its timm 0.4.9 (facebookresearch/xcit main.py create_optimizer) matches exact parameter names,
# so the conv weight pos_embed.token_projection.weight (and XCA's temperature) is decayed there; only cls_token, norms
# and biases are not. '.pos_embed' must therefore not be a custom key here. (timm 1.0.31's Xcit lists 'pos_embed.*'
# and so would not decay the conv weight: a change of timm, not of the XCiT recipe.)
_base_ = './imagenet_adamw_400e.py'
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, **{'.cls_token': dict(decay_mult=0.0)})))

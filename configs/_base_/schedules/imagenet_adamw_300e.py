# DeiT schedule (docs/paper_facts.md#pretraining-recipe): AdamW, lr = 5e-4 × total batch / 512 (DeiT's linear rule)
# = 1e-3 at the nominal 8 GPUs × 128 = 1024, wd 0.05 without decay on norms, biases (all 1-D parameters) and
# the model's no_weight_decay() parameters (DeiT/ViT: pos_embed, cls_token, dist_token), 5 linear warmup
# epochs from 1e-6, cosine to 1e-5, 300 epochs; LR stepped per iteration.
# Other total batch sizes: `--auto-scale-lr` (or auto_scale_lr.enable=True) rescales lr from base_batch_size,
# which is the batch the lr above belongs to (1024; DeiT's rule is the same line through 5e-4 at 512).
base_lr = 5e-4 * 1024 / 512
warmup_epochs = 5
max_epochs = 300

optim_wrapper = dict(
    type='OptimWrapper',  # tools/train.py --amp switches to AmpOptimWrapper
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05, betas=(0.9, 0.999), eps=1e-8),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.pos_embed': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.dist_token': dict(decay_mult=0.0),
        },
    ),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, end_factor=1.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1024, enable=False)

# OFFICIAL FAMILY — TokenMix on DeiT as its released code ran it (Sense-X/TokenMix main.py defaults,
# exp/deit_small/run.sh, tokenmix.py; docs/paper_facts.md#tokenmix), each value with its source. The leaves
# configs/pretrain/deit-{t,s,b}_tokenmix-official_8xb128-300e_in1k.py add the model.
# The common-protocol family (one recipe for all methods) is configs/pretrain/*_tokenmix_8xb128-300e_in1k.py.
_base_ = [
    '../datasets/imagenet_tokenmix-official.py', '../schedules/imagenet_adamw_300e_tokenmix-official.py',
    '../default_runtime.py',
]
custom_imports = dict(imports=['pretrain.install_patches',
                               'pretrain.classifier', 'pretrain.data', 'pretrain.label_map_data',
                               'pretrain.metrics', 'pretrain.export', 'pretrain.mixers', 'pretrain.schedulers'],
                      allow_failed_imports=False)  # + TimmCosineLR (the schedule)
# the leaves merge these into their model: model = dict(mixer=_base_.tokenmix_mixer, loss=_base_.tokenmix_loss)
tokenmix_mixer = dict(
    type='tokenmix_recipe',
    switch_prob=0.5,  # main.py --mixup-switch-prob 0.5 (TokenMix batch with p 0.5, else Mixup; --mixup-prob 1.0)
    mixup_alpha=0.8,  # run.sh --mixup 0.8 (--cutmix 1.0 only switches the TokenMix branch on)
    mask_ratio=0.5,  # tokenmix.py Mixup.lam_constant = 0.5
    variant='official',  # tokenmix.py generate_mask: blocks >= 1 token, target int(0.5·196) + 14 = 112 tokens
    # (minimum_tokens=14), stop after 10 failed draws; --mask-type block; one mask per batch (mode 'batch')
    mask_type='block',
    label_smoothing=0.1,  # main.py --smoothing 0.1
    smoothing_rule='official',  # tokenmix.py Mixup.__call__: on = w - ε/2 + ε/(2C), off = ε/(2C), no clamp
    source='label_maps',  # tokenmix.py get_labelmaps_with_coords: NFNet-F6 label maps, RoIAligned to the crop
    # at 14×14, ground-truth channel / (sum + 1e-8)
    box_order='xyxy',  # the released code hands roi_align the box as (top, left, bottom, right), i.e. the
    # map is cropped transposed (a bug inherited from ReLabel); 'official' reproduces it, 'xyxy' is the intent
)
tokenmix_loss = dict(type='BinaryCrossEntropy', smoothing=0.0)  # run.sh --use-bce: timm BinaryCrossEntropy() on
# the dense mixed targets (its smoothing applies only to hard labels, so 0.0 here is the same loss)

# EMA: main.py --model-ema default True, --model-ema-decay 0.99996 (mmengine momentum 4e-5)
custom_hooks = [dict(type='BackboneExportHook'), _base_.ema_hook]
randomness = dict(seed=0, diff_rank_seed=True)  # main.py --seed 0, seed + rank

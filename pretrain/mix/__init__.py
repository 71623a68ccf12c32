"""Batch mixing methods (pure torch + timm): Mixup, CutMix, TransMix, MixPro's MaskMix/PAL, TokenMix, switches."""
from .base import MixedBatch, Mixer, NoMix, attention_share, box_mask, box_share, check_attention, mix_targets, \
    numpy_rng, paste, rand_boxes, random_subsets, sample_beta, sample_partner, smooth_one_hot, snap_boxes, token_grid, \
    upsample_mask
from .cutmix import CutMix
from .methods import (MixMethod, get_mix_method, list_mix_methods, method_of_recipe, method_title,  # noqa: F401
                      register_mix_method)
from .mixpro import PAL_LABELS, MaskMix, ProgressiveAttentionLabel, cell_edges, progressive_attention_lam, random_cells
from .mixup import Mixup
from .switch import MixSwitch, deit_mix, mixpro_recipe, tokenmix_recipe, transmix_recipe
from .tokenmix import CAMTeacher, CropLabelMaps, TokenMix, block_mask, crop_label_maps, normalize_map, \
    official_tokenmix_targets, random_token_mask, tokenmix_weights
from .transmix import TransMix, transmix_lam

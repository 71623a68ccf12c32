""" DeiT with 14-px patches: the models of MixPro's released DeiT configs (16×16 tokens at 224).

MixPro (Zhao et al., ICLR 2023) trained its DeiT rows with 14-px patches, not DeiT's 16 px. Evidence:

* its configs (fistyee/MixPro ``configs/deit/deit_{tiny,small}_patch14_mask56_224_alpha1.yaml``,
  ``deit_base_patch14_mask112_224_alpha1_attn_all.yaml``) set ``MODEL.DEIT.PATCH_SIZE: 14`` (and
  ``config.py`` defaults ``_C.MODEL.DEIT.PATCH_SIZE = 14``), with ``MASK_PATCH_SIZE: 56`` = 4×4 tokens a cell;
* the paper's FLOPs column gives DeiT-T 1.6 G where the 16-px DeiT-T costs 1.3 G (1.25 GMACs); at 14 px the
  same network sees 256 + 1 tokens instead of 196 + 1 and costs 1.70 GMACs — 1.6 is out of reach of the
  16-px model and next to the 14-px one (``tests/test_official_recipes.py`` counts both with torch's FLOP
  counter).

The architecture is the official one (fistyee/MixPro ``models/vit.py`` ``VisionTransformer`` built by
``models/build.py``): timm's ViT with a class token, ``qkv_bias=True``, MLP ratio 4, LayerNorm eps 1e-6,
no dropout, the DeiT widths (T 192/3 heads, S 384/6, B 768/12, depth 12) and ``patch_size=14``. The official
module also holds two parameters its forward never uses (``mask_token``, ``head1``); they are left out here,
which changes nothing in training. timm's own DeiT factories are the pattern (``timm/models/deit.py``): the
same ``VisionTransformer`` class, registered factories, DeiT's normalisation and eval crop in the config.
"""
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

__all__ = ['deit_tiny_patch14_224', 'deit_small_patch14_224', 'deit_base_patch14_224']

# (embed_dim, num_heads) per size, depth 12 for all: fistyee/MixPro configs/deit/*.yaml MODEL.DEIT
_SIZES = {'tiny': (192, 3), 'small': (384, 6), 'base': (768, 12)}


def _cfg(**kwargs) -> dict:
    # No url: nothing downloads. DeiT's normalisation; eval crop 0.875 (MixPro data/build.py: resize
    # int(256/224·224) = 256, centre crop 224).
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': None, 'crop_pct': 0.875,
        'interpolation': 'bicubic', 'fixed_input_size': True, 'mean': IMAGENET_DEFAULT_MEAN,
        'std': IMAGENET_DEFAULT_STD, 'first_conv': 'patch_embed.proj', 'classifier': 'head',
        'paper_ids': 'arXiv:2304.12043', **kwargs,
    }


default_cfgs = generate_default_cfgs({f'deit_{size}_patch14_224': _cfg() for size in _SIZES})


def _create(size: str, pretrained: bool = False, **kwargs) -> VisionTransformer:
    embed_dim, num_heads = _SIZES[size]
    args = dict(patch_size=14, embed_dim=embed_dim, depth=12, num_heads=num_heads, mlp_ratio=4., qkv_bias=True)
    variant = f'deit_{size}_patch14_224'
    return build_model_with_cfg(VisionTransformer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=dict(out_indices=3, feature_cls='getter'), **dict(args, **kwargs))


@register_model
def deit_tiny_patch14_224(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """DeiT-T with 14-px patches (MixPro's DeiT-T): width 192, 3 heads, depth 12, 16×16 tokens at 224."""
    return _create('tiny', pretrained, **kwargs)


@register_model
def deit_small_patch14_224(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """DeiT-S with 14-px patches (MixPro's DeiT-S): width 384, 6 heads, depth 12, 16×16 tokens at 224."""
    return _create('small', pretrained, **kwargs)


@register_model
def deit_base_patch14_224(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """DeiT-B with 14-px patches (MixPro's DeiT-B): width 768, 12 heads, depth 12, 16×16 tokens at 224."""
    return _create('base', pretrained, **kwargs)

""" Pyramid Vision Transformer (PVT v1)

Paper: `Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions`
(Wang et al., ICCV 2021) - https://arxiv.org/abs/2102.12122

PVT v1 is not in timm; this module adds it the way timm writes models: the architecture, a
``checkpoint_filter_fn`` that turns foreign checkpoints into this model's keys, default configs (without
download locations: nothing here fetches weights) and ``register_model`` factories
``pvt_tiny`` / ``pvt_small`` / ``pvt_medium`` / ``pvt_large`` (plus ``pvt_nano``, a small variant of ours
for the demo configs and tests — not from the paper).

The module keeps the ORIGINAL PVT state-dict layout::

    patch_embed{1..4}.{proj,norm}   pos_embed{1..4} (pos_embed4: 1 + h·w slots, the class-token slot first)
    block{1..4}.{i}.{norm1, attn.{q,kv,sr,norm,proj}, norm2, mlp.{fc1,fc2}}   norm   cls_token   head

so that official PVT ``.pth`` files load unchanged and mmdet's own ``PyramidVisionTransformer``
(``convert_weights=True`` → ``pvt_convert``) loads our weights — an independent numerical check.

Details kept from the original code: the class token enters at stage 4 only (7×7 tokens + cls at 224²,
stage 4 has no spatial reduction); the patch-embedding and spatial-reduction LayerNorms use PyTorch's
default eps 1e-5, the block and final norms eps 1e-6; ``drop_rate`` drives the position, projection and
MLP dropouts. Differences: attention runs through ``F.scaled_dot_product_attention`` (fused), and position
embeddings are resampled to any input grid (bicubic by default, ``pos_embed_interp`` to change; the original
detection code and mmdet use bilinear, which is what :class:`mixseg.backbones.pvt.MixsegPVT` selects).

For the class-attention probe: ``block4[-1].attn.q`` outputs ``B×N×C`` and ``block4[-1].attn.kv`` outputs
``B×M×2C`` laid out as ``(2 [k, v], num_heads, head_dim)`` on the last axis; ``attn.num_heads`` and
``attn.scale`` give the rest. ``num_prefix_tokens == 1`` (the class token, first in stage 4).
"""
from __future__ import annotations

import math
import re
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm, Mlp, resample_abs_pos_embed, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

__all__ = ['PyramidVisionTransformer', 'checkpoint_filter_fn', 'PVT_ARCHS']

# Architectures: the paper's four (Table 1 of the paper) and a small one for demos/tests.
PVT_ARCHS: Dict[str, dict] = {
    'tiny': dict(depths=(2, 2, 2, 2)),
    'small': dict(depths=(3, 4, 6, 3)),
    'medium': dict(depths=(3, 4, 18, 3)),
    'large': dict(depths=(3, 8, 27, 3)),
    # not from the paper: 4 blocks, narrow, for CPU demos (1.87M parameters with a 1000-class head)
    'nano': dict(depths=(1, 1, 1, 1), embed_dims=(32, 64, 128, 256), num_heads=(1, 2, 4, 8),
                 mlp_ratios=(4, 4, 4, 4)),
}
_COMMON = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
               sr_ratios=(8, 4, 2, 1), qkv_bias=True)


def pvt_arch_args(arch: str) -> dict:
    """Constructor arguments of a PVT v1 variant (``'tiny'``, ``'small'``, ``'medium'``, ``'large'``, ``'nano'``)."""
    name = arch[len('pvt_'):] if arch.startswith('pvt_') else arch
    if name not in PVT_ARCHS:
        raise ValueError(f'unknown PVT arch {arch!r}; choose one of {sorted(PVT_ARCHS)}')
    return dict(_COMMON, **PVT_ARCHS[name])


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(k = s = patch) → tokens → LayerNorm (eps 1e-5 as the original)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, norm_eps: float = 1e-5):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x, hw


class Attention(nn.Module):
    """Spatial-reduction attention: queries from all tokens, keys/values from the grid reduced by a strided
    conv (``sr``) + LayerNorm when ``sr_ratio > 1``."""
    fused_attn: torch.jit.Final[bool]

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop: float = 0., proj_drop: float = 0., sr_ratio: int = 1, sr_norm_eps: float = 1e-5):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} should be divisible by num_heads {num_heads}')
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()

        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=sr_norm_eps)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            # (prefix tokens never meet a reduced stage in PVT v1: the class token enters stage 4, sr 1)
            x = x.transpose(1, 2).reshape(B, C, hw[0], hw[1])
            x = self.norm(self.sr(x).flatten(2).transpose(1, 2))
        k, v = self.kv(x).reshape(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop.p if self.training else 0., scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = self.attn_drop(attn.softmax(dim=-1)) @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4., qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 sr_ratio: int = 1, norm_layer=partial(LayerNorm, eps=1e-6), act_layer=nn.GELU,
                 sr_norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                              proj_drop=drop, sr_ratio=sr_ratio, sr_norm_eps=sr_norm_eps)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x), hw))
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x


class PyramidVisionTransformer(nn.Module):
    """PVT v1: four stages of patch embedding + absolute position embedding + spatial-reduction blocks,
    strides 4/8/16/32, the class token entering at stage 4.

    Args:
        img_size: pretraining input size; sets the stored position-embedding grids (224 → 56/28/14/7).
        class_token: keep the class token (stage 4). ``False`` gives the dense-prediction form (no cls token,
            no class slot in ``pos_embed4``), as the official PVT detection code and mmdet use.
        global_pool: ``'token'`` (class token, the paper's classifier) or ``'avg'`` (mean of stage-4 tokens).
        drop_rate: dropout after position embedding, attention projection and MLP (as the original).
        head_drop_rate: dropout before the classifier (0 in the original).
        pos_embed_interp: interpolation used when the input grid differs from the stored one.
    """

    def __init__(
            self,
            img_size: Union[int, Tuple[int, int]] = 224,
            patch_size: int = 4,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = 'token',
            embed_dims: Sequence[int] = (64, 128, 320, 512),
            num_heads: Sequence[int] = (1, 2, 5, 8),
            mlp_ratios: Sequence[float] = (8, 8, 4, 4),
            depths: Sequence[int] = (3, 4, 6, 3),
            sr_ratios: Sequence[int] = (8, 4, 2, 1),
            qkv_bias: bool = True,
            qk_scale: Optional[float] = None,
            class_token: bool = True,
            drop_rate: float = 0.,
            head_drop_rate: float = 0.,
            attn_drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            norm_eps: float = 1e-6,
            embed_norm_eps: float = 1e-5,
            pos_embed_interp: str = 'bicubic',
    ):
        super().__init__()
        assert global_pool in ('token', 'avg', '')
        assert class_token or global_pool != 'token', 'global_pool="token" needs the class token'
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.num_stages = len(depths)
        assert self.num_stages == len(embed_dims) == len(num_heads) == len(mlp_ratios) == len(sr_ratios) == 4
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dims = tuple(embed_dims)
        self.depths = tuple(depths)
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dims[-1]
        self.patch_size = patch_size
        self.strides = tuple(patch_size * 2 ** i for i in range(self.num_stages))
        self.output_stride = self.strides[-1]  # stride of the stage-4 token grid (the class-attention grid)
        self.num_prefix_tokens = 1 if class_token else 0
        self.pos_embed_interp = pos_embed_interp
        self.pos_grids = tuple((img_size[0] // s, img_size[1] // s) for s in self.strides)
        self.grad_checkpointing = False
        norm_layer = partial(LayerNorm, eps=norm_eps)

        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # stochastic depth decay
        cur = 0
        for i in range(self.num_stages):
            prefix = self.num_prefix_tokens if i == self.num_stages - 1 else 0
            n_pos = self.pos_grids[i][0] * self.pos_grids[i][1] + prefix
            setattr(self, f'patch_embed{i + 1}', PatchEmbed(
                patch_size if i == 0 else 2, in_chans if i == 0 else embed_dims[i - 1], embed_dims[i],
                norm_eps=embed_norm_eps))
            setattr(self, f'pos_embed{i + 1}', nn.Parameter(torch.zeros(1, n_pos, embed_dims[i])))
            setattr(self, f'pos_drop{i + 1}', nn.Dropout(drop_rate))
            setattr(self, f'block{i + 1}', nn.ModuleList([Block(
                embed_dims[i], num_heads[i], mlp_ratio=mlp_ratios[i], qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[cur + j], sr_ratio=sr_ratios[i],
                norm_layer=norm_layer, sr_norm_eps=embed_norm_eps) for j in range(depths[i])]))
            cur += depths[i]
        self.norm = norm_layer(embed_dims[-1])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims[-1])) if class_token else None
        self.head_drop = nn.Dropout(head_drop_rate)
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [dict(num_chs=embed_dims[i], reduction=self.strides[i], module=f'block{i + 1}')
                             for i in range(self.num_stages)]
        PyramidVisionTransformer.init_weights(self)  # (subclasses may override init_weights to load weights)

    # ------------------------------------------------------------------ init / timm interface
    def init_weights(self) -> None:
        """Initialisation of the original: trunc-normal(0.02) position embeddings, class token and Linear
        weights, zero biases, unit LayerNorms (convolutions keep PyTorch's default)."""
        for i in range(self.num_stages):
            trunc_normal_(getattr(self, f'pos_embed{i + 1}'), std=.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=.02)
        self.apply(_init_weights)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {'cls_token'}  # as the original (position embeddings are decayed there)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r'^cls_token|^pos_embed1$|^patch_embed1\.',
            blocks=[(r'^(?:patch_embed|pos_embed)(\d+)', None if coarse else (-1,)),
                    (r'^block(\d+)' if coarse else r'^block(\d+)\.(\d+)', None),
                    (r'^norm', (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            assert global_pool in ('token', 'avg', '')
            assert self.cls_token is not None or global_pool != 'token'
            self.global_pool = global_pool
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    # ------------------------------------------------------------------ forward
    def _pos_embed(self, i: int, hw: Tuple[int, int]) -> torch.Tensor:
        pos = getattr(self, f'pos_embed{i + 1}')
        grid = self.pos_grids[i]
        if hw[0] == grid[0] and hw[1] == grid[1]:
            return pos
        prefix = self.num_prefix_tokens if i == self.num_stages - 1 else 0
        return resize_grid_pos_embed(pos, grid, hw, prefix, self.pos_embed_interp)

    def _stage(self, i: int, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Stage ``i`` (0-based): NCHW image/map in, tokens ``B×(prefix+h·w)×C`` and ``(h, w)`` out."""
        x, hw = getattr(self, f'patch_embed{i + 1}')(x)
        if i == self.num_stages - 1 and self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = getattr(self, f'pos_drop{i + 1}')(x + self._pos_embed(i, hw))
        for blk in getattr(self, f'block{i + 1}'):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, hw, use_reentrant=False)
            else:
                x = blk(x, hw)
        return x, hw

    def _to_map(self, x: torch.Tensor, hw: Tuple[int, int], prefix: int = 0) -> torch.Tensor:
        if prefix:
            x = x[:, prefix:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, hw[0], hw[1])

    def forward_pyramid(self, x: torch.Tensor, out_indices: Sequence[int] = (0, 1, 2, 3)) -> List[torch.Tensor]:
        """The stage maps ``B×C_i×H/s_i×W/s_i`` (strides 4/8/16/32) for dense prediction; the class token
        takes part in stage-4 attention when the model has one but is not part of the output."""
        outs = []
        for i in range(max(out_indices) + 1):
            x, hw = self._stage(i, x)
            x = self._to_map(x, hw, self.num_prefix_tokens if i == self.num_stages - 1 else 0).contiguous()
            if i in out_indices:
                outs.append(x)
        return outs

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ):
        """timm's feature API (``features_only=True``): stage maps as NCHW (``norm`` is not applicable)."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, max_index = feature_take_indices(self.num_stages, indices)
        if intermediates_only and stop_early:
            return self.forward_pyramid(x, take_indices)
        intermediates = []
        # the stages after the last one taken only matter for the final features (not returned when
        # intermediates_only, e.g. timm's features_only wrapper)
        for i in range(max_index + 1 if intermediates_only else self.num_stages):
            x, hw = self._stage(i, x)
            if i in take_indices:
                intermediates.append(self._to_map(x, hw, self.num_prefix_tokens if i == self.num_stages - 1 else 0))
            if i < self.num_stages - 1:
                x = self._to_map(x, hw)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """All stage-4 tokens after the final norm: ``B×(num_prefix_tokens + h·w)×C`` (class token first)."""
        for i in range(self.num_stages):
            x, hw = self._stage(i, x)
            if i < self.num_stages - 1:
                x = self._to_map(x, hw)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == 'token':
            x = x[:, 0]
        elif self.global_pool == 'avg':
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def resize_grid_pos_embed(pos: torch.Tensor, old_grid: Tuple[int, int], new_grid: Tuple[int, int],
                          num_prefix_tokens: int = 0, mode: str = 'bicubic') -> torch.Tensor:
    """Resample the grid part of ``1×(prefix + h·w)×C`` position embeddings to ``new_grid`` (prefix slots kept).
    Runs in the embedding's dtype (float32 for half precision), no antialiasing: the forward-time resize of the
    original PVT detection code / mmdet (``mode='bilinear'``). Equal to timm's ``resample_abs_pos_embed`` for
    float32/bfloat16/float16, but that one always computes in float32, which would round float64 embeddings
    (the float64 parity test with mmdet's PVT needs them kept)."""
    prefix, grid = pos[:, :num_prefix_tokens], pos[:, num_prefix_tokens:]
    dtype = grid.dtype
    grid = grid.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2)
    if dtype in (torch.float16, torch.bfloat16):
        grid = grid.float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode=mode, align_corners=False)
    grid = grid.flatten(2).transpose(1, 2).to(dtype)
    return torch.cat((prefix, grid), dim=1) if num_prefix_tokens else grid


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------- checkpoint conversion
def _from_mmdet_layout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmdet's ``PyramidVisionTransformer`` keys (``layers.{s}.{0: patch embed, 1: [pos embed, blocks...]}``,
    packed ``in_proj``, 1×1-conv FFN) → the original PVT layout; the inverse of mmdet's ``pvt_convert``."""
    out = {}
    for k, v in state_dict.items():
        m = re.match(r'^layers\.(\d+)\.(\d+)\.(.*)$', k)
        if m is None:
            out[k] = v
            continue
        s, part, rest = int(m.group(1)) + 1, int(m.group(2)), m.group(3)
        if part == 0:  # patch embedding
            out[f'patch_embed{s}.' + rest.replace('projection.', 'proj.')] = v
            continue
        if part != 1:  # layers.{s}.2 = norm after stage (PVT v2 only): leave it to be reported as unexpected
            out[k] = v
            continue
        m = re.match(r'^(\d+)\.(.*)$', rest)
        j, name = int(m.group(1)), m.group(2)
        if j == 0 and name == 'pos_embed':
            out[f'pos_embed{s}'] = v
            continue
        prefix = f'block{s}.{j - 1}.'
        if name.startswith('attn.attn.in_proj_'):
            kind = name[len('attn.attn.in_proj_'):]  # weight | bias
            dim = v.shape[0] // 3
            out[prefix + f'attn.q.{kind}'] = v[:dim]
            out[prefix + f'attn.kv.{kind}'] = v[dim:]
        elif name.startswith('attn.attn.out_proj.'):
            out[prefix + 'attn.proj.' + name[len('attn.attn.out_proj.'):]] = v
        elif name.startswith('ffn.layers.'):
            idx, kind = name[len('ffn.layers.'):].split('.', 1)
            fc = {'0': 'fc1', '3': 'fc2'}.get(idx)
            if fc is None:  # a conv FFN (PVT v2): not this architecture
                out[k] = v
                continue
            out[prefix + f'mlp.{fc}.{kind}'] = v.flatten(1) if kind == 'weight' else v
        else:  # norm1, norm2, attn.sr.*, attn.norm.*
            out[prefix + name] = v
    return out


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: PyramidVisionTransformer,
                         interpolation: str = 'bicubic', antialias: bool = True) -> Dict[str, torch.Tensor]:
    """Turn a PVT v1 checkpoint into ``model``'s keys and shapes.

    Accepts the original PVT release files (flat or under ``'model'``), DDP ``module.`` prefixes, mmdet's
    ``PyramidVisionTransformer`` layout, and any of them at another pretraining resolution: position
    embeddings are resampled to the model's grids (square source grids). The class token and its
    ``pos_embed4`` slot are dropped when the model has no class token, the classifier when it has no head.
    Keys that do not belong to PVT v1 are passed through unchanged, so a strict load reports them.
    """
    if 'model' in state_dict and isinstance(state_dict['model'], dict):
        state_dict = state_dict['model']
    elif 'state_dict' in state_dict and isinstance(state_dict['state_dict'], dict):
        state_dict = state_dict['state_dict']
    state_dict = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state_dict.items()}
    if any(k.startswith('layers.0.0.projection') for k in state_dict):
        state_dict = _from_mmdet_layout(state_dict)

    has_cls = model.cls_token is not None
    out = {}
    for k, v in state_dict.items():
        if k == 'cls_token' and not has_cls:
            continue
        if k.startswith('head.') and isinstance(model.head, nn.Identity):
            continue
        m = re.match(r'^pos_embed(\d)$', k)
        if m is not None and v.ndim == 3:
            i = int(m.group(1)) - 1
            if 0 <= i < model.num_stages:
                v = _fit_pos_embed(v, model, i, interpolation, antialias)
        out[k] = v
    return out


def _fit_pos_embed(v: torch.Tensor, model: PyramidVisionTransformer, i: int, interpolation: str,
                   antialias: bool) -> torch.Tensor:
    grid = model.pos_grids[i]
    want_prefix = model.num_prefix_tokens if i == model.num_stages - 1 else 0
    n = v.shape[1]
    side = math.isqrt(n)
    if side * side == n:
        have_prefix = 0
    elif i == model.num_stages - 1 and math.isqrt(n - 1) ** 2 == n - 1:
        have_prefix, side = 1, math.isqrt(n - 1)
    else:
        return v  # not a square grid: leave it for the strict loader to report
    if have_prefix and not want_prefix:
        v, have_prefix = v[:, 1:], 0
    if have_prefix != want_prefix:
        return v  # the model needs a class slot the file does not have: reported as a shape mismatch
    if (side, side) != tuple(grid) and v.shape[-1] == model.embed_dims[i]:
        v = resample_abs_pos_embed(v, list(grid), old_size=[side, side], num_prefix_tokens=have_prefix,
                                   interpolation=interpolation, antialias=antialias)
    return v


# ---------------------------------------------------------------------- registration
def _create_pvt(variant: str, pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    out_indices = kwargs.pop('out_indices', (0, 1, 2, 3))
    return build_model_with_cfg(
        PyramidVisionTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls='getter', out_indices=out_indices),
        **kwargs)


def _cfg(**kwargs) -> dict:
    # No url / hf_hub_id: nothing downloads. Load a local file with
    # timm.create_model('pvt_small', pretrained=True, pretrained_cfg_overlay=dict(file='pvt_small.pth')).
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': None, 'crop_pct': 0.875,
        'interpolation': 'bicubic', 'fixed_input_size': False, 'mean': IMAGENET_DEFAULT_MEAN,
        'std': IMAGENET_DEFAULT_STD, 'first_conv': 'patch_embed1.proj', 'classifier': 'head',
        'license': 'apache-2.0', 'paper_ids': 'arXiv:2102.12122', **kwargs,
    }


default_cfgs = generate_default_cfgs({
    'pvt_tiny': _cfg(),
    'pvt_small': _cfg(),
    'pvt_medium': _cfg(),
    'pvt_large': _cfg(),
    'pvt_nano': _cfg(),
})


@register_model
def pvt_tiny(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Tiny: depths 2-2-2-2, 13.2M parameters."""
    return _create_pvt('pvt_tiny', pretrained, **dict(pvt_arch_args('tiny'), **kwargs))


@register_model
def pvt_small(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Small: depths 3-4-6-3, 24.5M parameters."""
    return _create_pvt('pvt_small', pretrained, **dict(pvt_arch_args('small'), **kwargs))


@register_model
def pvt_medium(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Medium: depths 3-4-18-3, 44.2M parameters."""
    return _create_pvt('pvt_medium', pretrained, **dict(pvt_arch_args('medium'), **kwargs))


@register_model
def pvt_large(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """PVT-Large: depths 3-8-27-3, 61.4M parameters."""
    return _create_pvt('pvt_large', pretrained, **dict(pvt_arch_args('large'), **kwargs))


@register_model
def pvt_nano(pretrained: bool = False, **kwargs) -> PyramidVisionTransformer:
    """A small PVT v1 of ours for CPU demos and tests (not from the paper)."""
    return _create_pvt('pvt_nano', pretrained, **dict(pvt_arch_args('nano'), **kwargs))

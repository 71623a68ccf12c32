"""ViT/DeiT backbone for mmseg (Segmenter mask decoder, linear decoder), built from timm.

``MixsegViT`` builds the timm model named by ``arch`` (any patch size; class, distillation and register
tokens) and adopts its modules, so the backbone's ``state_dict`` has exactly the timm key layout minus
the classifier head. A backbone file written by stage 1, an official timm/DeiT ``.pth`` and an mmengine
checkpoint (``backbone.`` prefix) therefore load with one strict call (:func:`mixcore.weights.load.load_strict`):
a file of another architecture is refused with the missing/unexpected keys and the differing shapes.

The absolute position embedding is sized for the training crop (``img_size``); the file's embedding is
resized to it once when loading (bicubic, as mmseg's ``VisionTransformer``), and again on the fly for
inputs of another size (sliding windows at image borders, whole-image or multi-scale tests). Inputs
whose size is not a multiple of the patch size are zero-padded at the bottom/right, as mmseg does; a training
crop that is not whole patches (512 px on a 14-px model) sizes the embedding for its padded grid (37×37).

Attention is timm's (``F.scaled_dot_product_attention``), which is what makes this backbone at least as
fast as mmseg's ``VisionTransformer`` (``nn.MultiheadAttention`` with attention weights).

Config::

    custom_imports = dict(imports=['mixseg.backbones.vit'], allow_failed_imports=False)
    model = dict(backbone=dict(type='MixsegViT', arch='deit_small_patch16_224', img_size=512,
                               checkpoint='checkpoints/deit-s_baseline.safetensors'))
"""
from __future__ import annotations

import math
from typing import Sequence

import timm
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import resample_abs_pos_embed

from mixcore.weights.load import load_strict
from mixcore.weights.state_dict import read_weights

# Classifier heads a pretrained file may carry; a backbone has no use for them.
HEAD_PREFIXES = ('head.', 'head_dist.')


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


@MODELS.register_module()
class MixsegViT(BaseModule):
    """A timm ViT/DeiT as an mmseg backbone.

    Args:
        arch: timm model name, e.g. ``'deit_small_patch16_224'``, ``'deit_tiny_distilled_patch16_224'``,
            ``'vit_small_patch8_224'``.
        img_size: training crop (int or (h, w)); the position embedding is sized for its grid of patches
            (rounded up: the crop is padded to whole patches).
        checkpoint: weight file loaded in :meth:`init_weights` (backbone ``.safetensors``, timm/DeiT
            ``.pth``, mmengine checkpoint). ``None``: timm's random initialisation.
        out_indices: block index or indices whose patch tokens are returned (``-1``: the last block).
        final_norm: apply the model's final norm to the last block's output (Segmenter does).
        drop_path_rate: stochastic depth rate (linearly increasing over the blocks, timm's rule).
        interpolate_mode: mode for resizing the position embedding (``'bicubic'``, as mmseg).
        antialias: antialiased resizing (timm's default for classification; mmseg resizes without it).
        with_cp: gradient checkpointing of the blocks while training.
        model_kwargs: extra keyword arguments for ``timm.create_model`` (e.g. ``embed_dim``, ``depth``,
            ``num_heads`` of a tiny demo model, ``attn_drop_rate``, ``proj_drop_rate``).
    """

    def __init__(self,
                 arch: str = 'deit_small_patch16_224',
                 img_size: int | Sequence[int] = 512,
                 checkpoint: str | None = None,
                 out_indices: int | Sequence[int] = -1,
                 final_norm: bool = True,
                 drop_path_rate: float = 0.1,
                 interpolate_mode: str = 'bicubic',
                 antialias: bool = False,
                 with_cp: bool = False,
                 model_kwargs: dict | None = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch = arch
        self.img_size = _pair(img_size)
        self.checkpoint = checkpoint
        self.interpolate_mode = interpolate_mode
        self.antialias = antialias
        self.with_cp = with_cp

        kwargs = dict(img_size=self.img_size, drop_path_rate=drop_path_rate)
        kwargs.update(model_kwargs or {})
        # The backbone needs no head; inputs of any size are padded to whole patches and the tokens come
        # back as a grid (NHWC) so that the position embedding can follow the input size.
        kwargs.update(pretrained=False, num_classes=0, dynamic_img_size=True, dynamic_img_pad=True)
        if not timm.is_model(arch):
            raise ValueError(f'MixsegViT: {arch!r} is not a timm model name')
        try:
            vit = timm.create_model(arch, **kwargs)
        except TypeError as e:  # a model class without ViT's arguments (img_size, dynamic_img_size, ...)
            raise ValueError(f'MixsegViT: {arch!r} is not a ViT-style model ({e})') from e
        for attr in ('patch_embed', 'blocks', 'pos_embed', 'num_prefix_tokens'):
            if not hasattr(vit, attr):
                raise ValueError(f'MixsegViT: {arch!r} ({type(vit).__name__}) is not a ViT-style model '
                                 f'(no {attr!r})')
        if getattr(vit, 'pos_embed', None) is None:
            raise ValueError(f'MixsegViT: {arch!r} has no absolute position embedding')
        if not isinstance(getattr(vit, 'patch_drop', nn.Identity()), nn.Identity):
            raise ValueError('MixsegViT: patch dropout removes tokens; a dense backbone cannot use it')

        # Adopt the timm modules under their timm names: our state_dict is the timm layout.
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.dist_token = getattr(vit, 'dist_token', None)
        self.reg_token = getattr(vit, 'reg_token', None)
        self.pos_embed = vit.pos_embed
        self.pos_drop = vit.pos_drop
        self.patch_drop = vit.patch_drop
        self.norm_pre = vit.norm_pre
        self.blocks = vit.blocks
        # The final norm is 'norm' in token-pooling ViTs and 'fc_norm' in average-pooling ones.
        norm_name = None
        for name in ('norm', 'fc_norm'):
            mod = getattr(vit, name, None)
            if mod is not None and not isinstance(mod, nn.Identity):
                norm_name = name
                break
        self.final_norm = bool(final_norm and norm_name)
        self._norm_name = norm_name if self.final_norm else None
        if self._norm_name:
            setattr(self, self._norm_name, getattr(vit, self._norm_name))
        # file keys this backbone drops on purpose: heads, and the final norm when it is switched off
        self._dropped_prefixes = HEAD_PREFIXES + (() if self.final_norm or not norm_name else (f'{norm_name}.',))
        self.no_embed_class = bool(getattr(vit, 'no_embed_class', False))
        del vit

        self.num_prefix_tokens = sum(t.shape[1] for t in (self.cls_token, self.dist_token, self.reg_token)
                                     if t is not None)
        self.embed_dim = self.pos_embed.shape[-1]
        self.patch_size = _pair(self.patch_embed.patch_size)
        self.grid_size = _pair(self.patch_embed.grid_size)
        self.img_size = _pair(self.patch_embed.img_size)  # (model_kwargs may have set it)
        if any(s % p for s, p in zip(self.img_size, self.patch_size)):
            # A crop that is not whole patches (512 on MixPro's 14-px DeiT) is zero-padded at the bottom/right
            # like every input, so the position embedding belongs to the padded crop: 37x37 tokens for 512 / 14
            # (mmseg's PatchEmbed with padding='corner' gives the same grid).
            self.grid_size = tuple(-(-s // p) for s, p in zip(self.img_size, self.patch_size))
            padded = tuple(g * p for g, p in zip(self.grid_size, self.patch_size))
            # (random init: a file's embedding is resized to this grid when loaded)
            self.pos_embed = nn.Parameter(resample_abs_pos_embed(
                self.pos_embed.detach(), list(self.grid_size), old_size=list(_pair(self.patch_embed.grid_size)),
                num_prefix_tokens=self.pos_prefix_tokens))
            self.patch_embed.img_size, self.patch_embed.grid_size = padded, self.grid_size
            self.patch_embed.num_patches = self.grid_size[0] * self.grid_size[1]
        depth = len(self.blocks)
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        if not indices:
            raise ValueError('MixsegViT: out_indices is empty')
        self.out_indices = sorted({i % depth if -depth <= i < depth else _bad_index(i, depth) for i in indices})

    @property
    def pos_prefix_tokens(self) -> int:
        """Prefix tokens that have a slot in the position embedding."""
        return 0 if self.no_embed_class else self.num_prefix_tokens

    # ------------------------------------------------------------------ weights
    def init_weights(self):
        if self.checkpoint is None:
            # timm has initialised everything at construction; an explicit init_cfg still applies
            if self.init_cfg:
                super().init_weights()
            return
        self.load_weights(self.checkpoint)
        self._is_init = True

    def load_weights(self, path) -> None:
        """Load a weight file strictly (heads ignored), resizing its position embedding to ``img_size``."""
        state_dict, meta = read_weights(path)
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(self._dropped_prefixes)}
        note = ''
        pe = state_dict.get('pos_embed')
        if pe is not None and pe.shape != self.pos_embed.shape:
            old = self._file_grid(pe, meta)
            if old is not None and pe.shape[-1] == self.pos_embed.shape[-1]:
                state_dict['pos_embed'] = self.resize_pos_embed(pe, self.grid_size, old)
                note = f', pos_embed resized {old[0]}x{old[1]} -> {self.grid_size[0]}x{self.grid_size[1]}'
            # otherwise load_strict reports the shape mismatch
        load_strict(self, state_dict, source=str(path))
        file_arch = meta.get('arch')
        if file_arch and file_arch != self.arch:
            print_log(f'MixsegViT: {path} was written for {file_arch!r}, loaded into {self.arch!r} '
                      '(all keys and shapes match)', logger='current', level=30)
        method = meta.get('method')
        print_log(f'MixsegViT: loaded {path} into {self.arch}'
                  f'{f" (method {method})" if method else ""}{note}', logger='current')

    def _file_grid(self, pe: torch.Tensor, meta: dict):
        n = pe.shape[1] - self.pos_prefix_tokens
        if n <= 0:
            return None
        img, patch = meta.get('img_size'), meta.get('patch_size')
        if img is not None and patch is not None:
            grid = tuple(s // p for s, p in zip(_pair(img), _pair(patch)))
            if grid[0] * grid[1] == n:
                return grid
        side = math.isqrt(n)
        return (side, side) if side * side == n else None

    def resize_pos_embed(self, pos_embed: torch.Tensor, new_grid, old_grid) -> torch.Tensor:
        return resample_abs_pos_embed(pos_embed, list(new_grid), old_size=list(old_grid),
                                      num_prefix_tokens=self.pos_prefix_tokens,
                                      interpolation=self.interpolate_mode, antialias=self.antialias)

    # ------------------------------------------------------------------ forward
    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.patch_embed(x)  # B×h×w×C (padded to whole patches)
        B, h, w, C = x.shape
        x = x.reshape(B, h * w, C)
        pos = self.pos_embed
        if (h, w) != self.grid_size:
            pos = self.resize_pos_embed(pos, (h, w), self.grid_size)
        prefix = [t.expand(B, -1, -1) for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]
        if self.no_embed_class:
            x = x + pos
            if prefix:
                x = torch.cat(prefix + [x], dim=1)
        else:
            if prefix:
                x = torch.cat(prefix + [x], dim=1)
            x = x + pos
        x = self.pos_drop(x)
        x = self.patch_drop(x)
        return self.norm_pre(x), (h, w)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        B = inputs.shape[0]
        x, (h, w) = self._embed(inputs)
        last = len(self.blocks) - 1
        outs = []
        for i, blk in enumerate(self.blocks[:self.out_indices[-1] + 1]):  # (later blocks feed no output)
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
            if i in self.out_indices:
                y = getattr(self, self._norm_name)(x) if (i == last and self._norm_name) else x
                y = y[:, self.num_prefix_tokens:]
                outs.append(y.reshape(B, h, w, -1).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)


def _bad_index(i, depth):
    raise ValueError(f'MixsegViT: out_indices entry {i} outside a model of {depth} blocks')


def mmseg_vit_converter():
    """mmseg's own timm -> mmseg ``VisionTransformer`` key mapping (``convert_vit`` of
    ``tools/model_converters/vit2mmseg.py``, shipped in the mmseg package under ``.mim``), for the parity
    test and the speed benchmark against mmseg's implementation."""
    import importlib.util
    from pathlib import Path

    import mmseg
    root = Path(mmseg.__file__).parent
    for path in (root / '.mim' / 'tools' / 'model_converters' / 'vit2mmseg.py',
                 root.parent / 'tools' / 'model_converters' / 'vit2mmseg.py'):
        if path.is_file():
            spec = importlib.util.spec_from_file_location('mmseg_vit2mmseg', path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod.convert_vit
    raise FileNotFoundError(f'vit2mmseg.py not found in the mmseg installation at {root}')

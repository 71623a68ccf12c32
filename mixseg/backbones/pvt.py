"""PVT v1 as an mmdet backbone (``MixsegPVT``) for Mask R-CNN + FPN.

The backbone IS our PVT v1 (:class:`pretrain.models.pvt.PyramidVisionTransformer`, the same code stage 1
pretrains) in its dense-prediction form: no class token (nor its ``pos_embed4`` slot), no classifier, no
final norm; ``forward`` returns the four stage maps (strides 4/8/16/32, channels 64/128/320/512) for FPN.
Its state dict keeps the original PVT layout, so a detector checkpoint holds ``backbone.patch_embed1...``.

Weights (``checkpoint``, loaded in :meth:`init_weights`): a backbone file (``.safetensors``), an official PVT
``.pth``, an mmengine checkpoint (``backbone.`` prefix; mmdet's own PVT layout is converted too), all read
through :func:`mixcore.weights.state_dict.read_weights` (``weights_only=True``) and loaded with
:func:`mixcore.weights.load.load_strict`: a file of another architecture is refused with the missing /
unexpected keys and differing shapes, nothing is loaded partially. Position embeddings of another
pretraining resolution are resampled (bicubic) to ``pretrain_img_size`` on load, and in ``forward`` to the
actual input grid (bilinear by default, as the official PVT detection code and mmdet's PVT).

Config::

    custom_imports = dict(imports=['mixseg.backbones.pvt'], allow_failed_imports=False)
    model = dict(backbone=dict(type='MixsegPVT', arch='small', checkpoint='checkpoints/pvt-s.safetensors'))
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

from mmdet.registry import MODELS

from mixcore.weights.load import load_strict
from mixcore.weights.state_dict import read_weights
from pretrain.models.pvt import PyramidVisionTransformer, checkpoint_filter_fn, pvt_arch_args

# Parts of a classification checkpoint that the dense-prediction backbone does not have: the final norm
# before the classifier (head and class token are removed by ``checkpoint_filter_fn``, the backbone having
# neither).
_CLASSIFIER_ONLY = ('norm.',)


@MODELS.register_module()
class MixsegPVT(PyramidVisionTransformer, BaseModule):
    """PVT v1 backbone for mmdet detectors.

    Args:
        arch: ``'tiny' | 'small' | 'medium' | 'large'`` (or ``'nano'``, our demo size; ``pvt_`` prefix allowed).
        checkpoint: weight file loaded by :meth:`init_weights` (see module doc). ``None``: random init.
            ``init_cfg=dict(type='Pretrained', checkpoint=...)`` is accepted as the same thing.
        pretrain_img_size: resolution of the stored position embeddings (224 for ImageNet PVT).
        out_indices: stages to return (0-based).
        frozen_stages: stages ``1..frozen_stages`` (patch embedding, position embedding, blocks) are frozen
            and kept in eval mode; ``-1`` or ``0``: nothing frozen.
        norm_eval: keep all norm layers in eval mode (LayerNorm has no running statistics, so this only
            matters for norms with them; kept for config compatibility with mmdet backbones).
        drop_rate / attn_drop_rate / drop_path_rate: as PVT (official detection recipe: drop path 0.1).
        pos_embed_interp: interpolation of the position embeddings to the input grid in ``forward``.
        embed_norm_eps: eps of the patch-embedding and spatial-reduction LayerNorms: 1e-5 as the original PVT
            (classification and detection code, and our stage 1); mmdet's reimplementation uses 1e-6 there
            (one ``norm_cfg`` for all norms) — set 1e-6 to reproduce mmdet's PVT bit for bit.
        with_cp: gradient checkpointing of the blocks.
    """

    def __init__(self,
                 arch: str = 'small',
                 checkpoint: Optional[str] = None,
                 pretrain_img_size: int = 224,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 pos_embed_interp: str = 'bilinear',
                 embed_norm_eps: float = 1e-5,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            # mmdet-style `init_cfg=dict(type='Pretrained', checkpoint=...)`: same strict loading as `checkpoint`
            if checkpoint is not None:
                raise ValueError('MixsegPVT: give the weights through `checkpoint` or `init_cfg`, not both')
            if init_cfg.get('prefix'):
                raise ValueError('MixsegPVT: init_cfg prefix is not supported; `backbone.` is stripped already')
            checkpoint, init_cfg = init_cfg['checkpoint'], None
        PyramidVisionTransformer.__init__(
            self, img_size=pretrain_img_size, in_chans=in_channels, num_classes=0, global_pool='',
            class_token=False, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate, pos_embed_interp=pos_embed_interp, embed_norm_eps=embed_norm_eps,
            **pvt_arch_args(arch))
        self.init_cfg = init_cfg  # (BaseModule.__init__ ran through PyramidVisionTransformer's super())
        self.norm = nn.Identity()  # the classifier's final norm is not part of the dense-prediction backbone
        self.arch = arch
        self.checkpoint = checkpoint
        out_indices = tuple(out_indices)
        if not out_indices or min(out_indices) < 0 or max(out_indices) >= self.num_stages:
            raise ValueError(f'out_indices {out_indices} must lie in 0..{self.num_stages - 1}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages {frozen_stages} must lie in -1..{self.num_stages}')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.set_grad_checkpointing(with_cp)
        self._freeze_stages()

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        if self.checkpoint is None:
            if self.init_cfg is not None:
                BaseModule.init_weights(self)
            return  # random init of the constructor (the original PVT initialisation)
        logger = MMLogger.get_current_instance()
        state_dict, meta = read_weights(self.checkpoint)
        state_dict = checkpoint_filter_fn(state_dict, self, interpolation='bicubic', antialias=True)
        load_strict(self, state_dict, source=str(self.checkpoint), ignore_unexpected=_CLASSIFIER_ONLY)
        about = ', '.join(f'{k}={meta[k]}' for k in ('arch', 'method', 'epochs', 'top1') if meta.get(k) is not None)
        logger.info(f'MixsegPVT({self.arch}): loaded {self.checkpoint}' + (f' ({about})' if about else ''))
        self._is_init = True

    # ------------------------------------------------------------------ training mode
    def _stage_modules(self, i: int):
        return [getattr(self, f'patch_embed{i + 1}'), getattr(self, f'block{i + 1}')]

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            getattr(self, f'pos_embed{i + 1}').requires_grad = False
            for m in self._stage_modules(i):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)):
                    m.eval()
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, x):
        return tuple(self.forward_pyramid(x, self.out_indices))

"""Backbone files from stage-2 checkpoints: a segmentor with ``MixsegViT`` (mmseg) or a detector with
``MixsegPVT`` (mmdet), for ``tools/export_backbone.py``.

Only the backbone is rebuilt (from the stored config, checked by :mod:`mixcore.stored_config`, or ``--config``),
with its ``checkpoint`` switched off, and the checkpoint's ``backbone.`` weights are loaded into it strictly
(:func:`mixcore.weights.load.load_strict`). Its state dict is the backbone file's key layout already (MixsegViT:
timm's ViT layout without head; MixsegPVT: the original PVT layout without class token and final norm), so
the file loads back into either stage-2 backbone. Metadata: ``arch`` as stage 1 writes it (timm name; PVT
``pvt_<size>``), ``img_size`` / ``patch_size`` of the stored position embeddings, ``method`` of the backbone
file the run started from (its metadata; else the config's ``table_row.method``), plus ``task``, ``stage=2``,
``iters``/``epochs`` and ``finetuned_from``.
"""
from __future__ import annotations

from typing import Mapping, Optional

from .tables.rows import backbone_checkpoint

#: stage-2 backbones this module exports, and their scope
DENSE_BACKBONES = {'MixsegViT': ('mmseg', 'segmentation'), 'MixsegPVT': ('mmdet', 'detection')}


def _check_backbone_args(checkpoint: str, backbone_cfg: Mapping) -> None:
    """The stored config's backbone arguments that reach ``timm.create_model`` pass the backbone-file metadata
    check before the backbone is built (``model_kwargs.checkpoint_path`` would make timm read that file)."""
    from mixcore.weights.backbone_file import check_meta
    args = {k: backbone_cfg[k] for k in ('arch', 'model_kwargs') if backbone_cfg.get(k) is not None}
    size = backbone_cfg.get('img_size', backbone_cfg.get('pretrain_img_size'))
    if size is not None:
        args['img_size'] = size
    check_meta(args, f'{checkpoint} (meta.cfg)', what='model.backbone.',
               advice='nothing was built; export with a config of yours: --config')


def export_dense_checkpoint(checkpoint: str, ckpt: Mapping, cfg: Mapping, out: str, *, source_config: str,
                            use_ema: bool = True):
    """Write the backbone file of a stage-2 mmengine checkpoint ``ckpt`` (already read safely) whose config is
    ``cfg`` (plain data)."""
    from mmengine.registry import DefaultScope

    from mixcore.weights.backbone_file import read_backbone_meta, save_backbone_file
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.load import load_strict
    from mixcore.stored_config import no_import_fallback

    model_cfg = cfg.get('model') or {}
    backbone_cfg = dict(model_cfg.get('backbone') or {})
    btype = backbone_cfg.get('type')
    if btype not in DENSE_BACKBONES:
        raise CheckpointError(
            f'{checkpoint}: cannot export model.backbone type {btype!r} (model {model_cfg.get("type")!r}): '
            f'tools/export_backbone.py reads stage-1 checkpoints (MixClassifier) and stage-2 checkpoints whose '
            f'backbone is {" or ".join(DENSE_BACKBONES)}')
    scope, task = DENSE_BACKBONES[btype]
    _check_backbone_args(checkpoint, backbone_cfg)
    pretrained = backbone_checkpoint(dict(backbone=dict(backbone_cfg)))
    backbone_cfg['checkpoint'] = None
    if isinstance(backbone_cfg.get('init_cfg'), Mapping) and backbone_cfg['init_cfg'].get('type') == 'Pretrained':
        backbone_cfg['init_cfg'] = None
    if scope == 'mmseg':
        from mmseg.registry import MODELS

        import mixseg.backbones.vit  # noqa: F401
    else:
        from mmdet.registry import MODELS

        import mixseg.backbones.pvt  # noqa: F401
    with DefaultScope.overwrite_default_scope(scope), no_import_fallback(checkpoint):
        backbone = MODELS.build(backbone_cfg)

    state_dict = dict(ckpt['state_dict'])
    ema_state = ckpt.get('ema_state_dict')
    is_ema = isinstance(ema_state, Mapping) and any(k.startswith('module.') for k in ema_state)
    if is_ema and not use_ema:  # mmengine swapped: 'ema_state_dict' holds the raw weights under 'module.'
        state_dict = {k: ema_state.get('module.' + k, v) for k, v in state_dict.items()}
    weights = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    if not weights:
        raise CheckpointError(f'{checkpoint}: no "backbone." weights in the state dict')
    load_strict(backbone, weights, source=checkpoint)

    if btype == 'MixsegViT':
        arch, img_size = backbone.arch, list(backbone.img_size)
        ph, pw = backbone.patch_size
        patch_size = ph if ph == pw else [ph, pw]
        model_kwargs = dict(backbone_cfg.get('model_kwargs') or {})
    else:
        arch = backbone.arch if str(backbone.arch).startswith('pvt_') else f'pvt_{backbone.arch}'
        size = backbone_cfg.get('pretrain_img_size', 224)
        img_size = [size, size] if isinstance(size, int) else list(size)
        patch_size, model_kwargs = backbone.output_stride, {}
    src_meta = read_backbone_meta(pretrained)
    method = src_meta.get('method') or (cfg.get('table_row') or {}).get('method')
    meta = ckpt.get('meta') or {}
    return save_backbone_file(
        out, backbone.state_dict(), arch=arch, img_size=img_size, patch_size=patch_size, method=method,
        epochs=meta.get('epoch'), top1=None, source_config=source_config, iters=meta.get('iter'),
        ema=bool(is_ema and use_ema), model_kwargs=model_kwargs, task=task, stage=2,
        finetuned_from=str(pretrained) if pretrained else None)


def export_any_checkpoint(checkpoint: str, out: str, config: Optional[str] = None, use_ema: bool = True,
                          top1: Optional[float] = None):
    """``tools/export_backbone.py``: the backbone file of a stage-1 checkpoint (:func:`pretrain.export.export_checkpoint`)
    or of a stage-2 one (:func:`export_dense_checkpoint`), told apart by the config's ``default_scope``."""
    # a stored config's types are checked against the registries of its scope: register ours there first
    import mixseg.backbones.pvt  # noqa: F401  (mmdet: MixsegPVT)
    import mixseg.backbones.vit  # noqa: F401  (mmseg: MixsegViT)
    import mixseg.datasets  # noqa: F401
    from pretrain.export import export_checkpoint, read_checkpoint_config
    ckpt, cfg, source_config = read_checkpoint_config(checkpoint, config)
    if (cfg.get('default_scope') or 'pretrain') in ('mmseg', 'mmdet'):
        return export_dense_checkpoint(checkpoint, ckpt, cfg.to_dict(), out, source_config=source_config,
                                       use_ema=use_ema)
    return export_checkpoint(checkpoint, out, use_ema=use_ema, top1=top1, loaded=(ckpt, cfg, source_config))

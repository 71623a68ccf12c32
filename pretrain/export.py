"""Export of the backbone file (the stage-1 → stage-2 contract, :mod:`mixcore.weights.backbone_file`).

* :class:`BackboneExportHook` writes ``<work_dir>/backbone.safetensors`` at the end of training, from the EMA
  weights when mmengine's ``EMAHook`` is on, with the last validation top-1 in the metadata.
* :func:`export_checkpoint` does the same from any stage-1 mmengine checkpoint (``tools/export_backbone.py``).

The file holds the timm model's weights without its classifier head (``pretrained_cfg['classifier']``:
``head`` for DeiT/ViT and PVT, also ``head_dist`` for distilled DeiT), in the timm (PVT: original) key layout.
"""
from __future__ import annotations

import os.path as osp
from typing import Mapping, Optional

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mixcore.stored_config import plain_config  # noqa: F401  (moved to mixseg; kept importable here)

from .registry import HOOKS


def classifier_names(model: torch.nn.Module) -> tuple[str, ...]:
    """Module names of the classifier head(s) of a timm model."""
    cfg = getattr(model, 'pretrained_cfg', None) or getattr(model, 'default_cfg', None) or {}
    names = cfg.get('classifier') or 'head'
    return tuple(names) if isinstance(names, (list, tuple)) else (names,)


def strip_head(state_dict: Mapping[str, torch.Tensor], head_names) -> dict[str, torch.Tensor]:
    heads = tuple(head_names)
    return {k: v for k, v in state_dict.items() if not any(k == h or k.startswith(h + '.') for h in heads)}


def backbone_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The timm model's state dict without its classifier head."""
    return strip_head(model.state_dict(), classifier_names(model))


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _find_ema_hook(runner):
    for hook in runner.hooks:
        if type(hook).__name__ == 'EMAHook' or (hasattr(hook, 'ema_model') and hasattr(hook, 'src_model')):
            return hook
    return None


@HOOKS.register_module()
class BackboneExportHook(Hook):
    """Write the backbone file at the end of training.

    Args:
        filename: path relative to the work dir (or absolute).
        use_ema: take the EMA weights when an ``EMAHook`` is registered (the model mmengine validates).
        all_ranks: every rank writes its own copy (``backbone.rank<r>.safetensors`` for r > 0), a check that
            the data-parallel replicas hold identical weights. Default: only rank 0 writes.
        method: name stored in the metadata; default the classifier's (``model.method``).

    The metadata's ``top1`` is the last validation's ``accuracy/top1`` (of the EMA weights when EMA is on,
    as mmengine's ``EMAHook`` swaps them in for validation), ``None`` when training ran without validation.
    """

    priority = 'VERY_LOW'

    def __init__(self, filename: str = 'backbone.safetensors', use_ema: bool = True, all_ranks: bool = False,
                 method: Optional[str] = None):
        self.filename = filename
        self.use_ema = use_ema
        self.all_ranks = all_ranks
        self.method = method
        self.top1: Optional[float] = None
        self.path: Optional[str] = None

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        for key, value in (metrics or {}).items():
            if key.split('/')[-1] == 'top1':
                self.top1 = float(value) if isinstance(value, (int, float)) else None   # ('n/a': one class)

    def after_train(self, runner) -> None:
        self.export(runner)

    def export(self, runner) -> Optional[str]:
        rank, _ = get_dist_info()
        if rank != 0 and not self.all_ranks:
            return None
        classifier = _unwrap(runner.model)
        ema_hook = _find_ema_hook(runner) if self.use_ema else None
        source = ema_hook.ema_model.module if ema_hook is not None else classifier
        path = self.filename if osp.isabs(self.filename) else osp.join(runner.work_dir, self.filename)
        if rank != 0:
            stem, ext = osp.splitext(path)
            path = f'{stem}.rank{rank}{ext}'
        cfg_file = getattr(getattr(runner, 'cfg', None), 'filename', None)
        save_classifier_backbone(path, source, classifier_meta=classifier, method=self.method,
                                 epochs=runner.epoch, top1=self.top1, source_config=cfg_file,
                                 iters=runner.iter, ema=ema_hook is not None,
                                 setup=runner.message_hub.get_info('mixseg_setup'))  # mixcore.provenance.SETUP_KEY
        self.path = path
        print_log(f'backbone file written: {path} ({"EMA" if ema_hook is not None else "model"} weights, '
                  f'top1={self.top1})', logger='current')
        return path


def save_classifier_backbone(path, classifier, *, classifier_meta=None, method=None, epochs=None, top1=None,
                             source_config=None, **extra):
    """Write the backbone of a :class:`~pretrain.classifier.MixClassifier` (or its EMA copy) to ``path``.

    ``classifier_meta``: the classifier the metadata (arch, img_size, patch_size, method) is read from, when
    ``classifier`` is an EMA copy without the attributes.
    """
    from mixcore.weights.backbone_file import save_backbone_file
    meta_src = classifier_meta if classifier_meta is not None else classifier
    return save_backbone_file(
        path, backbone_state_dict(classifier.model), arch=meta_src.arch, img_size=list(meta_src.img_size),
        patch_size=meta_src.patch_size, method=method or meta_src.method, epochs=epochs, top1=top1,
        source_config=source_config, model_kwargs=dict(getattr(meta_src, 'model_kwargs', {}) or {}),
        num_classes=getattr(meta_src, 'num_classes', None), **extra)


def read_checkpoint_config(checkpoint: str, config: Optional[str] = None):
    """``(checkpoint contents, config, source_config)`` of an mmengine checkpoint, for exporting its backbone.

    The checkpoint is read by :func:`mixcore.weights.read.read_file` (``torch.load(weights_only=True)``, allowing
    what mmengine stores besides tensors). The config is ``config`` or else the config text mmengine stored in the
    checkpoint's ``meta``, read as data by :func:`plain_config`, never executed, and every ``type`` it names checked
    by :func:`mixcore.stored_config.check_stored_types` against the registries of its scope (no dotted import paths,
    nothing unregistered is built: a stage-2 checkpoint needs the stage-2 modules imported, which
    :func:`mixseg.dense_export.export_any_checkpoint` does).
    """
    from mmengine.config import Config

    from mixcore.stored_config import StoredConfigError, check_stored_types
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.read import read_file

    if not osp.isfile(checkpoint):
        raise CheckpointError(f'{checkpoint}: checkpoint not found')
    ckpt = read_file(checkpoint)
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get('state_dict'), Mapping):
        raise CheckpointError(f'{checkpoint}: not an mmengine checkpoint (no "state_dict")')
    meta = ckpt.get('meta') or {}
    if config is not None:
        return ckpt, Config.fromfile(config), config
    if not meta.get('cfg'):
        raise CheckpointError(f'{checkpoint}: the checkpoint carries no config; pass --config')
    source = f'{checkpoint} (meta.cfg)'
    cfg = plain_config(meta['cfg'], source)
    scope = cfg.get('default_scope') or 'pretrain'
    backbone_type = ((cfg.get('model') or {}).get('backbone') or {}).get('type')
    try:
        check_stored_types(cfg.to_dict(), source, scope if scope in ('pretrain', 'mmseg', 'mmdet') else 'pretrain',
                           built='model' if scope == 'pretrain' or not backbone_type else 'model.backbone')
    except StoredConfigError as e:
        raise CheckpointError(str(e)) from e
    return ckpt, cfg, f'{checkpoint} (config stored in the checkpoint)'


def export_checkpoint(checkpoint: str, out: str, config: Optional[str] = None, use_ema: bool = True,
                      top1: Optional[float] = None, *, loaded=None):
    """Write the backbone file of a stage-1 (``MixClassifier``) mmengine checkpoint (stage-2 checkpoints:
    :func:`mixseg.dense_export.export_any_checkpoint`, which ``tools/export_backbone.py`` calls).

    ``loaded``: what :func:`read_checkpoint_config` returned, when the caller has read it already. The weights are
    loaded strictly, so a checkpoint of another architecture is refused with the list of missing/unexpected keys.
    mmengine saves the EMA weights as ``state_dict`` when ``EMAHook`` was on (the raw ones under
    ``ema_state_dict``); ``use_ema=False`` exports the raw ones.
    """
    from mmengine.registry import DefaultScope

    from mixcore.stored_config import no_import_fallback
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.load import load_strict

    from .registry import MODELS

    ckpt, cfg, source_config = loaded or read_checkpoint_config(checkpoint, config)
    meta = ckpt.get('meta') or {}
    scope = cfg.get('default_scope') or 'pretrain'
    if scope != 'pretrain':
        raise CheckpointError(f'{checkpoint}: default_scope {scope!r}: not a stage-1 (pretrain) checkpoint; '
                              f'tools/export_backbone.py also reads stage-2 (mmseg MixsegViT, mmdet MixsegPVT) ones')
    state_dict = dict(ckpt['state_dict'])
    ema_state = ckpt.get('ema_state_dict')
    is_ema = isinstance(ema_state, Mapping) and any(k.startswith('module.') for k in ema_state)
    if is_ema and not use_ema:  # mmengine swapped: 'ema_state_dict' holds the raw weights under 'module.'
        state_dict = {k: ema_state.get('module.' + k, v) for k, v in state_dict.items()}
    with DefaultScope.overwrite_default_scope('pretrain'), no_import_fallback(checkpoint):
        classifier = MODELS.build(cfg.model)
    if not hasattr(classifier, 'model') or not hasattr(classifier, 'arch'):
        raise CheckpointError(f'{checkpoint}: config model {cfg.model.get("type")} is not a MixClassifier')
    load_strict(classifier, state_dict, source=checkpoint)
    return save_classifier_backbone(
        out, classifier, epochs=meta.get('epoch'), top1=top1, source_config=source_config,
        iters=meta.get('iter'), ema=bool(is_ema and use_ema))

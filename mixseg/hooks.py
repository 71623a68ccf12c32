"""mmengine hooks every mixseg run gets (tools/train.py adds them; they live in mmengine's root registry so
the 'pretrain', 'mmseg' and 'mmdet' scopes all find them)."""
from __future__ import annotations

import math

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import find_latest_checkpoint


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stop training at the first non-finite loss, before anything of that iteration is saved.

    mmengine has no such check (mmdet's ``CheckInvalidLossHook`` asserts without saying where or what is
    left). Runs with ``VERY_HIGH`` priority, i.e. before ``CheckpointHook``, so the last checkpoint on disk
    is the last good one; the error names the iteration and that checkpoint.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = outputs['loss']
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(value):
            return
        last = find_latest_checkpoint(runner.work_dir) if runner.work_dir else None
        bad = [k for k, v in outputs.items()
               if k != 'loss' and isinstance(v, (torch.Tensor, float)) and not math.isfinite(float(v))]
        raise FloatingPointError(
            f'loss became {value} at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
            + (f'; non-finite terms: {", ".join(bad)}' if bad else '')
            + f'. Training stopped; nothing of this iteration was saved. Last good checkpoint: '
            + (f'{last} (continue with --resume {last})' if last else 'none saved yet'))


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Refuse to train when a head's ``num_classes`` does not match the dataset's classes.

    Written here because mmseg and stage 1 have no such check and mmdet's ``NumClassCheckHook`` covers
    detection heads only (with a bare assert); this one covers every scope and names config and data.
    Modules with ``num_classes == 0`` (feature extractors such as the stage-2 timm ViT) and RPN heads
    (class-agnostic) are skipped; a sigmoid head with one output for two classes is accepted (mmseg).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        self._check(runner, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, 'val')

    def _check(self, runner, split: str) -> None:
        loader = getattr(runner, f'{split}_dataloader', None)
        dataset = getattr(loader, 'dataset', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if not classes:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        for name, module in model.named_modules():
            n = getattr(module, 'num_classes', None)
            if not isinstance(n, int) or n == 0 or name.endswith('rpn_head') or n == len(classes):
                continue
            if n == 1 and len(classes) == 2:
                continue
            root = getattr(dataset, 'data_root', None) or ''
            raise ValueError(
                f'{runner.cfg.filename or "config"}: {name or "model"} ({type(module).__name__}) has '
                f'num_classes={n}, but the {split} dataset {type(dataset).__name__}'
                f'{f" at {root}" if root else ""} has {len(classes)} classes ({", ".join(map(str, classes[:5]))}'
                f'{", ..." if len(classes) > 5 else ""}). Set num_classes={len(classes)} in the model config '
                f'or give the dataset the classes the model was built for (metainfo=dict(classes=...)).')

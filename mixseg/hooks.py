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

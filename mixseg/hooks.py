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


# Phases of a training step whose random draws are keyed separately (see ResumableRandomnessHook).
_EPOCH, _FETCH, _STEP = 1, 2, 3


def reseed(seed: int, *key: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every GPU) from ``(seed, *key)``.

    The key is hashed through numpy's ``SeedSequence``, so neighbouring keys give unrelated streams.
    """
    import random

    import numpy as np
    state = np.random.SeedSequence([int(seed) % 2**63, *map(int, key)]).generate_state(2, np.uint32)
    random.seed(int(state[0]))
    np.random.seed(int(state[0]))
    torch.manual_seed((int(state[0]) << 32) | int(state[1]))


class _ReseedingIterator:
    """Wraps an iteration-based loop's data iterator: reseeds before every batch is drawn."""

    def __init__(self, iterator, seed_fn):
        self._iterator, self._seed_fn, self.fetched = iterator, seed_fn, 0

    def __iter__(self):
        return self

    def __next__(self):
        self._seed_fn(_FETCH, self.fetched)
        self.fetched += 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class ResumableRandomnessHook(Hook):
    """Make every random draw of training a function of (seed, iteration) — the seed per rank under
    ``diff_rank_seed`` — so that a run killed and resumed with ``--resume`` draws exactly what an
    uninterrupted run draws.

    mmengine seeds the process once, when the Runner starts; a resumed run therefore draws its mixing
    coefficients, boxes, dropout masks and (without worker processes) augmentations from the start of the
    stream again, and for iteration-based loops it even replays the skipped batches through the pipeline
    back to back. mmengine has no hook for this (its checkpoints hold no RNG state), hence this one: with
    ``LOWEST`` priority it reseeds python/numpy/torch from ``(runner.seed, phase, counter)``

    * before each epoch (epoch-based loops: sampler iterator, worker start, first batch),
    * before each batch is drawn (iteration-based loops: around the loop's data iterator, so the replayed
      batches after a resume are drawn exactly as they were; epoch-based loops: after each iteration),
    * right before each ``train_step`` (mixing, drop-path, RPN sampling, ...).

    What it cannot reach: worker processes keep the stream mmengine's ``worker_init_fn`` gave them at start;
    that is exact for non-persistent workers and for iteration-based loops (the replay walks the workers
    through the same batches), not for *persistent* workers of an epoch-based loop resumed at epoch k
    (``tools/train.py --deterministic`` turns them off), and a mixer built with its own ``generator``.
    Sampler seeds are pinned by :func:`mixseg.engine.make_reproducible`.
    """

    priority = 'LOWEST'

    def _reseed(self, runner, *key) -> None:
        reseed(runner.seed, *key)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is not None and not isinstance(iterator, _ReseedingIterator):
            loop.dataloader_iterator = _ReseedingIterator(iterator, lambda *key: self._reseed(runner, *key))

    def _by_epoch(self, runner) -> bool:
        return not isinstance(getattr(runner.train_loop, 'dataloader_iterator', None), _ReseedingIterator)

    def before_train_epoch(self, runner) -> None:
        if self._by_epoch(runner):
            self._reseed(runner, _EPOCH, runner.epoch)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._reseed(runner, _STEP, runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._by_epoch(runner):  # the next batch of this epoch is drawn right after this hook
            self._reseed(runner, _FETCH, runner.iter + 1)

"""mmengine hooks every mixseg run gets (tools/train.py adds them; they live in mmengine's root registry so
the 'pretrain', 'mmseg' and 'mmdet' scopes all find them)."""
from __future__ import annotations

import math
import os

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import FUNCTIONS, HOOKS
from mmengine.runner.checkpoint import find_latest_checkpoint


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stop training at the first non-finite loss, before anything of that iteration is saved.

    mmengine has no such check (mmdet's ``CheckInvalidLossHook`` asserts without saying where or what is
    left). Runs with ``VERY_HIGH`` priority, i.e. before ``CheckpointHook``, so the last checkpoint on disk
    is the last good one; the error names the iteration and that checkpoint. In a multi-process run the
    ranks agree first (one all-reduce of a flag per iteration), so all stop at the same iteration.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = outputs['loss']
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else float(loss)
        # the loss is per rank but the averaged gradients spoil every replica: all ranks stop together,
        # before any of them reaches CheckpointHook
        flag = torch.tensor(0.0 if math.isfinite(value) else 1.0,
                            device=loss.device if isinstance(loss, torch.Tensor) else 'cpu')
        all_reduce(flag, op='max')
        if not flag.item():
            return
        if math.isfinite(value):
            raise FloatingPointError(
                f'the loss became non-finite on another rank at iteration {runner.iter + 1} '
                f'(epoch {runner.epoch + 1}); stopped on all ranks, nothing of this iteration was saved')
        last = find_latest_checkpoint(runner.work_dir) if runner.work_dir else None
        bad = [k for k, v in outputs.items()
               if k != 'loss' and isinstance(v, (torch.Tensor, float)) and not math.isfinite(float(v))]
        raise FloatingPointError(
            f'loss became {value} at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
            + (f'; non-finite terms: {", ".join(bad)}' if bad else '')
            + '. Training stopped; nothing of this iteration was saved. Last good checkpoint: '
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
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
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


@FUNCTIONS.register_module()
def epoch_seeded_worker_init_fn(worker_id: int) -> None:
    """Data-worker seeding for ``--deterministic`` epoch-based runs (workers restarted every epoch).

    mmengine's ``worker_init_fn`` seeds a worker with ``seed + worker_id + rank·num_workers``: the same
    augmentation stream in every epoch. torch itself seeds each worker from a base seed drawn from the main
    process's RNG when the epoch's iterator is made, which :class:`ResumableRandomnessHook` has just set from
    (seed, epoch); this keeps torch's seed and also mixes in the rank, so streams differ per epoch, worker
    and rank, and a resumed run repeats them.
    """
    reseed(torch.initial_seed(), int(os.environ.get('RANK', 0)))


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

    What it cannot reach: worker processes keep the stream they were seeded with at start; that is exact for
    iteration-based loops (the replay walks the workers through the same batches) and for workers started
    per epoch, not for *persistent* workers of an epoch-based loop resumed at epoch k
    (``tools/train.py --deterministic`` turns them off and seeds the per-epoch workers with
    :func:`epoch_seeded_worker_init_fn`), and a mixer built with its own ``generator``.
    Sampler seeds are pinned by :func:`mixseg.engine.make_reproducible`.
    """

    priority = 'LOWEST'

    def _reseed(self, runner, *key) -> None:
        reseed(runner.seed, *key)

    by_epoch = True  # until before_train finds an iteration-based loop

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)  # only iteration-based loops have one
        self.by_epoch = iterator is None
        if iterator is not None and not isinstance(iterator, _ReseedingIterator):
            loop.dataloader_iterator = _ReseedingIterator(iterator, lambda *key: self._reseed(runner, *key))

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._reseed(runner, _EPOCH, runner.epoch)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._reseed(runner, _STEP, runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.by_epoch:  # the next batch of this epoch is drawn right after this hook
            self._reseed(runner, _FETCH, runner.iter + 1)

"""mmengine hooks every mixseg run gets (tools/train.py adds them). They live in mixcore's child registry
(:mod:`mixcore.registry`) and are named with its scope, ``dict(type='mixcore.NaNGuardHook')``, so the 'pretrain',
'mmseg' and 'mmdet' scopes all find them."""
from __future__ import annotations

import os

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from .registry import FUNCTIONS, HOOKS
from mmengine.runner import EpochBasedTrainLoop

from mixcore.weights.errors import CheckpointError
from mixcore.weights.load import CheckpointMismatchError
from .workdir import WorkDirError, latest_checkpoint, write_last_checkpoint


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Stop training when the loss diverges, before anything of a diverged iteration is saved.

    mmengine has no such check (mmdet's ``CheckInvalidLossHook`` asserts without saying where or what is
    left). The loss of every iteration is checked **on the device** (a few element-wise kernels, no host read,
    no collective); the verdict is read every ``interval`` iterations and before every checkpoint or validation
    (``VERY_HIGH`` priority: before ``CheckpointHook``), with one all-reduce across ranks, so all ranks stop at
    the same check and the last checkpoint on disk is the last good one. The error names the first non-finite
    iteration, the non-finite loss terms and that checkpoint.

    Divergence: a non-finite loss, except under fp16 with a dynamic GradScaler, which skips the update of such a
    step (the weights stay finite) and lowers its scale; there only ``max_skips`` consecutive non-finite losses
    count as divergence (the scale cannot recover the run). bf16 and fp32 have no scaler: one non-finite loss
    has already poisoned the weights.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 50, max_skips: int = 8):
        if interval < 1 or max_skips < 1:
            raise ValueError(f'NaNGuardHook: interval and max_skips must be >= 1, got {interval}, {max_skips}')
        self.interval, self.max_skips = int(interval), int(max_skips)
        self._state = None

    @staticmethod
    def _scaler(runner):
        wrapper = getattr(runner, 'optim_wrapper', None)
        scalers = [getattr(w, 'loss_scaler', None) for w in getattr(wrapper, 'optim_wrappers', {}).values()] \
            if hasattr(wrapper, 'optim_wrappers') else [getattr(wrapper, 'loss_scaler', None)]
        return any(s is not None and getattr(s, 'is_enabled', lambda: True)() for s in scalers)

    def before_train(self, runner) -> None:
        self.tolerance = self.max_skips if self._scaler(runner) else 0
        self._state = None

    def _reset(self, device) -> None:
        # streak: consecutive non-finite losses; worst: longest streak since the last check; first: iteration
        # (1-based) and value of the first non-finite loss; bad: per loss term, whether it was ever non-finite
        self._state = dict(streak=torch.zeros((), dtype=torch.int64, device=device),
                           worst=torch.zeros((), dtype=torch.int64, device=device),
                           first=torch.full((), -1, dtype=torch.int64, device=device),
                           value=torch.zeros((), dtype=torch.float32, device=device), bad={})

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = outputs['loss']
        loss = loss.detach().float().mean() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        if self._state is None or self._state['streak'].device != loss.device:
            self._reset(loss.device)
        st = self._state
        bad = ~torch.isfinite(loss)
        st['streak'] = torch.where(bad, st['streak'] + 1, 0)
        st['worst'] = torch.maximum(st['worst'], st['streak'])
        fresh = bad & (st['first'] < 0)
        st['first'] = torch.where(fresh, runner.iter + 1, st['first'])
        st['value'] = torch.where(fresh, loss, st['value'])
        for k, v in outputs.items():
            if k != 'loss' and isinstance(v, torch.Tensor) and v.is_floating_point():
                b = ~torch.isfinite(v.detach()).all()
                st['bad'][k] = b if k not in st['bad'] else st['bad'][k] | b
        if (runner.iter + 1) % self.interval == 0 or self._save_due(runner):
            self.check(runner)

    def after_train_epoch(self, runner) -> None:
        self.check(runner)  # epoch-end checkpoints and validation come after this hook

    def after_train(self, runner) -> None:
        self.check(runner)  # before the backbone export

    @staticmethod
    def _save_due(runner) -> bool:
        """Whether a checkpoint or a validation follows this iteration (iteration-based schedules)."""
        n = runner.iter + 1
        if n >= runner.max_iters:
            return True
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and hook.interval > 0 \
                    and n >= getattr(hook, 'save_begin', 0) and n % hook.interval == 0:
                return True
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop):  # validation follows after_train_epoch, checked there
            return False
        val_interval = getattr(loop, 'val_interval', 0)
        return bool(val_interval and n >= getattr(loop, 'val_begin', 1) and n % val_interval == 0)

    def check(self, runner) -> None:
        """Read the verdict (one all-reduce, one host read) and raise on divergence."""
        st = self._state
        if st is None:
            return
        worst_local = st['worst'].clone()
        worst = st['worst'].clone()
        all_reduce(worst, op='max')
        worst, worst_local, first, value = (int(worst), int(worst_local), int(st['first']), float(st['value']))
        bad_terms = [k for k, b in st['bad'].items() if bool(b)]
        if worst <= self.tolerance:
            # nothing diverged (fp16: the scaler skipped those steps); restart the window, keep the streak
            st['worst'] = st['streak'].clone()
            st['first'] = torch.where(st['streak'] > 0, st['first'], -1)
            st['bad'] = {}
            return
        if worst_local <= self.tolerance:
            raise FloatingPointError(
                f'the loss became non-finite on another rank (checked at iteration {runner.iter + 1}, epoch '
                f'{runner.epoch + 1}); stopped on all ranks, nothing since the last check was saved')
        try:
            last = latest_checkpoint(runner.work_dir) if runner.work_dir else None
        except WorkDirError:
            last = None
        skips = f' ({worst} consecutive non-finite losses; the GradScaler tolerates {self.tolerance})' \
            if self.tolerance else ''
        raise FloatingPointError(
            f'loss became {value} at iteration {first}{skips}'
            + (f'; non-finite terms: {", ".join(bad_terms)}' if bad_terms else '')
            + f'. Training stopped at iteration {runner.iter + 1}; nothing since iteration {first} was saved. '
            + 'Last good checkpoint: ' + (f'{last} (continue with --resume {last})' if last else 'none saved yet'))


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
_EPOCH, _FETCH, _STEP, _SHARED = 1, 2, 3, 4


def shared_seed(runner) -> int:
    """The run's seed without the rank offset of ``diff_rank_seed`` (mmengine adds the rank): the same on
    every rank."""
    seed = int(runner.seed)
    if (runner.cfg.get('randomness') or {}).get('diff_rank_seed'):
        from mmengine.dist import get_rank
        seed -= get_rank()
    return seed


def seed_from(seed: int, *key: int) -> int:
    """A 63-bit seed from ``(seed, *key)`` (numpy's SeedSequence: neighbouring keys give unrelated streams)."""
    import numpy as np
    state = np.random.SeedSequence([int(seed) % 2**63, *map(int, key)]).generate_state(2, np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) & (2**63 - 1)


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
    * right before each ``train_step`` (mixing, drop-path, RPN sampling, ...);
    * right before each ``train_step``, the model's rank-shared stream (``model.seed_rank_shared``, a
      MixSwitch's member choice) from ``(seed without the rank offset, iteration)``: the same on every rank.

    What it cannot reach: worker processes keep the stream they were seeded with at start; that is exact for
    iteration-based loops (the replay walks the workers through the same batches) and for workers started
    per epoch, not for *persistent* workers of an epoch-based loop resumed at epoch k
    (``tools/train.py --deterministic`` turns them off and seeds the per-epoch workers with
    :func:`epoch_seeded_worker_init_fn`), and a mixer built with its own ``generator``.
    Sampler seeds are pinned by :func:`mixcore.runtime.make_reproducible`.
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
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        seed_shared = getattr(model, 'seed_rank_shared', None)
        if seed_shared is not None:  # draws every rank must make alike (MixSwitch's member)
            seed_shared(seed_from(shared_seed(runner), _SHARED, runner.iter))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.by_epoch:  # the next batch of this epoch is drawn right after this hook
            self._reseed(runner, _FETCH, runner.iter + 1)


@HOOKS.register_module()
class MixsegCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with three changes for resumable work dirs:

    * ``last_checkpoint`` names the checkpoint relative to the work dir (written atomically), and is resolved
      against it (:func:`mixcore.workdir.latest_checkpoint`), so a copied or moved work dir resumes its own
      checkpoint;
    * with ``max_keep_ckpts`` the checkpoint that drops out is deleted *after* the new one is written (mmengine
      deletes it first): a save that fails (full disk) leaves the previous checkpoint and ``last_checkpoint``;
    * best-checkpoint paths a resumed run brings from a moved work dir are re-rooted into this one (mmengine
      would delete the original directory's file when a better one comes).

    ``tools/train.py`` puts it in place of ``CheckpointHook`` (:func:`mixseg.run_preparation.prepare_training`).
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if '://' in str(self.out_dir):
            return
        if getattr(self, 'best_ckpt_path', None):
            self.best_ckpt_path = self._reroot(self.best_ckpt_path)
        for key, path in list((getattr(self, 'best_ckpt_path_dict', None) or {}).items()):
            if path:
                self.best_ckpt_path_dict[key] = self._reroot(path)

    def _reroot(self, path: str) -> str:
        if os.path.dirname(path) == str(self.out_dir):
            return path
        return os.path.join(self.out_dir, os.path.basename(path))

    def _save_checkpoint_with_step(self, runner, step, meta):
        evicted = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                evicted = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        if evicted is not None and evicted != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(evicted))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)
            elif self.file_backend.isdir(old):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(old)


def _model_of(runner):
    from mmengine.model import BaseTTAModel
    model = runner.model
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse a checkpoint whose weights do not fit the model, before anything of it is loaded.

    mmengine loads ``load_from`` (``tools/test.py``'s checkpoint, fine-tuning) and ``--resume`` non-strictly: a
    checkpoint none of whose keys fit is "evaluated" with random weights. This hook runs at
    ``after_load_checkpoint`` (before mmengine copies the weights) with ``VERY_HIGH`` priority and raises
    :class:`~mixcore.weights.load.CheckpointMismatchError` listing the missing and unexpected keys and the shape
    mismatches (mmengine's key revision ``^module.`` applied, BatchNorm's ``num_batches_tracked`` ignored as
    mmengine does). ``allow_partial=True`` (``--allow-partial-load``) loads what fits and logs the rest.

    When resuming it also checks that the checkpoint's optimizer state has the parameter groups of the
    config's optimizer, naming both (torch says only "different number of parameter groups"), and drops the
    checkpoint's ``meta['config']`` (written by older OpenMMLab tools), which mmengine's resume would execute
    as Python (``Config.fromstring``).
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False):
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        import re

        from mmengine.logging import print_log
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if isinstance(meta, dict) and 'config' in meta:
            meta.pop('config')
            print_log(f'{source}: meta["config"] dropped (mmengine would execute it when resuming)',
                      logger='current', level=30)
        resuming = bool(getattr(runner, '_resume', False))
        state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f'{source}: no state dict in the checkpoint')
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        model = _model_of(runner)
        own = model.state_dict()
        missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
        unexpected = [k for k in state if k not in own]
        mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                      if k in state and hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or mismatched:
            error = CheckpointMismatchError(source, missing, unexpected, mismatched, type(model).__name__)
            if resuming or not self.allow_partial:
                hint = ('' if resuming else ' To load only the weights that fit on purpose, pass '
                        '--allow-partial-load.')
                raise _with_hint(error, hint)
            print_log(f'--allow-partial-load: {error}'.replace('nothing was loaded', 'only the fitting weights '
                                                               'are loaded'), logger='current', level=30)
        if resuming:
            self._check_optimizer(runner, checkpoint, source)

    @staticmethod
    def _check_optimizer(runner, checkpoint, source) -> None:
        from mmengine.optim import OptimWrapper
        saved = checkpoint.get('optimizer')
        wrapper = getattr(runner, 'optim_wrapper', None)
        if not isinstance(saved, dict) or not isinstance(wrapper, OptimWrapper) or 'param_groups' not in saved:
            return
        now = [len(g['params']) for g in wrapper.optimizer.param_groups]
        then = [len(g['params']) for g in saved['param_groups']]
        if now != then:
            written_by = (checkpoint.get('meta') or {}).get('experiment_name')
            raise CheckpointError(
                f'{source}: cannot resume: the checkpoint\'s optimizer has {len(then)} parameter groups '
                f'(parameters per group: {then}), the config\'s optimizer has {len(now)} ({now}). The checkpoint was '
                f'written with another config' + (f' (run {written_by})' if written_by else '') + ' or other '
                f'optimizer settings (paramwise_cfg, frozen layers): resume with the config that wrote it, or start '
                f'a new run from its weights with load_from=CHECKPOINT (no --resume)')


def _with_hint(error: CheckpointMismatchError, hint: str) -> CheckpointMismatchError:
    if hint:
        error.args = (str(error) + '\n ' + hint,)
    return error

"""The length of a training schedule as one number: ``tools/train.py --epochs N`` / ``--iters N``.

A config's schedule length lives in many entries: the loop (``train_cfg.max_epochs`` / ``max_iters``), every
parameter scheduler (``begin``/``end``, ``T_max``, ``milestones``, :class:`pretrain.schedulers.TimmCosineLR`'s
``t_initial``/``warmup_t``), the validation and checkpoint intervals and the hooks that start at an epoch
(``EMAHook.begin_epoch``/``begin_iter``). Changing only the loop keeps the old learning-rate curve: a 1-epoch run
of a 300-epoch cosine never anneals. mmengine has no way to rescale a schedule (its ``convert_to_iter_based``
only changes the unit), so this module does it:

* :func:`rescale_schedule` multiplies every such entry by ``N / <the config's length>`` — warmups, cooldowns and
  milestones keep their share of the run. Iteration counts are rounded (at least 1); epoch counts may become
  fractions of an epoch (a 5-epoch warmup of 300 is 1/60 epoch of a 1-epoch run): such schedulers are stepped per
  iteration (mmengine's ``convert_to_iter_based``), and :func:`prepare_runner` turns them into whole iterations
  once the epoch length is known (a phase shorter than one iteration is left out, with a note; mmengine would
  refuse it, or never reach a fractional milestone). Validation, checkpoint and logger intervals are a cost per
  step, not a share of the run: they are capped at the new length (a shorter run validates and saves no more
  often; mmengine validates and saves at the last step anyway), while starting points (``val_begin``,
  ``save_begin``, ``EMAHook.begin_*``) are rescaled. The logger interval of an epoch-based loop counts
  iterations within an epoch and is kept. (No config here has other epoch-tied values,
  e.g. a mixing switch-off epoch; a new one belongs in :func:`_hook_entries`.)
* ``--cfg-options train_cfg.max_epochs=N`` (or ``max_iters``), the entry the tools advise, does the same; entries
  given in ``--cfg-options`` themselves win over the rescaled ones.
* :func:`check_schedule` compares the loop with the schedulers' ends once all options are applied. A schedule
  that ends after the loop (the lr never reaches its end) or a constant-lr tail other than the config's own
  (timm's cooldown epochs in the official TransMix/TokenMix configs) is an error naming both values and
  ``--epochs``/``--iters`` — or only a printed warning when the user set scheduler entries with
  ``--cfg-options`` themselves (plausibly on purpose, e.g. the first epochs of a run to be resumed later).
  Iteration-counted schedulers of an epoch-based loop (Mask R-CNN's 500-iteration warmup) cannot be compared
  before the data is read and are left out of the check.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

#: mmengine's ``INF`` (an ``end`` at or above it: the scheduler never ends)
INF = int(1e9)
#: scheduler arguments that count steps (epochs or iterations, as the scheduler's ``by_epoch``)
STEP_KEYS = ('begin', 'end', 'T_max', 't_initial', 'warmup_t', 'step_size', 'total_steps')
#: the loop entries and the hooks' entries that count steps of the loop
LOOP_KEY = {'epoch': 'max_epochs', 'iter': 'max_iters'}
OPTION = {'epoch': '--epochs', 'iter': '--iters'}


class ScheduleError(ValueError):
    """A schedule whose loop and schedulers disagree, or a length option that does not fit the config."""


def loop_unit(cfg) -> str:
    """``'epoch'`` or ``'iter'``: what the config's training loop counts."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'by_epoch' in train_cfg:
        return 'epoch' if train_cfg['by_epoch'] else 'iter'
    loop_type = str(train_cfg.get('type', ''))
    if 'Epoch' in loop_type or ('Iter' not in loop_type and 'max_epochs' in train_cfg):
        return 'epoch'
    return 'iter'


def loop_length(cfg) -> Optional[int]:
    train_cfg = cfg.get('train_cfg') or {}
    return train_cfg.get(LOOP_KEY[loop_unit(cfg)])


def _schedulers(cfg):
    """``(dotted key, scheduler dict)`` of every parameter scheduler (a list, or a dict of lists per optimizer)."""
    ps = cfg.get('param_scheduler')
    if isinstance(ps, Mapping) and 'type' not in ps:
        for name, group in ps.items():
            for i, s in enumerate(group if isinstance(group, (list, tuple)) else [group]):
                yield f'param_scheduler.{name}.{i}', s
    elif isinstance(ps, Mapping):
        yield 'param_scheduler', ps
    elif ps:
        for i, s in enumerate(ps):
            yield f'param_scheduler.{i}', s


def _unit(scheduler) -> str:
    return 'epoch' if scheduler.get('by_epoch', True) else 'iter'


def _hook_entries(cfg, unit: str):
    """``(dotted key, container, entry, step unit)`` of the loop's and hooks' entries that count steps."""
    train_cfg = cfg.get('train_cfg') or {}
    for k in ('val_interval', 'val_begin'):
        if k in train_cfg:
            yield f'train_cfg.{k}', train_cfg, k, unit
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt:
        ckpt_unit = 'epoch' if ckpt.get('by_epoch', True) and unit == 'epoch' else 'iter'
        for k in ('interval', 'save_begin'):
            if k in ckpt:
                yield f'default_hooks.checkpoint.{k}', ckpt, k, ckpt_unit
    logger = (cfg.get('default_hooks') or {}).get('logger')
    if logger and unit == 'iter' and 'interval' in logger:
        yield 'default_hooks.logger.interval', logger, 'interval', 'log'
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        for k, u in (('begin_epoch', 'epoch'), ('begin_iter', 'iter')):
            if k in hook:
                yield f'custom_hooks.{i}.{k}', hook, k, u


def _explicit(key: str, explicit: Iterable[str]) -> bool:
    return any(key == e or key.startswith(f'{e}.') for e in explicit)


def _scaled(value, ratio: float, whole: bool):
    v = value * ratio
    if whole or abs(v - round(v)) < 1e-9:
        return int(round(v)) if not whole or value <= 0 else max(1, int(round(v)))
    return v


def _fmt(v) -> str:
    return f'{v:.4g}' if isinstance(v, float) else str(v)


def rescale_schedule(cfg, length: int, explicit: Iterable[str] = ()) -> list[str]:
    """Set the loop to ``length`` steps (its unit) and rescale every schedule entry (see module doc) in place;
    entries named in ``explicit`` (``--cfg-options`` keys) are left alone. Returns what changed, for the log."""
    explicit = list(explicit)
    unit, old = loop_unit(cfg), loop_length(cfg)
    if not cfg.get('train_cfg'):
        raise ScheduleError(f'no train_cfg: the config has no training loop to set to {length} {unit}s')
    if not old or old == length:
        cfg.train_cfg[LOOP_KEY[unit]] = length
        return []
    ratio = length / old
    changes = [f'train_cfg.{LOOP_KEY[unit]} {old} -> {length}']
    cfg.train_cfg[LOOP_KEY[unit]] = length
    for key, s in _schedulers(cfg):
        whole = _unit(s) == 'iter' or unit == 'iter'
        fractional = False
        for k in STEP_KEYS + ('milestones', 'periods'):
            if k not in s or _explicit(f'{key}.{k}', explicit) or (k == 'end' and s[k] >= INF):
                continue
            old_v = s[k]
            new_v = ([_scaled(m, ratio, whole) for m in old_v] if isinstance(old_v, (list, tuple))
                     else _scaled(old_v, ratio, whole))
            fractional |= any(isinstance(v, float) for v in (new_v if isinstance(new_v, list) else [new_v]))
            s[k] = new_v
            if new_v != old_v:
                shown = [_fmt(v) for v in new_v] if isinstance(new_v, list) else _fmt(new_v)
                changes.append(f'{key}.{k} ({s.get("type")}) {old_v} -> {shown}')
        if fractional and not s.get('convert_to_iter_based') and not _explicit(key, explicit):
            s['convert_to_iter_based'] = True  # fractions of an epoch: stepped per iteration
            changes.append(f'{key} ({s.get("type")}) stepped per iteration (fractions of an epoch)')
    for key, holder, k, u in _hook_entries(cfg, unit):
        if _explicit(key, explicit) or not holder[k] or holder[k] <= 0:
            continue
        if k.endswith('interval'):  # a cost per step: a shorter run validates/saves/logs no more often
            new_v = min(holder[k], length) if u in (unit, 'log') else holder[k]
        else:  # a position in the schedule (val_begin, save_begin, begin_epoch, begin_iter)
            new_v = _scaled(holder[k], ratio, True)
        if new_v != holder[k]:
            changes.append(f'{key} {holder[k]} -> {new_v}')
            holder[k] = new_v
    return changes


def _end_of(s) -> tuple[Optional[float], str]:
    """Where a scheduler's value reaches its last value (its own unit), and which entries say so."""
    begin = s.get('begin', 0)
    if s.get('type') == 'TimmCosineLR' and 't_initial' in s:
        return begin + s['t_initial'], f'begin {begin} + t_initial {_fmt(s["t_initial"])}'
    if 'CosineAnnealing' in str(s.get('type')) and s.get('T_max') is not None:
        return begin + s['T_max'], f'begin {begin} + T_max {_fmt(s["T_max"])}'
    end = s.get('end', INF)
    return (None, '') if end >= INF else (end, f'end {_fmt(end)}')


def schedule_end(cfg) -> tuple[Optional[float], str]:
    """The step (loop units) where the last scheduler counted in the loop's unit ends, and its description;
    ``(None, '')`` when there is none (no schedulers, or only iteration-counted ones in an epoch-based loop)."""
    unit = loop_unit(cfg)
    best, what = None, ''
    for key, s in _schedulers(cfg):
        if _unit(s) != unit:
            continue
        end, how = _end_of(s)
        if end is not None and (best is None or end > best):
            best, what = end, f'{key} ({s.get("type")}: {how})'
    return best, what


def check_schedule(cfg, reference: tuple, config_path: str, explicit: Iterable[str] = ()) -> list[str]:
    """Compare the loop with the schedulers' ends (see module doc). ``reference``: ``(loop length, schedule
    end)`` of the config file as read. Raises :class:`ScheduleError`, or returns the warnings to print."""
    unit, length = loop_unit(cfg), loop_length(cfg)
    end, what = schedule_end(cfg)
    if not length or end is None:
        return []
    ref_length, ref_end = reference
    tail = (ref_length - ref_end) * length / ref_length if ref_length and ref_end is not None else 0.
    tolerance = 1.0 if unit == 'iter' else 1e-6
    loop = f'the training loop runs {length} {unit}s (train_cfg.{LOOP_KEY[unit]})'
    if end > length + tolerance:
        problem = (f'the learning-rate schedule ends at {unit} {_fmt(end)} ({what}) but {loop}: the run stops '
                   f'before its schedule does and the lr never reaches its final value')
    elif abs((length - end) - tail) > tolerance + 1e-9 * length:
        problem = (f'the learning-rate schedule ends at {unit} {_fmt(end)} ({what}) but {loop}: the last '
                   f'{_fmt(length - end)} {unit}s run at the final lr (the config itself has '
                   f'{_fmt(tail)} such {unit}s at this length)')
    else:
        return []
    fix = (f'Change the length of a run with {OPTION[unit]} N (or --cfg-options train_cfg.{LOOP_KEY[unit]}=N '
           f'alone), which rescales every scheduler, warmup and interval with it')
    if any(str(k).startswith('param_scheduler') for k in explicit):
        return [f'warning: {config_path}: {problem}. The schedulers were set with --cfg-options, so this runs as '
                f'asked. {fix}.']
    raise ScheduleError(f'{config_path}: {problem}. {fix}.')


class ScheduleLength:
    """What tools/train.py does with ``--epochs``/``--iters``: :meth:`apply` on the config as read (before
    ``--cfg-options`` are merged, so that they win), :meth:`check` on the final config."""

    def __init__(self, config_path: str, epochs: Optional[int] = None, iters: Optional[int] = None,
                 cfg_options: Optional[Mapping] = None, log=print):
        self.config_path, self.epochs, self.iters, self.log = config_path, epochs, iters, log
        self.options = dict(cfg_options or {})
        self.reference = (None, None)

    def requested(self, cfg) -> Optional[int]:
        """The loop length asked for (``--epochs``/``--iters`` or the loop entry in ``--cfg-options``)."""
        unit = loop_unit(cfg)
        key = f'train_cfg.{LOOP_KEY[unit]}'
        other = 'iter' if unit == 'epoch' else 'epoch'
        asked = getattr(self, f'{other}s')
        if asked is not None:
            raise ScheduleError(
                f'{self.config_path}: {OPTION[other]} {asked}: this config counts {unit}s '
                f'(train_cfg.{LOOP_KEY[unit]} = {loop_length(cfg)}); use {OPTION[unit]} N')
        n = getattr(self, f'{unit}s')
        if key in self.options:
            try:
                opt = int(self.options[key])
            except (TypeError, ValueError):
                raise ScheduleError(f'{self.config_path}: --cfg-options {key}={self.options[key]!r}: the length must '
                                    f'be a positive integer') from None
            if n is not None and opt != n:
                raise ScheduleError(f'{self.config_path}: {OPTION[unit]} {n} and --cfg-options {key}={opt} '
                                    f'disagree; give one of them')
            n = opt
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ScheduleError(f'{self.config_path}: {OPTION[unit]} {n}: the length must be a positive integer')
        return n

    def apply(self, cfg) -> None:
        try:
            n = self.requested(cfg)
        except ScheduleError as e:
            raise SystemExit(f'error: {e}') from e
        self.reference = (loop_length(cfg), schedule_end(cfg)[0])
        if n is None:
            return
        try:
            changes = rescale_schedule(cfg, n, explicit=self.options)
        except ScheduleError as e:
            raise SystemExit(f'error: {self.config_path}: {e}') from e
        if changes:
            self.log(f'mixseg: schedule rescaled to {n} {loop_unit(cfg)}s: ' + '; '.join(changes))

    def check(self, cfg) -> None:
        try:
            warnings = check_schedule(cfg, self.reference, self.config_path, explicit=self.options)
        except ScheduleError as e:
            raise SystemExit(f'error: {e}') from e
        for w in warnings:
            self.log(f'mixseg: {w}')


# ---------------------------------------------------------------------------------------------------------
# at run time, once the epoch length is known

def _dataset_root(cfg) -> str:
    ds = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'dataset' in ds:
        ds = ds['dataset']
    return str(ds.get('data_root', '?'))


def check_epoch_length(loader, cfg, config_path: str) -> int:
    """The number of batches per epoch of an epoch-based loop; none is an error saying why (images vs batch
    size with ``drop_last``) instead of mmengine's ``epoch_length ... got 0``."""
    n = len(loader)
    if n > 0:
        return n
    images, batch = len(loader.sampler), loader.batch_size
    world = len(loader.dataset)
    ranks = '' if images == world else f' on this process ({world} in all, split over the processes)'
    drop = ' (drop_last)' if getattr(loader, 'drop_last', False) else ''
    raise ScheduleError(
        f'{config_path}: train_dataloader: {images} images{ranks} < batch size {batch}{drop}: an epoch has no '
        f'batch to train on (dataset root {_dataset_root(cfg)}). Add images, or use a smaller batch '
        f'(--cfg-options train_dataloader.batch_size=N) or keep the last partial batch '
        f'(--cfg-options train_dataloader.drop_last=False)')


def _in_iterations(s, epoch_length: int, key: str, log) -> Optional[dict]:
    """A scheduler given in fractions of an epoch, in whole iterations (``None``: shorter than one)."""
    fractional = any(isinstance(s.get(k), float) and s[k] < INF for k in STEP_KEYS) or any(
        isinstance(m, float) for m in s.get('milestones') or ())
    if not (s.get('by_epoch', True) and s.get('convert_to_iter_based') and fractional):
        return s
    s = dict(s)
    begin = int(s.get('begin', 0) * epoch_length)
    end = s.get('end', INF)
    end = end if end >= INF else int(end * epoch_length)
    if end <= begin:
        log(f'mixseg: {key} ({s.get("type")}) lasts less than one iteration of this {epoch_length}-iteration '
            f'epoch; left out')
        return None
    s.update(begin=begin, end=end, by_epoch=False, convert_to_iter_based=False)
    if s.get('T_max') is not None:
        s['T_max'] = s['T_max'] * epoch_length  # as mmengine's CosineAnnealing*.build_iter_from_epoch
    for k in ('t_initial', 'warmup_t', 'step_size', 'total_steps'):
        if s.get(k) is not None:
            s[k] = int(s[k] * epoch_length)  # as TimmCosineLR / mmengine's build_iter_from_epoch
    if 'milestones' in s:
        s['milestones'] = [max(1, int(round(m * epoch_length))) for m in s['milestones']]
    if s.get('type') == 'TimmCosineLR':  # its own checks: t_initial > 0, warmup_t < t_initial
        s['t_initial'] = max(1, s.get('t_initial', 1))
        if s.get('warmup_t', 0) >= s['t_initial']:
            s['warmup_t'] = 0
    return s


def whole_iterations(schedulers, epoch_length: int, log=print):
    """The scheduler configs with fractional-epoch entries turned into whole iterations (see module doc)."""
    if isinstance(schedulers, Mapping) and 'type' not in schedulers:
        return {k: whole_iterations(v, epoch_length, log) for k, v in schedulers.items()}
    single = isinstance(schedulers, Mapping)
    out = [_in_iterations(s, epoch_length, f'param_scheduler.{i}', log)
           for i, s in enumerate([schedulers] if single else schedulers)]
    out = [s for s in out if s is not None]
    return (out[0] if out else None) if single else out


def prepare_runner(runner, config_path: str, log=print) -> None:
    """Once the training loop has read the data (mmengine's ``Runner.train`` builds the loop, then the
    schedulers): an empty epoch is an error, fractional-epoch schedulers become whole iterations. Wraps this
    runner's ``build_train_loop`` (this instance only)."""
    build = runner.build_train_loop

    def build_train_loop(loop):
        loop = build(loop)
        if loop_unit(runner.cfg) == 'epoch' and hasattr(loop, 'dataloader'):
            try:
                n = check_epoch_length(loop.dataloader, runner.cfg, config_path)
            except ScheduleError as e:
                raise SystemExit(f'error: {e}') from e
            if runner.param_schedulers is not None and not _built(runner.param_schedulers):
                runner.param_schedulers = whole_iterations(runner.param_schedulers, n, log)
        return loop

    runner.build_train_loop = build_train_loop


def _built(schedulers) -> bool:
    items = schedulers.values() if isinstance(schedulers, Mapping) and 'type' not in schedulers else [schedulers]
    flat = [x for it in items for x in (it if isinstance(it, (list, tuple)) else [it])]
    return any(not isinstance(x, Mapping) for x in flat)


__all__ = ['ScheduleError', 'ScheduleLength', 'rescale_schedule', 'schedule_end', 'check_schedule', 'loop_unit',
           'loop_length', 'check_epoch_length', 'whole_iterations', 'prepare_runner']

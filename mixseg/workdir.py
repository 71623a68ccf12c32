"""The work directory of a training run: which run it holds, its ``last_checkpoint``, and what ``--resume`` picks.

* **Identity.** ``tools/train.py`` records the run a work dir holds in ``<work_dir>/run.json`` (the config file,
  the command-line options, and a digest of the resolved config without the entries that do not change what
  is computed: work dir, launcher, resume, logging/visualisation, distributed settings). A second run of another
  identity into a work dir that holds a run's files (checkpoints, ``last_checkpoint``, backbone files,
  ``results/``) is refused unless it resumes (``--resume``) or replaces the old run (``--overwrite-work-dir``,
  which deletes those files first); mmengine would otherwise overwrite ``epoch_1.pth`` and
  ``backbone.safetensors`` and leave the old run's later checkpoints and results beside them.
* **last_checkpoint.** mmengine writes the absolute path of the latest checkpoint, so a copied or moved work dir
  resumes the *original* directory's checkpoint. :class:`~mixseg.hooks.MixsegCheckpointHook` writes it relative
  to the work dir and :func:`latest_checkpoint` resolves it against the work dir; an absolute path (files from
  before) is still read, except that a checkpoint of the same name in this work dir wins over one elsewhere.
* **--resume.** :func:`resume_target` turns ``--resume`` into a checkpoint path or a clear error: nothing to
  resume, an empty ``last_checkpoint`` or a missing file are errors, never a silent fresh start.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Optional

from .checkpoint import atomic_write_text

IDENTITY_FILE = 'run.json'
LAST_CHECKPOINT = 'last_checkpoint'
#: top-level config entries that do not change what a run computes (left out of its identity)
VOLATILE_KEYS = ('work_dir', 'resume', 'load_from', 'launcher', 'experiment_name', 'env_cfg', 'model_wrapper_cfg',
                 'visualizer', 'vis_backends', 'log_level', 'log_processor')
#: command-line options that do not change what a run computes
VOLATILE_OPTIONS = ('config', 'work_dir', 'resume', 'launcher', 'local_rank', 'overwrite_work_dir', 'cfg_options',
                    'tensorboard')  # (--tensorboard adds curves, not results)


class WorkDirError(RuntimeError):
    """A work dir that holds another run, or nothing to resume; the message says what to do."""


# ---------------------------------------------------------------------------------------------------------
# last_checkpoint

def write_last_checkpoint(work_dir, checkpoint: str) -> Path:
    """``<work_dir>/last_checkpoint`` naming ``checkpoint`` relative to the work dir (written atomically)."""
    text = str(checkpoint)
    if '://' not in text:
        try:
            text = os.path.relpath(os.path.abspath(text), os.path.abspath(work_dir))
        except ValueError:  # another drive (Windows)
            text = os.path.abspath(text)
    return atomic_write_text(Path(work_dir) / LAST_CHECKPOINT, text)


def latest_checkpoint(work_dir) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, resolved against the work dir; ``None`` when there
    is no such file. An empty file raises :class:`WorkDirError`."""
    pointer = Path(work_dir) / LAST_CHECKPOINT
    if not pointer.is_file():
        return None
    text = pointer.read_text().strip()
    if not text:
        raise WorkDirError(f'{pointer} is empty; it should name the checkpoint to resume from (a file in '
                           f'{work_dir}, e.g. iter_4.pth). Write its name there, or pass --resume PATH')
    if '://' in text:
        return text
    path = Path(text)
    if not path.is_absolute():
        return str(Path(work_dir) / path)
    # an absolute path (mmengine's form): a copied or moved work dir holds its own file of that name
    own = Path(work_dir) / path.name
    if own.is_file() and own.resolve() != path.resolve(strict=False) and \
            path.parent.resolve(strict=False) != Path(work_dir).resolve():
        return str(own)
    return str(path)


def install_latest_checkpoint() -> None:
    """mmengine's ``find_latest_checkpoint`` (auto-resume of a Runner with ``resume=True``) becomes
    :func:`latest_checkpoint`."""
    import mmengine.runner as mm_pkg
    import mmengine.runner.checkpoint as mm_ckpt
    import mmengine.runner.runner as mm_runner

    def find_latest_checkpoint(path):
        return latest_checkpoint(path)

    for module in (mm_pkg, mm_ckpt, mm_runner):
        module.find_latest_checkpoint = find_latest_checkpoint


def resume_target(work_dir, resume) -> str:
    """The checkpoint ``--resume`` continues from: ``resume`` given as a path/URL must exist; ``'auto'`` (no
    value) is the work dir's ``last_checkpoint``, which must exist and name an existing file."""
    from .remote import is_url
    if resume != 'auto':
        if '://' in str(resume) or is_url(resume) or os.path.isfile(resume):
            return str(resume)
        raise WorkDirError(f'--resume {resume}: no such checkpoint file')
    pointer = Path(work_dir) / LAST_CHECKPOINT
    path = latest_checkpoint(work_dir)
    if path is None:
        found = sorted(p.name for p in Path(work_dir).glob('*.pth')) if Path(work_dir).is_dir() else []
        raise WorkDirError(
            f'--resume: nothing to resume in {work_dir}: no {LAST_CHECKPOINT} file'
            + (f' (checkpoints there: {", ".join(found[:5])}; continue from one with --resume PATH)' if found
               else ' and no checkpoint') + '. Without --resume the run starts from scratch.')
    if '://' not in path and not os.path.isfile(path):
        raise WorkDirError(f'--resume: {pointer} names {path}, which does not exist; '
                           f'pass the checkpoint to continue from with --resume PATH')
    return path


# ---------------------------------------------------------------------------------------------------------
# identity

def _canonical(obj):
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(_canonical(obj), sort_keys=True).encode()).hexdigest()[:16]


def run_identity(cfg, args) -> dict:
    """What a training run is: its config file, options and a digest of the resolved config per top-level key
    (without :data:`VOLATILE_KEYS`)."""
    data = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    if getattr(args, 'resume', None):  # load_from holds the checkpoint to resume, not initial weights
        data.pop('load_from', None)
    keys = {k: _digest(v) for k, v in data.items() if k not in VOLATILE_KEYS}
    options = {k: v for k, v in sorted(vars(args).items()) if k not in VOLATILE_OPTIONS and v not in (None, False)}
    cfg_options = {str(k): _canonical(v) for k, v in (getattr(args, 'cfg_options', None) or {}).items()
                   if not str(k).startswith(('experiment_name', 'visualizer'))}
    options = _canonical(options)
    return dict(config=os.path.abspath(args.config), options=options, cfg_options=cfg_options,
                digest=_digest(dict(cfg=keys, options=options)), keys=keys)


def run_files(work_dir) -> list[Path]:
    """The files of a run in ``work_dir``: checkpoints, ``last_checkpoint``, backbone files, results."""
    wd = Path(work_dir)
    if not wd.is_dir():
        return []
    files = [*wd.glob('*.pth'), *wd.glob('backbone*.safetensors'), wd / LAST_CHECKPOINT, *wd.glob('results/*.json')]
    return sorted(p for p in files if p.exists())


def _describe(identity: dict) -> str:
    opts = ' '.join(f'--{k.replace("_", "-")}' + ('' if v is True else f' {v}') for k, v in identity['options'].items())
    cfg_opts = ' '.join(f'{k}={v}' for k, v in identity.get('cfg_options', {}).items())
    return (f'{identity.get("config")}' + (f' {opts}' if opts else '')
            + (f' --cfg-options {cfg_opts}' if cfg_opts else ''))


def claim_work_dir(work_dir, identity: dict, *, resume: bool = False, overwrite: bool = False, rank: int = 0,
                   log=print) -> None:
    """Make sure ``work_dir`` holds no other run before training into it, then record ``identity`` (rank 0).

    Another run's files are refused (:class:`WorkDirError`) unless ``resume`` (the run continues; differences
    are logged) or ``overwrite`` (its files are deleted first). Files without a ``run.json`` (older work dirs)
    count as another run. The same identity started again without ``--resume`` trains from scratch into its
    own work dir (logged)."""
    wd = Path(work_dir)
    record_path = wd / IDENTITY_FILE
    files = run_files(wd)
    try:
        old = json.loads(record_path.read_text()) if record_path.is_file() else None
    except (OSError, ValueError):
        old = {}
    same = bool(old) and old.get('digest') == identity['digest']
    if files and not same:
        if old:
            changed = sorted(k for k in set(old.get('keys', {})) | set(identity['keys'])
                             if old.get('keys', {}).get(k) != identity['keys'].get(k))
            what = (f'another run: {_describe(old)}' + (f' (written {old["time"]})' if old.get('time') else '')
                    + f'; config entries that differ: {", ".join(changed) or "none (other options)"}')
        else:
            what = f'the files of an earlier run without a {IDENTITY_FILE} (its config is unknown)'
        shown = ', '.join(str(p.relative_to(wd)) for p in files[:6])
        shown += f', ... ({len(files)} files)' if len(files) > 6 else ''
        if resume:
            log(f'mixseg: resuming in {wd}, which holds {what}')
        elif overwrite:
            if rank == 0:
                _remove_run(wd, files, old)
            log(f'mixseg: --overwrite-work-dir: removed the files of the previous run in {wd} ({shown})')
        else:
            raise WorkDirError(
                f'{wd} holds {what}. Its files ({shown}) would be overwritten or mixed with this run\'s '
                f'({_describe(identity)}). Use another --work-dir, continue that run with --resume, or replace '
                f'it with --overwrite-work-dir (deletes its checkpoints, last_checkpoint, backbone files and '
                f'results).')
    elif files and not resume:
        log(f'mixseg: {wd} holds checkpoints of this same run; training starts from scratch '
            f'(continue the run instead with --resume)')
    if rank == 0:
        atomic_write_text(record_path, json.dumps(dict(identity, time=time.strftime('%Y-%m-%d %H:%M:%S')),
                                                  indent=1) + '\n')


def _remove_run(wd: Path, files: list, old: Optional[dict]) -> None:
    for p in files:
        p.unlink(missing_ok=True)
    shutil.rmtree(wd / 'results', ignore_errors=True)
    if old and old.get('config'):  # the config mmengine dumped into the work dir
        (wd / Path(old['config']).name).unlink(missing_ok=True)
    for stale in wd.glob('.*.part'):
        stale.unlink(missing_ok=True)


def dist_rank() -> int:
    """This process's global rank before torch.distributed is initialised (torchrun, Slurm, Open MPI)."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0

"""The work directory of a training run: which run it holds, its ``last_checkpoint``, and what ``--resume`` picks.

* **Identity.** ``tools/train.py`` records the run a work dir holds in ``<work_dir>/run.json`` (the config file,
  the command-line options, and a digest of the resolved config without the entries that do not change what
  is computed: work dir, launcher, resume, logging/visualisation, distributed settings). A second run of another
  identity into a work dir that holds a run's files (checkpoints, ``last_checkpoint``, backbone files,
  ``results/``) is refused unless it resumes (``--resume``) or replaces the old run (``--overwrite-work-dir``,
  which deletes those files first); mmengine would otherwise overwrite ``epoch_1.pth`` and
  ``backbone.safetensors`` and leave the old run's later checkpoints and results beside them.
* **last_checkpoint.** mmengine writes the absolute path of the latest checkpoint, so a copied or moved work dir
  resumes the *original* directory's checkpoint. :class:`~mixcore.hooks.MixsegCheckpointHook` writes it relative
  to the work dir and :func:`latest_checkpoint` resolves it against the work dir; an absolute path (files from
  before) is still read, except that a checkpoint of the same name in this work dir wins over one elsewhere.
* **--resume.** :func:`resume_target` turns ``--resume`` into a checkpoint path or a clear error: nothing to
  resume, an empty ``last_checkpoint`` or a missing file are errors, never a silent fresh start.
* **One run at a time.** :func:`lock_work_dir` holds ``<work_dir>/run.lock`` (pid, host, process start time,
  command) for the run's lifetime, taken by rank 0 before the check above, so two runs started at once cannot
  both pass it. A lock of a process that no longer runs on this host (or of an earlier incarnation of this
  requeued Slurm job) is removed and named; one from another host is never judged by its pid: the error says to
  delete the file when that run is known to be gone.
* **--overwrite-work-dir** removes a symlink in the work dir (``results/``, a checkpoint) as a link and never
  deletes through it: files outside the work dir are not touched.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Optional

from mixcore.atomic_write import atomic_write_text

IDENTITY_FILE = 'run.json'
LOCK_FILE = 'run.lock'
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
    from mixcore.weights.download import is_url
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
    results = wd / 'results'
    # a symlinked results/ is listed as the link: never look (or delete) through it
    listed = [results] if results.is_symlink() else list(results.glob('*.json'))
    files = [*wd.glob('*.pth'), *wd.glob('backbone*.safetensors'), wd / LAST_CHECKPOINT, *listed]
    return sorted(p for p in files if p.exists() or p.is_symlink())


def _describe(identity: dict) -> str:
    opts = ' '.join(f'--{k.replace("_", "-")}' + ('' if v is True else f' {v}') for k, v in identity['options'].items())
    cfg_opts = ' '.join(f'{k}={v}' for k, v in identity.get('cfg_options', {}).items())
    return (f'{identity.get("config")}' + (f' {opts}' if opts else '')
            + (f' --cfg-options {cfg_opts}' if cfg_opts else ''))


def claim_work_dir(work_dir, identity: dict, *, resume: bool = False, overwrite: bool = False, rank: int = 0,
                   log=print) -> 'WorkDirLock':
    """Lock ``work_dir`` for this run (rank 0, :func:`lock_work_dir`), make sure it holds no other run, then
    record ``identity`` (rank 0). Returns the lock (a context manager; release it when the run ends; ranks
    other than 0 get one that holds nothing: all ranks of a run share its work dir).

    Another run's files are refused (:class:`WorkDirError`) unless ``resume`` (the run continues; differences
    are logged) or ``overwrite`` (its files are deleted first). Files without a ``run.json`` (older work dirs)
    count as another run. The same identity started again without ``--resume`` trains from scratch into its
    own work dir (logged)."""
    lock = lock_work_dir(work_dir, log=log) if rank == 0 else WorkDirLock(None, {})
    try:
        _check_and_record(Path(work_dir), identity, resume=resume, overwrite=overwrite, rank=rank, log=log)
    except BaseException:
        lock.release()
        raise
    return lock


def _check_and_record(wd: Path, identity: dict, *, resume: bool, overwrite: bool, rank: int, log) -> None:
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
    """Delete a run's files; a symlink is removed as a link (``unlink`` never follows one, ``rmtree`` is only
    called on a real folder and does not descend into links), so nothing outside the work dir goes."""
    for p in files:
        if p.is_symlink() or not p.is_dir():
            p.unlink(missing_ok=True)
    results = wd / 'results'
    if results.is_symlink():
        results.unlink()
    elif results.is_dir():
        shutil.rmtree(results, ignore_errors=True)
    if old and isinstance(old.get('config'), str):  # the config mmengine dumped into the work dir
        dumped = wd / Path(old['config']).name
        if dumped.name not in ('', '.', '..') and (dumped.is_symlink() or dumped.is_file()):
            dumped.unlink(missing_ok=True)
    for stale in wd.glob('.*.part'):
        stale.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------------
# one run at a time
# A lock file, not only flock/fcntl: the work dirs of multi-node runs live on network file systems where
# flock is missing or local to one node, and a file can name its holder in the error. Hard-link creation is
# atomic there (the classic NFS lock-file recipe), and the record is read back to confirm it.

def _process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``; ``None`` elsewhere): tells a pid
    that was reused by another process from the lock's holder."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _slurm_incarnation() -> Optional[list]:
    job = os.environ.get('SLURM_JOB_ID')
    return [job, os.environ.get('SLURM_RESTART_COUNT', '0')] if job else None


_SLURM_LIVE = {'PENDING', 'RUNNING', 'SUSPENDED', 'COMPLETING', 'CONFIGURING', 'RESIZING', 'REQUEUED',
               'REQUEUE_HOLD', 'REQUEUE_FED', 'SIGNALING', 'STAGE_OUT', 'STOPPED'}


def _slurm_job_ended(job: str) -> Optional[str]:
    """Why Slurm job ``job`` (a lock's holder on any node) no longer runs, as its controller says; ``None`` when it
    runs or nobody can tell (no squeue, controller unreachable): a lock is never judged stale on a guess. Lets a
    job resubmitted onto another node take over the lock of a cancelled one."""
    import subprocess
    try:
        out = subprocess.run(['squeue', '-h', '-t', 'all', '-j', job, '-o', '%T'], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    states = out.stdout.split()
    if out.returncode == 0 and states and not _SLURM_LIVE.intersection(states):
        return f'Slurm job {job} has ended ({states[0]})'
    if out.returncode != 0 and 'invalid job id' in out.stderr.lower():
        return f'Slurm job {job} has ended (its controller no longer knows it)'
    return None


@contextlib.contextmanager
def exit_on_sigterm():
    """SIGTERM (``scancel``, a Slurm time limit, ``kill``) ends the run through ``SystemExit`` instead of killing
    the interpreter, so the work-dir lock and other ``with`` blocks are released; the previous handler is restored
    afterwards. Main thread only (elsewhere it does nothing)."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _read_lock(path: Path) -> Optional[dict]:
    """The holder recorded in a lock file; ``None``: no lock file; ``{}``: a file that is not a lock record."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _holder_gone(holder: dict) -> Optional[str]:
    """Why the holder of a lock certainly no longer runs, or ``None`` (it runs, or that cannot be told from here:
    another host, an unreadable record)."""
    pid, mine = holder.get('pid'), _slurm_incarnation()
    if mine and holder.get('slurm') and holder['slurm'][0] == mine[0] and holder['slurm'] != mine:
        return f'Slurm job {mine[0]} was requeued (restart {holder["slurm"][1]} -> {mine[1]})'
    if holder.get('slurm') and (not mine or holder['slurm'][0] != mine[0]):
        ended = _slurm_job_ended(str(holder['slurm'][0]))
        if ended:
            return ended
    if holder.get('host') != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f'no process {pid} runs on {holder["host"]}'
    except PermissionError:  # another user's live process
        pass
    start = holder.get('start')
    if start and _process_start(pid) not in (None, start):
        return f'process {pid} on {holder["host"]} is another process now (the pid was reused)'
    return None


def _who(holder: dict) -> str:
    if not holder:
        return 'an unknown run (the lock file is not a lock record)'
    return (f'pid {holder.get("pid")} on host {holder.get("host")}'
            + (f', Slurm job {holder["slurm"][0]}' if holder.get('slurm') else '')
            + f' (since {holder.get("since")}: {holder.get("command")})')


def _create_lock(path: Path, record: dict) -> bool:
    """Create ``path`` holding ``record`` unless it exists; ``True`` when this process now holds it."""
    text = json.dumps(record, indent=1) + '\n'
    tmp = path.with_name(f'.{path.name}.{record["host"]}.{record["pid"]}')
    try:
        tmp.write_text(text)
        try:
            os.link(tmp, path)  # atomic, complete content, fails if the lock exists
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: exclusive create
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, 'w') as f:
                f.write(text)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_lock(path) == record  # read back: a link that NFS reported lost may have been made


@contextlib.contextmanager
def _same_host_mutex(wd: Path):
    """Processes of one host that find the same stale lock remove it one at a time (flock on the work dir; where
    the file system has none, nothing: the lock's own creation stays exclusive)."""
    try:
        import fcntl
        fd = os.open(wd, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


class WorkDirLock:
    """The lock :func:`lock_work_dir` took (``path`` ``None``: holds nothing); a context manager that releases
    it (the file is deleted only while it still names this process)."""

    def __init__(self, path: Optional[Path], record: dict):
        self.path, self.record = path, record

    def release(self) -> None:
        if self.path is not None and _read_lock(self.path) == self.record:
            self.path.unlink(missing_ok=True)
        self.path = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_work_dir(work_dir, log=print) -> WorkDirLock:
    """Hold ``<work_dir>/run.lock`` for this run; :class:`WorkDirError` naming the holder when another run holds it.
    A lock whose holder certainly no longer runs (:func:`_holder_gone`) is removed, and said so."""
    wd = Path(work_dir)
    wd.mkdir(parents=True, exist_ok=True)
    path = wd / LOCK_FILE
    me = dict(pid=os.getpid(), host=socket.gethostname(), start=_process_start(os.getpid()),
              slurm=_slurm_incarnation(), since=time.strftime('%Y-%m-%d %H:%M:%S'),
              command=' '.join([os.path.basename(sys.executable), *sys.argv]), token=os.urandom(8).hex())
    for _ in range(5):
        if _create_lock(path, me):
            return WorkDirLock(path, me)
        holder = _read_lock(path)
        if holder is None:  # released in between: try again
            continue
        gone = _holder_gone(holder) if holder else None
        if gone is None:
            elsewhere = holder.get('host') not in (None, socket.gethostname())
            raise WorkDirError(
                f'{wd} is in use by another run: {_who(holder)}. Two runs in one work dir overwrite each other\'s '
                f'checkpoints and backbone file and write one log. Wait for that run to end or use another '
                f'--work-dir. If it no longer runs'
                + (' (it ran on another host, so this one cannot check its pid)' if elsewhere else '')
                + f', delete {path} and start again.')
        with _same_host_mutex(wd):
            if _read_lock(path) == holder:
                path.unlink(missing_ok=True)
                log(f'mixseg: {path}: removed the stale lock of {_who(holder)}: {gone}')
    raise WorkDirError(f'{wd}: could not take {path} (other runs keep taking it); start again')


def dist_rank() -> int:
    """This process's global rank before torch.distributed is initialised (torchrun, Slurm, Open MPI)."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0

"""Running a plan: the needed steps in dependency order, inside this process, in worker processes or as
subprocesses, with a log per step and progress lines with an ETA; then the tables."""
from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from mixseg.tables.plots import plot
from mixseg.tables.published import TABLES
from mixseg.tables.render import missing_cells, render_tables

from .steps import ROOT, Step, _start_over, rel
_TOOLS: dict = {}


def _tool(script: str):
    """tools/<script>.py as a module (its ``main(argv)`` runs a step inside this process)."""
    if script not in _TOOLS:
        from mixseg.engine import load_tool
        _TOOLS[script] = load_tool(script)
    return _TOOLS[script]


def _release_loggers(stream) -> None:
    """Detach the handlers an in-process run bound to its log file (mmengine keeps its loggers alive)."""
    try:
        from mmengine.logging import MMLogger
    except ImportError:
        return
    for logger in list(MMLogger._instance_dict.values()):
        for h in list(logger.handlers):
            if getattr(h, 'stream', None) is stream:
                logger.removeHandler(h)


def _run_inprocess(script: Optional[str], argv: list, func: Optional[Callable], log: Path, shell: str) -> None:
    """Run a step inside this process, its output (and mmengine's logger) going to the log file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a', buffering=1) as f:
        f.write(f'\n===== {time.strftime("%Y-%m-%d %H:%M:%S")} {shell}\n')
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                if func is not None:
                    func()
                else:
                    _tool(script).main(list(argv))
        except SystemExit as e:
            if e.code not in (None, 0):
                raise RuntimeError(f'exited with {e.code}') from None
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            traceback.print_exc(file=f)
            raise RuntimeError(f'{type(e).__name__}: {e}') from None
        finally:
            _release_loggers(f)
            if func is None:   # after a training/test (a collection costs ~0.5 s: not after the instant steps)
                gc.collect()


def _run_subprocess(command: list, env: dict, log: Path, shell: str, threads: Optional[int]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a', buffering=1) as f:
        f.write(f'\n===== {time.strftime("%Y-%m-%d %H:%M:%S")} {shell}\n')
        f.flush()
        cmd = [sys.executable if c == 'python' else c for c in command]
        full_env = dict(os.environ, PYTHON=sys.executable, **{k: str(v) for k, v in env.items()})
        if threads:
            full_env['OMP_NUM_THREADS'] = str(threads)
        if 'dist_' in ' '.join(command) and 'PORT' not in full_env and full_env.get('NNODES', '1') == '1':
            full_env['PORT'] = str(_free_port())   # single-node torchrun runs may run side by side (--jobs)
        rc = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f'exit status {rc}')


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _worker_init(threads: Optional[int]) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def fmt_time(s: float) -> str:
    s = int(round(s))
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}' if s >= 3600 else f'{s // 60}:{s % 60:02d}'


# Rough seconds per kind of step (demo, one core each) for the first ETA and for the order in which ready steps
# start (pretrainings first as they unblock the rest, then the longest); the ETA then follows measured times.
_GUESS = {'data': 15, 'maps': 8, 'pretrain-vit': 45, 'pretrain-pvt': 60, 'train-seg': 90, 'train-det': 100,
          'test-ss-seg': 8, 'test-ms-seg': 45, 'test-ss-det': 8, 'share': 0, 'top1': 0, 'figure': 20}
_KIND_ORDER = {'data': 0, 'maps': 1, 'pretrain': 1, 'train': 2, 'test': 3, 'share': 4, 'top1': 4, 'figure': 5}
_PYTHON_KINDS = ('share', 'top1')   # instant steps done in Python: no command to print


def _group(step: 'Step') -> str:
    if step.kind in ('data', 'share', 'top1', 'maps', 'figure'):
        return step.kind
    if step.kind == 'pretrain':
        return 'pretrain-pvt' if 'pvt' in step.name else 'pretrain-vit'
    scope = 'det' if 'coco' in step.name else 'seg'
    if step.kind == 'train':
        return f'train-{scope}'
    return f'test-{"ms" if "--tta" in step.argv else "ss"}-{scope}'


def describe(step: Step, i: int, n: int, unit: str = 'GPU') -> str:
    head = f'[{i:>{len(str(n))}}/{n}] {step.title}'
    if step.script and step.command[0] != 'python':
        head += f'  ({step.gpus} {unit}{"s" if step.gpus > 1 else ""}'
        head += f' × {step.batch} = {step.gpus * step.batch})' if step.batch else ')'
    return head


def run_plan(steps: list[Step], work_root: Path, *, dry_run: bool, inproc: bool, jobs: int = 1,
             threads: Optional[int] = None, keep_going: bool = False, out=print) -> list[Step]:
    """Print (dry run) or run the needed steps, up to ``jobs`` at a time in dependency order; returns the
    steps that failed or could not run."""
    n = len(steps)
    todo = [i for i, s in enumerate(steps) if s.needed]
    out(f'{n} steps, {len(todo)} to run, {n - len(todo)} done or not needed; work root {rel(work_root)}'
        + (f'; {jobs} at a time' if jobs > 1 and not dry_run and todo else ''))
    if dry_run or not todo:
        for i, s in enumerate(steps, 1):
            head = describe(s, i, n)
            if not s.needed:
                out(f'{head}  skip ({s.reason})')
                continue
            out(f'{head}' + (f'  [{s.reason}]' if s.reason and not s.blocked else '')
                + ('  (resume)' if s.resume else ''))
            if s.kind in ('pretrain', 'train') and len(s.rows) > 1:
                out(f'    # for {"; ".join(s.rows)}')
            if s.blocked:
                out(f'    ! not run: {s.blocked}')
            elif s.kind == 'top1':
                out(f'    = {s.shell()}  (the top-1 in the backbone file\'s metadata: the pretraining\'s last '
                    f'validation)')
            else:
                out(f'    $ {s.shell()}' if s.kind != 'share' else f'    = {s.shell()}  (table_row of this row)')
        return []
    for i, s in enumerate(steps, 1):
        if not s.needed:
            out(f'{describe(s, i, n)}  skip ({s.reason})')

    import concurrent.futures as cf
    t0 = time.perf_counter()
    spent: dict = {}
    failed: list[Step] = []
    finished: set = {i for i, s in enumerate(steps) if not s.needed}
    bad: set = set()
    broke: set = set()   # steps that ran and failed: they stop the run (without --keep-going); steps that cannot
    #                      run at all (no config, no backbone file) are reported and leave the rest running
    pending = list(todo)
    running: dict = {}

    def new_pool():
        if jobs <= 1:
            return None
        if not inproc:
            return cf.ThreadPoolExecutor(jobs)
        import multiprocessing as mp
        return cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context('fork'), initializer=_worker_init,
                                      initargs=(threads,))
    pool = new_pool()
    broken = False   # a worker process died: the pool takes nothing more and fails the steps it holds
    if pool is None and inproc:
        _worker_init(threads)

    def log_of(s):
        return work_root / 'logs' / f'{s.name}.log'

    def eta():
        left = [steps[i] for i in pending] + [steps[i] for i in running.values()]
        # measured mean per group; unmeasured groups: the guess scaled by how fast measured groups went
        mean = {g: sum(v) / len(v) for g, v in spent.items()}
        known = [g for g in mean if _GUESS.get(g)]
        speed = sum(mean[g] for g in known) / sum(_GUESS[g] for g in known) if known else 1.0
        tot = sum(mean.get(_group(s), _GUESS.get(_group(s), 30) * speed) for s in left)
        return tot / max(1, min(jobs, len(left)))

    def report(i, dt, err):
        s = steps[i]
        head = describe(s, i + 1, n)
        missing = [rel(o) for o in s.outputs if not Path(o).is_file()]
        if err is None and missing:
            err = RuntimeError(f'finished without writing {", ".join(missing)}')
        if err is None:
            finished.add(i)
            spent.setdefault(_group(s), []).append(dt)
            out(f'{head}  done in {fmt_time(dt)}  (elapsed {fmt_time(time.perf_counter() - t0)}, '
                f'ETA {fmt_time(eta())})')
            return
        bad.add(i)
        broke.add(i)
        failed.append(s)
        out(f'{head}  FAILED after {fmt_time(dt)}: {err}; log: {rel(log_of(s))}')
        try:
            tail = log_of(s).read_text(errors='replace').splitlines()[-15:]
            out('\n'.join('    | ' + line for line in tail))
        except OSError:
            pass

    def start(i):
        nonlocal broken
        s = steps[i]
        log = log_of(s)
        if s.stale:
            _start_over(s)
        if s.stamp is not None:
            from mixseg.checkpoint import atomic_write_text
            atomic_write_text(s.stamp, json.dumps(s.key, indent=1) + '\n')
        if s.func is None and pool is not None:
            try:
                if inproc:
                    fut = pool.submit(_run_inprocess, s.script, list(s.argv), None, log, s.shell())
                else:
                    fut = pool.submit(_run_subprocess, s.command, s.env, log, s.shell(), threads)
            except cf.BrokenExecutor:   # a worker died since the last look: the step did not start
                broken = True
                pending.append(i)
                return
            fut.t0 = time.perf_counter()
            running[fut] = i
        if s.kind not in _PYTHON_KINDS:
            out(f'{describe(s, i + 1, n)}  started' + ('  (resume)' if s.resume else '')
                + (f'  [{s.reason}]' if s.stale else '') + f'\n    $ {s.shell()}')
        if s.func is not None or pool is None:   # in this process (data, share; or one step at a time)
            ts = time.perf_counter()
            try:
                if s.func is not None or inproc:
                    _run_inprocess(s.script, s.argv, s.func, log, s.shell())
                else:
                    _run_subprocess(s.command, s.env, log, s.shell(), threads)
                err = None
            except RuntimeError as e:
                err = e
            report(i, time.perf_counter() - ts, err)

    def collect_done(futures):
        nonlocal broken
        for fut in futures:
            i = running.pop(fut)
            try:
                fut.result()
                err = None
            except cf.BrokenExecutor:   # (a RuntimeError) its worker or one beside it died: the pool fails all
                broken = True
                err = RuntimeError('worker process died (killed? out of memory?) while this step ran; '
                                   'the steps running beside it stop with it')
            except RuntimeError as e:
                err = e
            except Exception as e:
                err = RuntimeError(f'{type(e).__name__}: {e}')
            report(i, time.perf_counter() - fut.t0, err)

    try:
        while pending or running:
            stop = bool(broke) and not keep_going
            while not stop and not broken and pending and len(running) < max(jobs, 1):
                ready = None
                for i in sorted(pending, key=lambda i: (_KIND_ORDER[steps[i].kind], -_GUESS.get(_group(steps[i]), 0),
                                                        i)):
                    deps = steps[i].deps
                    if any(d in bad for d in deps) or steps[i].reason.startswith('missing'):
                        pending.remove(i)
                        bad.add(i)
                        failed.append(steps[i])
                        out(f'{describe(steps[i], i + 1, n)}  not run: '
                            + (steps[i].reason or 'an earlier step failed'))
                        continue
                    if all(d in finished for d in deps):
                        ready = i
                        break
                if ready is None:
                    break
                pending.remove(ready)
                start(ready)
                stop = bool(broke) and not keep_going
            if running:
                collect_done(cf.wait(list(running), return_when=cf.FIRST_COMPLETED)[0])
            if broken:   # the other steps the pool held fail at once; then a fresh pool for what is left
                collect_done(cf.wait(list(running))[0])
                pool.shutdown(wait=True)
                pool, broken = new_pool(), False
                continue
            if not running and (stop or not pending):
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for i in pending:
        if i not in bad:
            failed.append(steps[i])
    return failed


def finish_tables(tables, work_root: Path, note: str = '', write: bool = True, out=print, plot_note: str = ''):
    # (a work root that does not exist yet, as in a first dry run, is no reason for a warning)
    col, text = render_tables([work_root] if work_root.is_dir() else [], tables, 'md', note, warn=out)
    out('\n' + text)
    missing = {t: missing_cells(TABLES[t], col) for t in tables}
    if write and work_root.is_dir():
        from mixseg.checkpoint import atomic_write_text
        atomic_write_text(work_root / 'tables.md', text + '\n')
        try:
            png = plot([TABLES[t] for t in tables], col, work_root / 'tables.png', plot_note)  # legend: short
            out(f'\ntables written to {rel(work_root / "tables.md")}, plot to {rel(png)}')
        except ImportError as e:  # matplotlib missing: the markdown is still there
            out(f'\ntables written to {rel(work_root / "tables.md")} (no plot: {e})')
    return col, missing


def amp_option(args) -> Optional[str]:
    """``make_plan``'s ``amp`` from ``--amp``: by default the best AMP the GPU has for real (not demo) runs on
    a GPU launcher, fp32 otherwise; ``--amp off`` / ``fp16`` / ``bf16`` choose."""
    choice = getattr(args, 'amp', None)
    if choice is None:   # (--gpus 0: CPU jobs)
        choice = 'auto' if not args.demo and args.launcher != 'none' and getattr(args, 'gpus', None) != 0 else 'off'
    return None if choice == 'off' else '' if choice == 'auto' else choice


def reproduce(args, out=print) -> int:
    """The whole table run of ``tools/reproduce.py`` (its parsed arguments): plan, run (or print), tables.
    Returns the exit status: 1 when a step failed or, after a real run, a table cell has no result."""
    from .plan import DEMO_NOTE, demo_note, make_plan
    from .steps import parse_backbones
    steps = make_plan(args.tables, methods=args.methods, demo=args.demo, work_root=args.work_root,
                      launcher=args.launcher, gpus=1 if args.gpus == 0 else args.gpus, partition=args.partition,
                      backbones=parse_backbones(args.backbone), data_root=args.data_root,
                      demo_schedule=args.demo_schedule, amp=amp_option(args),
                      figures=getattr(args, 'figures', False), tensorboard=getattr(args, 'tensorboard', False))
    scaled = [s for s in steps if s.needed and '--auto-scale-lr' in s.argv]
    if scaled:
        out(f'note: {len(scaled)} training(s) run with another total batch than their paper\'s (GPUs × per-GPU '
            'batch): their lr is rescaled linearly (--auto-scale-lr, from the config\'s base batch size)')
    blocked = [s for s in steps if s.needed and s.blocked]
    if blocked:
        out(f'note: {len(blocked)} step(s) cannot run (no config; see "not run:" below): '
            + ', '.join(s.name for s in blocked))
    inproc = args.demo and args.launcher == 'none' and not args.subprocess
    os.chdir(ROOT)   # the configs' relative paths (and the printed commands) are relative to the repository
    if getattr(args, 'submit', False) or getattr(args, 'status', False):   # Slurm jobs; the driver returns
        from .slurm import SlurmError, submit_plan
        try:   # --gpus 0: CPU jobs (one task per run, no gres)
            failed, unknown = submit_plan(
                steps, args.work_root, dry_run=args.dry_run, status=args.status, partition=args.partition,
                gpus_per_node=0 if args.gpus == 0 else args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                sbatch_args=tuple(args.sbatch_args), python=getattr(args, 'python', None), out=out)
        except SlurmError as e:
            out(f'error: {e}')
            return 1
        finish_tables(args.tables, args.work_root, demo_note(args.tables) if args.demo else '',
                      write=not args.dry_run, out=out)
        if failed:
            out(f'\n{len(failed)} step(s) failed or cannot run: ' + ', '.join(s.name for s in failed))
        if unknown:
            out(f'\n{len(unknown)} step(s) in an unknown state (not failed): ' + ', '.join(s.name for s in unknown))
        return 1 if failed or unknown else 0
    failed = run_plan(steps, args.work_root, dry_run=args.dry_run, inproc=inproc, jobs=args.jobs,
                      threads=args.threads, keep_going=args.keep_going, out=out)
    note = demo_note(args.tables) if args.demo else ''
    _, missing = finish_tables(args.tables, args.work_root, note, write=not args.dry_run, out=out,
                               plot_note=DEMO_NOTE if args.demo else '')
    if not args.dry_run and any(s.kind == 'figure' for s in steps):
        from .figures import list_figures
        figs = list_figures(args.work_root)
        out(f'\nfigures ({len(figs)}) in {rel(args.work_root / "figures")}:' + ''.join(f'\n  {rel(f)}' for f in figs))
    if failed:
        out(f'\n{len(failed)} step(s) failed or not run: ' + ', '.join(s.name for s in failed))
        return 1
    if not args.dry_run:
        empty = {t: m for t, m in missing.items() if m}
        for t, m in empty.items():
            out(f'table {t}: {len(m)} cell(s) without a result: ' + ', '.join(f'{" ".join(r)}/{c}' for r, c in m))
        if empty:
            return 1
    return 0

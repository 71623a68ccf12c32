"""Running a plan on this machine: the needed steps in dependency order, inside this process, in worker
processes or as subprocesses (:mod:`.execute`), with a log per step and progress lines with an ETA."""
from __future__ import annotations

import concurrent.futures as cf
import time
from pathlib import Path
from typing import Optional

from .execute import run_inprocess, run_subprocess, worker_init
from .steps import Step, begin, describe, rel


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


def print_plan(steps: list[Step], out=print) -> None:
    """The plan as a dry run prints it: per step what it does (its command) or why it is skipped."""
    n = len(steps)
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


def run_plan(steps: list[Step], work_root: Path, *, dry_run: bool, inproc: bool, jobs: int = 1,
             threads: Optional[int] = None, keep_going: bool = False, out=print) -> list[Step]:
    """Print (dry run) or run the needed steps, up to ``jobs`` at a time in dependency order; returns the
    steps that failed or could not run."""
    n = len(steps)
    todo = [i for i, s in enumerate(steps) if s.needed]
    out(f'{n} steps, {len(todo)} to run, {n - len(todo)} done or not needed; work root {rel(work_root)}'
        + (f'; {jobs} at a time' if jobs > 1 and not dry_run and todo else ''))
    if dry_run or not todo:
        print_plan(steps, out)
        return []
    for i, s in enumerate(steps, 1):
        if not s.needed:
            out(f'{describe(s, i, n)}  skip ({s.reason})')
    return LocalRun(steps, work_root, inproc=inproc, jobs=jobs, threads=threads, keep_going=keep_going,
                    out=out).run(todo)


class LocalRun:
    """One local run of a plan's needed steps: which are pending, running (in a pool of ``jobs`` workers:
    processes when ``inproc``, else threads that start subprocesses), done or failed; the progress lines.
    A step that ran and failed stops the run (unless ``keep_going``); steps that cannot run at all (no config,
    no backbone file) are reported and leave the rest running."""

    def __init__(self, steps: list[Step], work_root: Path, *, inproc: bool, jobs: int, threads: Optional[int],
                 keep_going: bool, out):
        self.steps, self.work_root, self.inproc, self.jobs = steps, work_root, inproc, jobs
        self.threads, self.keep_going, self.out = threads, keep_going, out
        self.n = len(steps)
        self.t0 = time.perf_counter()
        self.spent: dict = {}             # group -> measured seconds of its steps
        self.failed: list[Step] = []
        self.finished: set = {i for i, s in enumerate(steps) if not s.needed}
        self.bad: set = set()             # failed, or cannot run: what needs them cannot run either
        self.broke: set = set()           # steps that ran and failed: they stop the run (without --keep-going)
        self.pending: list = []
        self.running: dict = {}           # future -> step index
        self.pool = None
        self.broken = False   # a worker process died: the pool takes nothing more and fails the steps it holds

    def new_pool(self):
        if self.jobs <= 1:
            return None
        if not self.inproc:
            return cf.ThreadPoolExecutor(self.jobs)
        import multiprocessing as mp
        return cf.ProcessPoolExecutor(self.jobs, mp_context=mp.get_context('fork'), initializer=worker_init,
                                      initargs=(self.threads,))

    def log_of(self, s: Step) -> Path:
        return self.work_root / 'logs' / f'{s.name}.log'

    def eta(self) -> float:
        steps = self.steps
        left = [steps[i] for i in self.pending] + [steps[i] for i in self.running.values()]
        # measured mean per group; unmeasured groups: the guess scaled by how fast measured groups went
        mean = {g: sum(v) / len(v) for g, v in self.spent.items()}
        known = [g for g in mean if _GUESS.get(g)]
        speed = sum(mean[g] for g in known) / sum(_GUESS[g] for g in known) if known else 1.0
        tot = sum(mean.get(_group(s), _GUESS.get(_group(s), 30) * speed) for s in left)
        return tot / max(1, min(self.jobs, len(left)))

    def report(self, i: int, dt: float, err) -> None:
        s = self.steps[i]
        head = describe(s, i + 1, self.n)
        missing = [rel(o) for o in s.outputs if not Path(o).is_file()]
        if err is None and missing:
            err = RuntimeError(f'finished without writing {", ".join(missing)}')
        if err is None:
            self.finished.add(i)
            self.spent.setdefault(_group(s), []).append(dt)
            self.out(f'{head}  done in {fmt_time(dt)}  (elapsed {fmt_time(time.perf_counter() - self.t0)}, '
                     f'ETA {fmt_time(self.eta())})')
            return
        self.bad.add(i)
        self.broke.add(i)
        self.failed.append(s)
        self.out(f'{head}  FAILED after {fmt_time(dt)}: {err}; log: {rel(self.log_of(s))}')
        try:
            tail = self.log_of(s).read_text(errors='replace').splitlines()[-15:]
            self.out('\n'.join('    | ' + line for line in tail))
        except OSError:
            pass

    def start(self, i: int) -> None:
        """Start step ``i``: in the pool, or (an instant Python step; or one step at a time) here, waiting."""
        s = self.steps[i]
        log = self.log_of(s)
        begin(s)
        if s.func is None and self.pool is not None:
            try:
                if self.inproc:
                    fut = self.pool.submit(run_inprocess, s.script, list(s.argv), None, log, s.shell())
                else:
                    fut = self.pool.submit(run_subprocess, s.command, s.env, log, s.shell(), self.threads)
            except cf.BrokenExecutor:   # a worker died since the last look: the step did not start
                self.broken = True
                self.pending.append(i)
                return
            fut.t0 = time.perf_counter()
            self.running[fut] = i
        if s.kind not in _PYTHON_KINDS:
            self.out(f'{describe(s, i + 1, self.n)}  started' + ('  (resume)' if s.resume else '')
                     + (f'  [{s.reason}]' if s.stale else '') + f'\n    $ {s.shell()}')
        if s.func is not None or self.pool is None:   # in this process (data, share; or one step at a time)
            ts = time.perf_counter()
            try:
                if s.func is not None or self.inproc:
                    run_inprocess(s.script, s.argv, s.func, log, s.shell())
                else:
                    run_subprocess(s.command, s.env, log, s.shell(), self.threads)
                err = None
            except RuntimeError as e:
                err = e
            self.report(i, time.perf_counter() - ts, err)

    def collect_done(self, futures) -> None:
        for fut in futures:
            i = self.running.pop(fut)
            try:
                fut.result()
                err = None
            except cf.BrokenExecutor:   # (a RuntimeError) its worker or one beside it died: the pool fails all
                self.broken = True
                err = RuntimeError('worker process died (killed? out of memory?) while this step ran; '
                                   'the steps running beside it stop with it')
            except RuntimeError as e:
                err = e
            except Exception as e:
                err = RuntimeError(f'{type(e).__name__}: {e}')
            self.report(i, time.perf_counter() - fut.t0, err)

    def next_ready(self) -> Optional[int]:
        """The pending step to start next (all it needs is done), or None; pending steps that can no longer run
        (a step they need failed, or a missing backbone file) are reported and dropped on the way."""
        steps = self.steps
        for i in sorted(self.pending, key=lambda i: (_KIND_ORDER[steps[i].kind], -_GUESS.get(_group(steps[i]), 0),
                                                     i)):
            deps = steps[i].deps
            if any(d in self.bad for d in deps) or steps[i].reason.startswith('missing'):
                self.pending.remove(i)
                self.bad.add(i)
                self.failed.append(steps[i])
                self.out(f'{describe(steps[i], i + 1, self.n)}  not run: '
                         + (steps[i].reason or 'an earlier step failed'))
                continue
            if all(d in self.finished for d in deps):
                return i
        return None

    def fill(self) -> bool:
        """Start ready steps while there is room; returns whether the run stops (a step failed and no
        ``keep_going``)."""
        stop = bool(self.broke) and not self.keep_going
        while not stop and not self.broken and self.pending and len(self.running) < max(self.jobs, 1):
            ready = self.next_ready()
            if ready is None:
                break
            self.pending.remove(ready)
            self.start(ready)
            stop = bool(self.broke) and not self.keep_going
        return stop

    def run(self, todo: list) -> list[Step]:
        """Run the steps ``todo``; returns the steps that failed or could not run."""
        self.pending = list(todo)
        self.pool = self.new_pool()
        if self.pool is None and self.inproc:
            worker_init(self.threads)
        try:
            while self.pending or self.running:
                stop = self.fill()
                if self.running:
                    self.collect_done(cf.wait(list(self.running), return_when=cf.FIRST_COMPLETED)[0])
                if self.broken:   # the other steps the pool held fail at once; then a fresh pool for what is left
                    self.collect_done(cf.wait(list(self.running))[0])
                    self.pool.shutdown(wait=True)
                    self.pool, self.broken = self.new_pool(), False
                    continue
                if not self.running and (stop or not self.pending):
                    break
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
        return self.failed + [self.steps[i] for i in self.pending if i not in self.bad]

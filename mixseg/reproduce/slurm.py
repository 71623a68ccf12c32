"""Slurm submit mode of a table run: every step an ``sbatch`` job, chained with ``--dependency=afterok:``.

``submit_plan`` writes one batch script per needed step (``<work root>/slurm/<step>.sh``), submits them in
dependency order — pretraining → transfer → tests — each after the jobs of the steps it needs, prints the job
ids and returns: the driver does not wait. The jobs are recorded in ``<work root>/slurm/jobs.json``.

A later call (the same command, or ``--status``) looks at each step again: done when its outputs exist (as in
the local runner), otherwise the state of its recorded job: from ``squeue -t all`` (queued, running, or ended
recently), else ``sacct``, else the job's log (the exit line each job script prints, or Slurm's "CANCELLED"
line) — clusters without accounting storage answer sacct with "accounting storage is disabled". Submitting
again resubmits what failed or was never submitted (a training continues from its work dir's checkpoint: every
training job runs with ``--resume-if-any``), cancels and resubmits the queued jobs behind a resubmitted one
(their dependency can never be met), and leaves queued and running jobs alone. A job whose state is unknown
(squeue failing; or ended with neither accounting nor an exit line) is never resubmitted, nor what waits for
it: it is reported as unknown, its id kept; when squeue fails nothing at all is submitted or cancelled. The
instant steps (a shared row's results, Table D's top-1 from a backbone file) run in the driver once the steps
they need are done, and the tables are written with whatever results exist.

Each job: ``srun <python> -u tools/<train|test>.py ... --launcher slurm`` (mmengine's slurm launcher, one task
per GPU; ``--gpus 0``: CPU jobs, one task, no gres), ``<python>`` the interpreter that planned it (``--python``;
``MIXSEG_PYTHON`` on the node overrides it), ``MASTER_PORT`` derived from ``SLURM_JOB_ID`` so that jobs
sharing a node do not collide. Every value written into a script is shell-quoted, control characters refused.
"""
from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .execute import run_inprocess
from .steps import ROOT, Step, begin, describe, rel

ACTIVE = ('PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED',
          'RESIZING', 'SUSPENDED', 'STAGE_OUT', 'SIGNALING')


class SlurmError(RuntimeError):
    pass


def _shell_default(name: str) -> int:
    """``NAME=N`` of tools/slurm_defaults.sh (the shell scripts source the same file)."""
    m = re.search(rf'^{name}=(\d+)\s*$', DEFAULTS_FILE.read_text(), re.M)
    if m is None:
        raise RuntimeError(f'{DEFAULTS_FILE}: no line {name}=N')
    return int(m.group(1))


DEFAULTS_FILE = ROOT / 'tools' / 'slurm_defaults.sh'
#: CPUs per GPU task (one per data-loader worker): stated, with its measurement, in tools/slurm_defaults.sh
CPUS_PER_GPU = _shell_default('CPUS_PER_GPU')
#: CPUs of a CPU job (``--gpus 0``, e.g. ``--submit --demo``): one, as each worker of the local demo
CPUS_PER_CPU_TASK = 1
# what the job script prints when its srun returns, and Slurm's line in the job's output when it kills a job
EXIT_LINE = re.compile(r'^mixseg: job (\d+) \(.*\) finished: exit status (\d+)\s*$', re.M)
KILL_LINE = re.compile(r'\*\*\* JOB (\d+) ON \S+ CANCELLED AT \S+(?: DUE TO (TIME LIMIT|PREEMPTION|NODE FAILURE))?')
KILL_STATES = {None: 'CANCELLED', 'TIME LIMIT': 'TIMEOUT', 'PREEMPTION': 'PREEMPTED', 'NODE FAILURE': 'NODE_FAIL'}


def check_script_value(what: str, value) -> str:
    """A value written into a batch script: control characters (a newline would start a shell line, or end
    sbatch's ``#SBATCH`` parsing) are refused with a :class:`SlurmError` naming the option."""
    text = str(value)
    bad = sorted({c for c in text if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise SlurmError(f'{what} {text!r}: control characters ({", ".join(repr(c) for c in bad)}) cannot go '
                         f'into a batch script; give the value without them')
    return text


def job_script(step: Step, *, work_root: Path, partition: Optional[str] = None, gpus_per_node: int = 8,
               cpus_per_task: Optional[int] = None, sbatch_args: tuple = (), python: Optional[str] = None) -> str:
    """The batch script of one training, test or label-map step. ``gpus_per_node`` 0: CPU jobs (no gres, one
    task per run). ``python``: the interpreter the job runs (default: this one; ``MIXSEG_PYTHON`` on the node
    overrides it). Every value is shell-quoted, the ``#SBATCH`` lines too (sbatch reads quotes there);
    control characters are refused."""
    python = python or sys.executable
    for what, value in [('--partition', partition or ''), ('--work-root', work_root), ('--python', python),
                        ('the repository path', ROOT)] + [('--sbatch-args', a) for a in sbatch_args]:
        check_script_value(what, value)
    q = shlex.quote
    cpu = gpus_per_node == 0
    tasks = max(1, step.gpus) if step.script in ('train', 'test') and not cpu else 1
    per_node = tasks if cpu else min(tasks, gpus_per_node)
    nodes = math.ceil(tasks / per_node)
    cpus = cpus_per_task or (CPUS_PER_CPU_TASK if cpu else CPUS_PER_GPU)
    argv = [str(a) for a in step.argv]
    if step.script in ('train', 'test'):   # after the positional arguments (config; test: and checkpoint)
        # a requeued or resubmitted training continues from its own work dir's checkpoint, if it has one
        pos = 1 if step.script == 'train' else 2
        argv[pos:pos] = ['--launcher', 'slurm'] + (['--resume-if-any'] if step.script == 'train' else [])
        argv = [a for a in argv if a != '--resume']
    for a in argv:
        check_script_value(f'step {step.name}: argument', a)
    lines = ['#!/usr/bin/env bash', f'#SBATCH --job-name={q("mixseg-" + step.name)}']
    lines += [f'#SBATCH --partition={q(partition)}'] if partition else []
    lines += [f'#SBATCH --nodes={nodes}', f'#SBATCH --ntasks={tasks}', f'#SBATCH --ntasks-per-node={per_node}']
    lines += [] if cpu else [f'#SBATCH --gres=gpu:{per_node}']
    log = f'{work_root / "logs" / step.name}.%j.log'
    lines += [f'#SBATCH --cpus-per-task={cpus}', f'#SBATCH --output={q(log)}']
    lines += [f'#SBATCH {q(a)}' for a in sbatch_args]
    lines += [f'# {step.title}' + (f' — for {"; ".join(step.rows)}' if step.rows else ''),
              f'cd {q(str(ROOT))} || exit 2',
              'export PYTHONPATH="$PWD:${PYTHONPATH:-}"',
              '# the interpreter (and so the environment: torch, mmengine, ...) that planned the job; MIXSEG_PYTHON '
              'on the node overrides it',
              f'PYTHON=${{MIXSEG_PYTHON:-{q(python)}}}',
              'if ! command -v "$PYTHON" >/dev/null; then',
              f'  echo "mixseg: job $SLURM_JOB_ID ({step.name}): no Python $PYTHON on $(hostname); submit from the '
              'project\'s environment (reproduce.py --python PATH) or set MIXSEG_PYTHON" >&2',
              '  exit 2',
              'fi',
              '# one rendezvous port per job (jobs sharing a node must not collide): 20000 + job id mod 40000',
              'export MASTER_PORT=$((20000 + SLURM_JOB_ID % 40000))']
    lines += ['export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}'] if cpu else []
    lines += ['rc=0',
              # (srun does not inherit sbatch's --cpus-per-task since Slurm 22.05)
              f'srun --kill-on-bad-exit=1 --cpus-per-task={cpus} "$PYTHON" -u '
              + ' '.join(q(a) for a in [f'tools/{step.script}.py', *argv]) + ' || rc=$?',
              f'echo "mixseg: job $SLURM_JOB_ID ({step.name}) finished: exit status $rc"',
              'exit $rc']
    return '\n'.join(lines) + '\n'


def _run(cmd: list, what: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SlurmError(f'{cmd[0]} not found: the submit mode needs a Slurm cluster (sbatch, squeue, sacct)') \
            from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f'{what} did not answer within 120 s') from None
    if r.returncode != 0:
        raise SlurmError(f'{what} failed (exit status {r.returncode}): {(r.stderr or r.stdout).strip()}')
    return r.stdout


def query(job_ids) -> tuple[dict, dict]:
    """``(states, errors)``: job id -> (state, reason) from squeue (``-t all``: the jobs the controller still
    knows, queued, running and recently ended), then from sacct for the rest; ``errors``: 'squeue' / 'sacct' ->
    why it gave no answer. A failing squeue leaves every state unknown (sacct is not asked); a failing sacct
    (e.g. "Slurm accounting storage is disabled") leaves the ended jobs without a state."""
    ids = sorted({str(j) for j in job_ids}, key=lambda j: (len(j), j))
    states: dict = {}
    errors: dict = {}
    if not ids:
        return states, errors
    try:
        text = _run(['squeue', '-h', '-t', 'all', '-j', ','.join(ids), '-o', '%i|%T|%r'], 'squeue')
    except SlurmError as e:
        if 'Invalid job id' not in str(e):   # (that one: none of the jobs is known any more, an answer)
            return {}, {'squeue': str(e)}
        text = ''
    for line in text.splitlines():
        parts = line.strip().split('|')
        if len(parts) >= 2 and parts[0] in ids:
            states[parts[0]] = (parts[1].strip().upper(), parts[2].strip() if len(parts) > 2 else '')
    rest = [j for j in ids if j not in states]
    if rest:
        try:
            text = _run(['sacct', '-n', '-P', '-X', '-o', 'JobID,State', '-j', ','.join(rest)], 'sacct')
            for line in text.splitlines():
                parts = line.strip().split('|')
                if len(parts) >= 2 and parts[0] in rest and parts[1].strip():
                    states[parts[0]] = (parts[1].split()[0].upper(), '')
        except SlurmError as e:
            errors['sacct'] = str(e)
    return states, errors


def log_state(log: Path, job: str) -> Optional[str]:
    """How job ``job`` ended as its log shows it: Slurm's kill line → CANCELLED / TIMEOUT / PREEMPTED /
    NODE_FAIL; else the job script's exit line → COMPLETED / FAILED; None: the log shows no end."""
    try:
        with open(log, 'rb') as f:
            f.seek(max(0, f.seek(0, 2) - 65536))
            tail = f.read().decode(errors='replace')
    except OSError:
        return None
    kills = [m for m in KILL_LINE.finditer(tail) if m.group(1) == job]
    if kills:
        return KILL_STATES[kills[-1].group(2)]
    exits = [m for m in EXIT_LINE.finditer(tail) if m.group(1) == job]
    if exits:
        return 'COMPLETED' if exits[-1].group(2) == '0' else 'FAILED'
    return None


def _progress(step: Step) -> str:
    """What a training's work dir shows: its latest checkpoint."""
    if step.kind not in ('pretrain', 'train') or step.stamp is None:
        return ''
    from mixcore.workdir import WorkDirError, latest_checkpoint
    try:
        latest = latest_checkpoint(step.stamp.parent)
    except WorkDirError:
        latest = None
    return f'; work dir: latest checkpoint {Path(latest).name}' if latest else '; work dir: no checkpoint yet'


def _load_records(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise SlurmError(f'{path}: unreadable job records ({e}); move it away to start the bookkeeping anew')
    return data if isinstance(data, dict) else {}


def _recorded_state(s: Step, rec: dict, states: dict, errors: dict, work_root: Path) -> tuple[str, str, str]:
    """(kind, text, job id) of a step with a recorded job: 'active' | 'failed' (ended without its outputs, or
    ran other options) | 'unknown' (squeue failed; or the job ran and neither sacct nor its log tells how it
    ended). A job squeue no longer knows and that wrote no log never started: 'failed'."""
    job = str(rec['job'])
    log = work_root / 'logs' / f'{s.name}.{job}.log'
    if errors.get('squeue'):
        ended = log_state(log, job)
        return 'unknown', (f'state unknown (job {job}: squeue failed)' + (f'; its log says {ended}' if ended else '')
                           + _progress(s)), job
    if rec.get('key') != s.key:
        return 'failed', f'job {job} ran other options: {s.reason or "starts over"}', job
    state, reason = states.get(job, ('', ''))
    state = state or log_state(log, job) or ''   # no accounting: the log's exit line (or Slurm's kill line)
    if state in ACTIVE:
        word = 'queued' if state == 'PENDING' else state.lower()
        return 'active', f'{word} (job {job}' + (f', {reason}' if reason and reason != 'None' else '') + ')', job
    if state == 'COMPLETED':
        return 'failed', f'job {job} completed without writing {", ".join(rel(o) for o in s.outputs)}', job
    if state:
        return 'failed', f'failed (job {job} {state}; log {rel(log)})', job
    if not log.exists():   # Slurm opens the log when the job starts: it never ran, and never will
        return 'failed', f'job {job} ended without starting (no log {rel(log)}; cancelled while queued?)', job
    why = f'no state from sacct ({_answer(errors["sacct"])})' if errors.get('sacct') else 'unknown to sacct'
    return 'unknown', (f'state unknown (job {job} ended: not in squeue; {why}; no exit line in {rel(log)})'
                       + _progress(s)), job


def _answer(error: str) -> str:
    """What a failed Slurm command answered (its first line, without our 'X failed (exit status N): ')."""
    return error.split('): ', 1)[-1].splitlines()[0]


def _run_instant(s: Step, work_root: Path, out, head: str) -> bool:
    """An instant step (a shared row's results, Table D's top-1) done in the driver; False: it failed."""
    begin(s)
    try:
        run_inprocess(None, [], s.func, work_root / 'logs' / f'{s.name}.log', s.shell())
    except RuntimeError as e:
        out(f'{head}  FAILED: {e}')
        return False
    s.done = True
    out(f'{head}  done')
    return True


def submit_plan(steps: list[Step], work_root: Path, *, dry_run: bool = False, status: bool = False,
                partition: Optional[str] = None, gpus_per_node: int = 8, cpus_per_task: Optional[int] = None,
                sbatch_args: tuple = (), python: Optional[str] = None, out=print) -> tuple[list, list]:
    """Submit (or, with ``status``, only report; with ``dry_run``, only print) the needed steps as Slurm jobs;
    run the instant steps whose inputs exist. Returns (the steps that failed or cannot run, the steps whose
    job's state is unknown). A job whose state is unknown is never resubmitted (nor what waits for it); when
    squeue fails, nothing is submitted or cancelled and the job records stay as they are."""
    work_root = Path(work_root)
    script_of = dict(work_root=work_root, partition=partition, gpus_per_node=gpus_per_node,
                     cpus_per_task=cpus_per_task, sbatch_args=sbatch_args, python=python)
    job_script(Step('check', 'check', 'check', []), **script_of)   # refuses bad values before anything is done
    sub = Submission(steps, work_root, script_of, dry_run=dry_run, status=status, out=out)
    for i in range(len(steps)):
        sub.visit(i)
    _summary(out, dry_run=dry_run, status=status, frozen=sub.frozen, errors=sub.errors, counts=(
        len(sub.job_of), sub.submitted, len(sub.bad), len(sub.unknown)), slurm_dir=sub.slurm_dir,
        records_path=sub.records_path)
    return [steps[i] for i in sorted(sub.bad)], [steps[i] for i in sorted(sub.unknown)]


class Submission:
    """One call of the submit mode (:func:`submit_plan`): the job records of earlier calls, the states of their
    jobs, and per step, in plan order, what becomes of it: done, skipped, done in the driver (instant steps),
    kept (an active job), submitted or resubmitted (cancelling a queued job that can never start), or reported
    (failed, cannot run, state unknown)."""

    def __init__(self, steps: list[Step], work_root: Path, script_of: dict, *, dry_run: bool, status: bool, out):
        self.steps, self.work_root, self.script_of = steps, work_root, script_of
        self.dry_run, self.status, self.out = dry_run, status, out
        self.slurm_dir = work_root / 'slurm'
        self.records_path = self.slurm_dir / 'jobs.json'
        self.records = {} if dry_run else _load_records(self.records_path)
        self.jobs = {s.name: self.records[s.name] for s in steps if s.name in self.records and s.needed}
        self.states, self.errors = query(r['job'] for r in self.jobs.values()) if self.jobs and not dry_run \
            else ({}, {})
        self.frozen = self.errors.get('squeue')   # states unknown: nothing is submitted or cancelled
        self.unit = 'CPU task' if script_of['gpus_per_node'] == 0 else 'GPU'
        self.job_of: dict = {}        # step index -> job id it waits for (active or just submitted)
        self.bad: set = set()         # step indices that failed or cannot run
        self.unknown: set = set()     # step indices whose job's state is unknown (and those waiting for them)
        self.resubmitted: set = set()
        self.submitted = 0

    def state_of(self, i: int) -> tuple[str, str, str]:
        """(kind of state, text, job id): 'done' | 'skip' | 'new' | 'active' | 'failed' | 'unknown'."""
        s = self.steps[i]
        if s.done:
            return 'done', 'done', ''
        if not s.needed:
            return 'skip', f'skip ({s.reason})', ''
        if s.name not in self.jobs:
            return 'new', 'not submitted', ''
        return _recorded_state(s, self.jobs[s.name], self.states, self.errors, self.work_root)

    def cancel(self, job: str) -> None:
        if not self.status and not self.frozen:
            _run(['scancel', job], 'scancel')

    def visit(self, i: int) -> None:
        """What becomes of step ``i`` (the steps it needs were visited before it)."""
        s = self.steps[i]
        head = describe(s, i + 1, len(self.steps), self.unit)
        kind, text, job = self.state_of(i)
        if kind in ('done', 'skip'):
            self.out(f'{head}  {text}')
        elif s.blocked:
            self.out(f'{head}  not run: {s.blocked}')
            self.bad.add(i)
        elif s.func is not None:   # an instant step: done here once what it needs is done
            self.instant(i, head)
        elif kind == 'unknown':
            self.out(f'{head}  {text}; not resubmitted while its state is unknown')
            self.unknown.add(i)
        else:
            self.job_step(i, head, kind, text, job)

    def instant(self, i: int, head: str) -> None:
        s = self.steps[i]
        waiting = [self.steps[d].name for d in s.deps if not self.steps[d].done]
        if waiting or self.dry_run:
            self.out(f'{head}  ' + (f'waits for {", ".join(waiting)}: done by a later call' if waiting else
                                    'done by the driver once its inputs exist') + f'\n    = {s.shell()}')
            if any(d in self.bad for d in s.deps):
                self.bad.add(i)
        elif not _run_instant(s, self.work_root, self.out, head):
            self.bad.add(i)

    def job_step(self, i: int, head: str, kind: str, text: str, job: str) -> None:
        """A step that runs as a job: keep an active job unless what it waits for was resubmitted."""
        s = self.steps[i]
        deps_failed = [self.steps[d].name for d in s.deps if d in self.bad]
        if deps_failed:
            self.out(f'{head}  not submitted: needs {", ".join(deps_failed)}')
            if kind == 'active' and not self.dry_run:
                self.cancel(job)
            self.bad.add(i)
            return
        held = [self.steps[d].name for d in s.deps if d in self.unknown]
        if held and kind != 'active':   # (an active job keeps waiting for its dependency)
            self.out(f'{head}  {text}; not submitted: waits for {", ".join(held)} (state unknown)')
            self.unknown.add(i)
            return
        after = [self.job_of[d] for d in s.deps if d in self.job_of]
        stuck = kind == 'active' and ('DependencyNeverSatisfied' in text or
                                      any(d in self.resubmitted for d in s.deps))
        if kind == 'active' and not stuck:
            self.job_of[i] = job
            self.out(f'{head}  {text}')
            return
        if self.status or self.frozen:
            self.out(f'{head}  {text}'
                     + ('  (waits on a failed job: resubmitted by the next call without --status)' if stuck else '')
                     + ('  (not submitted: squeue failed)' if self.frozen else ''))
            if kind == 'failed' or stuck:
                self.bad.add(i)
            return
        self.submit(i, head, kind, text, job, after)

    def submit(self, i: int, head: str, kind: str, text: str, job: str, after: list) -> None:
        """Write the step's batch script and submit it after the jobs it needs (dry run: print both)."""
        from mixcore.atomic_write import atomic_write_text
        s = self.steps[i]
        script = job_script(s, **self.script_of)
        path = self.slurm_dir / f'{s.name}.sh'
        if self.dry_run:
            shown = ['--dependency=afterok:' + ':'.join(f'<job of {self.steps[d].name}>' for d in s.deps
                                                        if d in self.job_of)] if after else []
            self.out(f'{head}\n    $ sbatch --parsable {" ".join(shown + [rel(path)])}')
            self.out('\n'.join('    | ' + line for line in script.splitlines()))
            self.job_of[i] = f'<{s.name}>'
            return
        if job and self.states.get(job, ('', ''))[0] in ACTIVE:   # queued behind a failed job, or other options
            self.cancel(job)
        begin(s)
        atomic_write_text(path, script)
        (self.work_root / 'logs').mkdir(parents=True, exist_ok=True)
        dep = ['--dependency=afterok:' + ':'.join(after)] if after else []
        new = _run(['sbatch', '--parsable', *dep, str(path)], f'sbatch {rel(path)}').strip().split(';')[0]
        if not new.isdigit():
            raise SlurmError(f'sbatch {rel(path)}: unexpected answer {new!r} (expected a job id)')
        self.job_of[i] = new
        self.resubmitted.add(i)
        self.submitted += 1
        self.records[s.name] = dict(job=new, key=s.key, after=after, script=str(path),
                                    submitted=time.strftime('%Y-%m-%d %H:%M:%S'))
        atomic_write_text(self.records_path, json.dumps(self.records, indent=1) + '\n')   # after each job
        self.out(f'{head}  submitted job {new}' + (f' (after {", ".join(after)})' if after else '')
                 + (f'; was {text}' if kind != 'new' else ''))


def _summary(out, *, dry_run, status, frozen, errors, counts, slurm_dir, records_path) -> None:
    queued, submitted, failed, unknown = counts
    if dry_run:
        out(f'\n{queued} job(s) would be submitted (scripts in {rel(slurm_dir)})')
        return
    if frozen:
        out(f'\nsqueue failed: {frozen}\nThe job states are unknown: nothing submitted or cancelled; the job '
            f'records in {rel(records_path)} are kept. Run the same command again once squeue answers.')
    elif status:
        out(f'\n{queued} job(s) queued or running, {failed} step(s) failed or cannot run'
            + (f', {unknown} with a job in an unknown state' if unknown else ''))
    else:
        out(f'\n{submitted} job(s) submitted, {queued - submitted} already queued or running; job records in '
            f'{rel(records_path)}. Rerun the same command (or add --status) for the states and the tables.')
    if unknown and not frozen:
        out(f'{unknown} step(s) with a job in an unknown state are not resubmitted' + (
            f' (sacct: {_answer(errors["sacct"])})' if errors.get('sacct') else '')
            + f': look at their logs; when such a job has ended, delete its entry from {rel(records_path)} to '
            'submit the step again.')

"""Slurm submit mode of a table run: every step an ``sbatch`` job, chained with ``--dependency=afterok:``.

``submit_plan`` writes one batch script per needed step (``<work root>/slurm/<step>.sh``), submits them in
dependency order — pretraining → transfer → tests — each after the jobs of the steps it needs, prints the job
ids and returns: the driver does not wait. The jobs are recorded in ``<work root>/slurm/jobs.json``.

A later call (the same command, or ``--status``) looks at each step again: done when its outputs exist (as in
the local runner), otherwise the state of its recorded job from ``squeue`` (queued, running) or ``sacct``
(failed, cancelled, timed out, ...). Submitting again resubmits what failed or was never submitted (a training
continues from its latest checkpoint: every training job runs with ``--resume``), cancels and resubmits the
queued jobs behind a resubmitted one (their dependency can never be met), and leaves queued and running jobs
alone. The instant steps (a shared row's results, Table D's top-1 from a backbone file) run in the driver once
the steps they need are done, and the tables are written with whatever results exist.

Each job: ``srun python -u tools/<train|test>.py ... --launcher slurm`` (mmengine's slurm launcher, one task
per GPU), ``MASTER_PORT`` derived from ``SLURM_JOB_ID`` so that jobs sharing a node do not collide.
"""
from __future__ import annotations

import getpass
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .steps import ROOT, Step, _start_over, rel

ACTIVE = ('PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED',
          'RESIZING', 'SUSPENDED', 'STAGE_OUT', 'SIGNALING')
NEVER = ('DependencyNeverSatisfied',)   # squeue's reason of a job whose dependency failed


class SlurmError(RuntimeError):
    pass


def job_script(step: Step, *, work_root: Path, partition: Optional[str] = None, gpus_per_node: int = 8,
               cpus_per_task: int = 5, sbatch_args: tuple = ()) -> str:
    """The batch script of one training or test step."""
    gpus = max(1, step.gpus)
    per_node = min(gpus, gpus_per_node)
    nodes = math.ceil(gpus / per_node)
    argv = list(step.argv)
    # a requeued or resubmitted training continues from its latest checkpoint (none yet: from the start)
    argv[3:3] = ['--launcher', 'slurm'] + (['--resume'] if step.script == 'train' and '--resume' not in argv else [])
    lines = ['#!/usr/bin/env bash', f'#SBATCH --job-name=mixseg-{step.name}']
    lines += [f'#SBATCH --partition={partition}'] if partition else []
    lines += [f'#SBATCH --nodes={nodes}', f'#SBATCH --ntasks={gpus}', f'#SBATCH --ntasks-per-node={per_node}',
              f'#SBATCH --gres=gpu:{per_node}', f'#SBATCH --cpus-per-task={cpus_per_task}',
              f'#SBATCH --output={work_root / "logs" / step.name}.%j.log']
    lines += [f'#SBATCH {a}' for a in sbatch_args]
    lines += [f'# {step.title}' + (f' — for {"; ".join(step.rows)}' if step.rows else ''),
              'set -e',
              f'cd {shlex.quote(str(ROOT))}',
              'export PYTHONPATH="$PWD:${PYTHONPATH:-}"',
              '# one rendezvous port per job (jobs sharing a node must not collide): 20000 + job id mod 40000',
              'export MASTER_PORT=$((20000 + SLURM_JOB_ID % 40000))',
              'srun --kill-on-bad-exit=1 "${PYTHON:-python}" -u ' + ' '.join(
                  shlex.quote(str(a)) for a in [f'tools/{step.script}.py', *argv])]
    return '\n'.join(lines) + '\n'


def _run(cmd: list, what: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SlurmError(f'{cmd[0]} not found: the submit mode needs a Slurm cluster (sbatch, squeue, sacct)') \
            from None
    if r.returncode != 0:
        raise SlurmError(f'{what} failed (exit status {r.returncode}): {(r.stderr or r.stdout).strip()}')
    return r.stdout


def query(job_ids) -> dict:
    """job id -> (state, reason) from squeue (queued and running jobs), then sacct (finished ones); jobs
    neither knows are left out. A missing or failing squeue/sacct leaves its jobs out (with a warning)."""
    ids = sorted({str(j) for j in job_ids}, key=lambda j: (len(j), j))
    states: dict = {}
    warnings = []
    if not ids:
        return states
    try:
        text = _run(['squeue', '-h', '-u', getpass.getuser(), '-o', '%i|%T|%r'], 'squeue')
        for line in text.splitlines():
            parts = line.strip().split('|')
            if len(parts) >= 2 and parts[0] in ids:
                states[parts[0]] = (parts[1].strip().upper(), parts[2].strip() if len(parts) > 2 else '')
    except SlurmError as e:
        warnings.append(str(e))
    rest = [j for j in ids if j not in states]
    if rest:
        try:
            text = _run(['sacct', '-n', '-P', '-X', '-o', 'JobID,State', '-j', ','.join(rest)], 'sacct')
            for line in text.splitlines():
                parts = line.strip().split('|')
                if len(parts) >= 2 and parts[0] in rest:
                    states[parts[0]] = (parts[1].split()[0].upper() if parts[1].strip() else 'UNKNOWN', '')
        except SlurmError as e:
            warnings.append(str(e))
    for w in warnings:
        print(f'warning: {w}', file=sys.stderr)
    return states


def _load_records(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise SlurmError(f'{path}: unreadable job records ({e}); move it away to start the bookkeeping anew')
    return data if isinstance(data, dict) else {}


def submit_plan(steps: list[Step], work_root: Path, *, dry_run: bool = False, status: bool = False,
                partition: Optional[str] = None, gpus_per_node: int = 8, cpus_per_task: int = 5,
                sbatch_args: tuple = (), out=print) -> list[Step]:
    """Submit (or, with ``status``, only report; with ``dry_run``, only print) the needed steps as Slurm jobs;
    run the instant steps whose inputs exist. Returns the steps that failed or cannot run."""
    from mixseg.checkpoint import atomic_write_text

    from .runner import _run_inprocess, describe

    work_root = Path(work_root)
    slurm_dir = work_root / 'slurm'
    records_path = slurm_dir / 'jobs.json'
    records = {} if dry_run else _load_records(records_path)
    jobs = {s.name: records[s.name] for s in steps if s.name in records and s.needed}
    states = query(r['job'] for r in jobs.values()) if jobs and not dry_run else {}
    n = len(steps)
    job_of: dict = {}        # step index -> job id it waits for (active or just submitted)
    bad: set = set()         # step indices that failed or cannot run
    resubmitted: set = set()
    submitted = 0

    def state_of(i: int) -> tuple[str, str, str]:
        """(kind of state, text, job id): 'done' | 'skip' | 'active' | 'failed' | 'new'."""
        s = steps[i]
        if s.done:
            return 'done', 'done', ''
        if not s.needed:
            return 'skip', f'skip ({s.reason})', ''
        rec = jobs.get(s.name)
        if rec is None:
            return 'new', 'not submitted', ''
        job = str(rec['job'])
        if rec.get('key') != s.key:
            return 'failed', f'job {job} ran other options: {s.reason or "starts over"}', job
        state, reason = states.get(job, ('', ''))
        if state in ACTIVE:
            word = 'queued' if state == 'PENDING' else state.lower()
            return 'active', f'{word} (job {job}' + (f', {reason}' if reason and reason != 'None' else '') + ')', job
        if state == 'COMPLETED':
            return 'failed', f'job {job} completed without writing {", ".join(rel(o) for o in s.outputs)}', job
        if state:
            return 'failed', f'failed (job {job} {state}; log {rel(work_root / "logs" / s.name)}.{job}.log)', job
        return 'failed', f'job {job} unknown to squeue and sacct', job

    def cancel(job: str) -> None:
        if not status:
            _run(['scancel', job], 'scancel')

    for i, s in enumerate(steps):
        head = describe(s, i + 1, n)
        kind, text, job = state_of(i)
        if kind in ('done', 'skip'):
            out(f'{head}  {text}')
            continue
        if s.blocked:
            out(f'{head}  not run: {s.blocked}')
            bad.add(i)
            continue
        if s.func is not None:   # an instant step: done here once what it needs is done
            waiting = [steps[d].name for d in s.deps if not steps[d].done]
            if waiting or dry_run:
                out(f'{head}  ' + (f'waits for {", ".join(waiting)}: done by a later call' if waiting else
                                   'done by the driver once its inputs exist') + f'\n    = {s.shell()}')
                if any(d in bad for d in s.deps):
                    bad.add(i)
                continue
            if s.stale:
                _start_over(s)
            if s.stamp is not None:
                atomic_write_text(s.stamp, json.dumps(s.key, indent=1) + '\n')
            try:
                _run_inprocess(None, [], s.func, work_root / 'logs' / f'{s.name}.log', s.shell())
                s.done = True
                out(f'{head}  done')
            except RuntimeError as e:
                bad.add(i)
                out(f'{head}  FAILED: {e}')
            continue
        # a job step: keep an active job unless what it waits for was resubmitted
        deps_failed = [steps[d].name for d in s.deps if d in bad]
        if deps_failed:
            out(f'{head}  not submitted: needs {", ".join(deps_failed)}')
            if kind == 'active' and not dry_run:
                cancel(job)
            bad.add(i)
            continue
        after = [job_of[d] for d in s.deps if d in job_of]
        stuck = kind == 'active' and ('DependencyNeverSatisfied' in text or any(d in resubmitted for d in s.deps))
        if kind == 'active' and not stuck:
            job_of[i] = job
            out(f'{head}  {text}')
            continue
        if status:
            out(f'{head}  {text}' + ('  (waits on a failed job: resubmitted by the next call without --status)'
                                     if stuck else ''))
            if kind == 'failed' or stuck:
                bad.add(i)
            continue
        script = job_script(s, work_root=work_root, partition=partition, gpus_per_node=gpus_per_node,
                            cpus_per_task=cpus_per_task, sbatch_args=sbatch_args)
        path = slurm_dir / f'{s.name}.sh'
        dep = ['--dependency=afterok:' + ':'.join(after)] if after else []
        if dry_run:
            shown = ['--dependency=afterok:' + ':'.join(f'<job of {steps[d].name}>' for d in s.deps if d in job_of)] \
                if after else []
            out(f'{head}\n    $ sbatch --parsable {" ".join(shown + [rel(path)])}')
            out('\n'.join('    | ' + line for line in script.splitlines()))
            job_of[i] = f'<{s.name}>'
            continue
        if job and states.get(job, ('', ''))[0] in ACTIVE:   # queued behind a failed job, or other options
            cancel(job)
        if s.stale:
            _start_over(s)
        if s.stamp is not None:
            atomic_write_text(s.stamp, json.dumps(s.key, indent=1) + '\n')
        atomic_write_text(path, script)
        (work_root / 'logs').mkdir(parents=True, exist_ok=True)
        cmd = ['sbatch', '--parsable', f'--export=ALL,PYTHON={sys.executable}', *dep, str(path)]
        new = _run(cmd, f'sbatch {rel(path)}').strip().split(';')[0]
        if not new.isdigit():
            raise SlurmError(f'sbatch {rel(path)}: unexpected answer {new!r} (expected a job id)')
        job_of[i] = new
        resubmitted.add(i)
        submitted += 1
        records[s.name] = dict(job=new, key=s.key, after=after, script=str(path),
                               submitted=time.strftime('%Y-%m-%d %H:%M:%S'))
        atomic_write_text(records_path, json.dumps(records, indent=1) + '\n')   # after each job: nothing lost
        out(f'{head}  submitted job {new}' + (f' (after {", ".join(after)})' if after else '')
            + (f'; was {text}' if kind != 'new' else ''))

    if dry_run:
        out(f'\n{len(job_of)} job(s) would be submitted (scripts in {rel(slurm_dir)})')
    elif status:
        active = sum(1 for i, s in enumerate(steps) if i in job_of)
        out(f'\n{active} job(s) queued or running, {len(bad)} step(s) failed or cannot run')
    else:
        out(f'\n{submitted} job(s) submitted, {len(job_of) - submitted} already queued or running; job records in '
            f'{rel(records_path)}. Rerun the same command (or add --status) for the states and the tables.')
    return [steps[i] for i in sorted(bad)]

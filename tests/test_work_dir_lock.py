"""One run per work dir, also when two start at once; ``--overwrite-work-dir`` never deletes through a symlink
(issue 20, items 6 and 7).

Real processes: ``tools/train.py`` runs of the tiny regression of test_foundation.py (a hook holds the first run
inside training until the test lets it go), a process that takes the lock and is SIGKILLed, and a 2-rank gloo run.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_foundation import TOY_CONFIG, TOY_MODULE
from test_trust_runs import _train, toy  # noqa: F401  (toy: a fixture)

ROOT = Path(__file__).resolve().parents[1]

HOLD_HOOK = '''
import os
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class HoldUntil(Hook):
    """Writes `ready` when training starts, then waits until the file `go` exists."""

    def __init__(self, ready, go):
        self.ready, self.go = ready, go

    def before_train(self, runner):
        open(self.ready, 'w').close()
        while not os.path.exists(self.go):
            time.sleep(0.1)
'''


def _env(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'SLURM_PROCID', 'SLURM_JOB_ID', 'OMPI_COMM_WORLD_RANK'):
        env.pop(var, None)
    return env


def _toy_config(tmp_path, name, max_iters=4, extra=''):
    (tmp_path / 'toy_mm.py').write_text(TOY_MODULE + HOLD_HOOK)
    path = tmp_path / f'{name}.py'
    path.write_text(TOY_CONFIG.format(max_iters=max_iters, nan_at=None) + extra)
    return path


def _train_cmd(config, work, *extra):
    return [sys.executable, str(ROOT / 'tools/train.py'), str(config), '--work-dir', str(work), *map(str, extra)]


def _wait_for(path, proc, timeout=240):
    end = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f'the first run ended before training started (rc {proc.returncode}):\n'
                        f'{out[-2000:]}{err[-3000:]}')
        assert time.time() < end, f'{path} never appeared'
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------------------
# item 6: two runs at once

def test_a_second_run_into_a_work_dir_in_use_is_refused_until_the_first_ends(tmp_path):
    ready, go, work = tmp_path / 'ready', tmp_path / 'go', tmp_path / 'work'
    config = _toy_config(tmp_path, 'toy_hold', extra=f'custom_hooks = [dict(type="HoldUntil", ready={str(ready)!r}, '
                                                     f'go={str(go)!r})]\n')
    first = subprocess.Popen(_train_cmd(config, work), cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, first)  # the first run is inside training: its run.json is written, no checkpoint yet
        # another run into it: passed the identity check before (the first has written no checkpoint yet)
        second = subprocess.run(_train_cmd(_toy_config(tmp_path, 'toy_b', max_iters=6), work), cwd=tmp_path,
                                env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert second.returncode != 0, second.stdout[-2000:]
        holder = json.loads((work / 'run.lock').read_text())
        assert holder['pid'] == first.pid and holder['host'] == socket.gethostname()
        message = second.stderr.strip().splitlines()[-1]
        assert message.startswith(f'error: {work} is in use by another run: pid {first.pid} on host '
                                  f'{socket.gethostname()} (since '), message
        assert 'tools/train.py' in message and f'delete {work}/run.lock' in message
        assert not list(work.glob('*.pth'))  # the refused run trained nothing
    finally:
        go.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out[-2000:] + err[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert not (work / 'run.lock').exists()  # released at the end of the run
    # after the first run has ended a new run may start (here: continue it)
    third = subprocess.run(_train_cmd(_toy_config(tmp_path, 'toy_6', max_iters=6), work, '--resume'), cwd=tmp_path,
                           env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-3000:]
    assert (work / 'iter_6.pth').is_file() and not (work / 'run.lock').exists()


def _killed_holder(work):
    """The pid of a process that took the lock of ``work`` and was SIGKILLed (the lock file stays)."""
    code = ('import os, signal, sys\nfrom mixcore.workdir import lock_work_dir\n'
            'lock_work_dir(sys.argv[1])\nos.kill(os.getpid(), signal.SIGKILL)\n')
    proc = subprocess.Popen([sys.executable, '-c', code, str(work)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert json.loads((work / 'run.lock').read_text())['pid'] == proc.pid
    return proc.pid


def test_a_stale_lock_of_a_dead_process_is_named_and_removed(toy, tmp_path, capsys):
    work = tmp_path / 'work'
    pid = _killed_holder(work)
    _train(toy('toy_a', 2), work)
    log = capsys.readouterr().out
    assert (f'mixseg: {work}/run.lock: removed the stale lock of pid {pid} on host {socket.gethostname()} (since '
            in log), log
    assert f'no process {pid} runs on {socket.gethostname()}' in log
    assert (work / 'iter_2.pth').is_file() and not (work / 'run.lock').exists()


def test_a_lock_from_another_host_is_not_judged_by_its_pid(tmp_path, monkeypatch):
    from mixcore.workdir import WorkDirError, lock_work_dir
    work = tmp_path / 'work'
    pid = _killed_holder(work)  # no such process here; on its own node it may well run
    record = json.loads((work / 'run.lock').read_text())
    (work / 'run.lock').write_text(json.dumps(dict(record, host='gpu-node-17')))
    with pytest.raises(WorkDirError) as info:
        lock_work_dir(work, log=pytest.fail)
    message = str(info.value)
    assert message.startswith(f'{work} is in use by another run: pid {pid} on host gpu-node-17 (since '), message
    assert (f'If it no longer runs (it ran on another host, so this one cannot check its pid), delete '
            f'{work}/run.lock and start again.') in message
    assert json.loads((work / 'run.lock').read_text())['host'] == 'gpu-node-17'  # left alone

    # the same Slurm job requeued (on any node): its earlier incarnation is gone
    (work / 'run.lock').write_text(json.dumps(dict(record, host='gpu-node-17', slurm=['4242', '0'])))
    monkeypatch.setenv('SLURM_JOB_ID', '4242')
    monkeypatch.setenv('SLURM_RESTART_COUNT', '1')
    said = []
    with lock_work_dir(work, log=said.append) as lock:
        assert json.loads((work / 'run.lock').read_text()) == lock.record
        assert lock.record['slurm'] == ['4242', '1']
    assert said and 'Slurm job 4242 was requeued (restart 0 -> 1)' in said[0]
    assert not (work / 'run.lock').exists()


def test_a_live_pid_is_stale_only_when_it_is_another_process(tmp_path):
    from mixcore.workdir import WorkDirError, lock_work_dir
    work = tmp_path / 'work'
    with lock_work_dir(work) as mine:
        with pytest.raises(WorkDirError, match=f'in use by another run: pid {os.getpid()} on host '):
            lock_work_dir(work)  # one process, two runs: refused as well
        record = dict(mine.record, start='1', token='x')  # this pid, but a process started at another time
        (work / 'run.lock').write_text(json.dumps(record))
        said = []
        with lock_work_dir(work, log=said.append):
            assert 'the pid was reused' in said[0]
    assert not (work / 'run.lock').exists()


def test_a_two_rank_run_takes_the_lock_once(tmp_path):
    """Ranks 1.. share rank 0's work dir and do not take the lock (they would be refused by rank 0's). Into a work
    dir in use, rank 0 is refused and the run ends (rank 1 does not wait for it)."""
    from mixcore.workdir import lock_work_dir
    config, work = _toy_config(tmp_path, 'toy_ddp'), tmp_path / 'work'

    def two_ranks():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(port),
               str(ROOT / 'tools/train.py'), str(config), '--launcher', 'pytorch', '--work-dir', str(work)]
        return subprocess.run(cmd, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=400)

    with lock_work_dir(work):
        refused = two_ranks()
    assert refused.returncode != 0 and f'error: {work} is in use by another run: pid {os.getpid()}' in refused.stderr
    assert not list(work.glob('*.pth'))
    proc = two_ranks()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / 'iter_4.pth').is_file() and (work / 'run.json').is_file()
    assert not (work / 'run.lock').exists() and not list(work.glob('.run.lock.*'))


# ---------------------------------------------------------------------------------------------------------
# item 7: --overwrite-work-dir and symlinks

def test_overwrite_removes_symlinks_as_links_and_keeps_what_they_point_to(toy, tmp_path, capsys):
    a, b = toy('toy_a', 2), toy('toy_b', 4)
    work, outside = tmp_path / 'work', tmp_path / 'outside'
    _train(a, work)
    outside.mkdir()
    for name in ('ss.json', 'ms.json', 'notes.txt', 'precious.pth'):
        (outside / name).write_text(name)
    (work / 'results').symlink_to(outside)
    (work / 'iter_9.pth').symlink_to(outside / 'precious.pth')
    _train(b, work, '--overwrite-work-dir')
    assert sorted(p.name for p in outside.iterdir()) == ['ms.json', 'notes.txt', 'precious.pth', 'ss.json']
    assert all((outside / p).read_text() == p for p in ('ss.json', 'ms.json', 'precious.pth'))
    assert not (work / 'results').exists() and not (work / 'results').is_symlink()
    assert not (work / 'iter_9.pth').is_symlink()
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert 'removed the files of the previous run' in capsys.readouterr().out
    (work / 'results').symlink_to(outside)
    with pytest.raises(SystemExit, match=r'Its files \(iter_2.pth, iter_4.pth, last_checkpoint, results\)'):
        _train(a, work)  # listed as the link, not what it points to


def test_sigterm_ends_a_run_and_releases_its_lock(tmp_path):
    """scancel and Slurm's time limit send SIGTERM: tools/train.py exits through SystemExit and releases run.lock,
    so a job resubmitted onto another node (which cannot check the pid) is not refused."""
    ready, go, work = tmp_path / 'ready', tmp_path / 'go', tmp_path / 'work'
    config = _toy_config(tmp_path, 'toy_hold', extra=f'custom_hooks = [dict(type="HoldUntil", ready={str(ready)!r}, '
                                                     f'go={str(go)!r})]\n')
    first = subprocess.Popen(_train_cmd(config, work), cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, first)
        assert json.loads((work / 'run.lock').read_text())['pid'] == first.pid
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    finally:
        go.touch()
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM, out[-2000:] + err[-3000:]
    assert not (work / 'run.lock').exists()


def _stub_squeue(tmp_path, monkeypatch, script):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / 'squeue').write_text('#!/bin/sh\n' + script)
    (bin_dir / 'squeue').chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')


@pytest.mark.parametrize('squeue, stale', [
    ('echo CANCELLED\n', 'Slurm job 4242 has ended (CANCELLED)'),
    ('echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n',
     'Slurm job 4242 has ended (its controller no longer knows it)'),
    ('echo RUNNING\n', None),
    ('echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1\n', None),
])
def test_a_lock_of_another_hosts_slurm_job_is_judged_by_the_controller(tmp_path, monkeypatch, squeue, stale):
    """A lock held by Slurm job 4242 on another node: stale only when the controller says that job has ended;
    running, or no answer (controller down), keeps the lock (never judged stale on a guess)."""
    from mixcore.workdir import WorkDirError, lock_work_dir
    work = tmp_path / 'work'
    record = json.loads((_killed_holder(work), work / 'run.lock')[1].read_text())
    (work / 'run.lock').write_text(json.dumps(dict(record, host='gpu-node-17', slurm=['4242', '0'])))
    _stub_squeue(tmp_path, monkeypatch, squeue)
    monkeypatch.setenv('SLURM_JOB_ID', '4243')  # the resubmitted job
    if stale is None:
        with pytest.raises(WorkDirError, match='in use by another run: pid .* on host gpu-node-17, Slurm job 4242'):
            lock_work_dir(work, log=pytest.fail)
        assert json.loads((work / 'run.lock').read_text())['host'] == 'gpu-node-17'
    else:
        said = []
        with lock_work_dir(work, log=said.append) as lock:
            assert lock.record['slurm'] == ['4243', '0']
        assert stale in said[0], said


def test_a_finished_distributed_run_leaves_its_process_group(tmp_path):
    """After a finished training the process group is gone (barrier, then destroy): mmengine never destroys it, and
    a rank whose interpreter exits with gloo's threads still running can abort (SIGABRT) while rank 0 still saves,
    which made torchrun report a finished run as failed. One rank, so the check is deterministic."""
    config, work = _toy_config(tmp_path, 'toy_end'), tmp_path / 'work'
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(_env(tmp_path), RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(port))
    code = ('import torch.distributed as dist; from mixseg.cli.train import main; '
            f'main([{str(config)!r}, "--launcher", "pytorch", "--work-dir", {str(work)!r}]); '
            'print("process group after the run:", dist.is_initialized())')
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert 'process group after the run: False' in r.stdout and list(work.glob('*.pth'))

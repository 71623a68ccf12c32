"""``tools/reproduce.py --submit`` end to end on a real single-node Slurm (``tools/local_slurm.sh start``; CI
starts it before the tests): Table A's baseline row of the demo as CPU jobs on partition ``cpu``, without
accounting storage. The jobs run, ``--status`` writes the table, a second ``--submit`` submits nothing, a
training cancelled with ``scancel`` mid-run is resubmitted and continues from its checkpoint (the queued jobs
behind it, whose dependency can no longer be met, are cancelled and resubmitted), and with the controller
unreachable ``--submit`` resubmits nothing and keeps the job records. Skipped, saying why, where the local
Slurm is not running."""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
WAIT = 900   # s: the whole chain takes about a minute on 2 idle cores


def _local_slurm() -> str:
    """'' when the Slurm of tools/local_slurm.sh answers, else why not."""
    if not shutil.which('sbatch'):
        return 'no sbatch on PATH'
    r = subprocess.run(['bash', str(ROOT / 'tools/local_slurm.sh'), 'status'], capture_output=True, text=True,
                       timeout=60)
    return '' if r.returncode == 0 else (r.stderr.strip() or r.stdout.strip() or f'exit status {r.returncode}')


def _states(jobs) -> dict:
    r = subprocess.run(['squeue', '-h', '-t', 'all', '-j', ','.join(map(str, jobs)), '-o', '%i|%T'],
                       capture_output=True, text=True, timeout=60)
    return dict(line.split('|', 1) for line in r.stdout.split())


def _wait(what, ok, timeout=WAIT, every=0.2):
    t0 = time.monotonic()
    while not ok():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(every)


def _wait_jobs(jobs, logs: Path):
    """Until none of ``jobs`` is queued or running; then every one completed (else: their logs' ends)."""
    from mixseg.reproduce.slurm import ACTIVE
    try:
        _wait('the jobs', lambda: not any(s in ACTIVE for s in _states(jobs).values()), every=2)
    finally:
        states = _states(jobs)
        bad = {j: s for j, s in states.items() if s != 'COMPLETED'}
        if bad:
            tails = [f'--- {p.name}\n' + '\n'.join(p.read_text(errors='replace').splitlines()[-15:])
                     for p in sorted(logs.glob('*.log')) if any(f'.{j}.log' in p.name for j in bad)]
            raise AssertionError(f'jobs not completed: {bad}\n' + '\n'.join(tails))


@pytest.fixture
def slurm():
    why = _local_slurm()
    if why:
        pytest.skip(f'no local Slurm ({why}): start one with `bash tools/local_slurm.sh start` (root, Debian '
                    'packages slurmctld slurmd munge)')
    submitted = []
    yield submitted
    if submitted:   # nothing of this test keeps running into its temporary folders
        subprocess.run(['scancel', *map(str, submitted)], capture_output=True, timeout=60)


def test_submit_demo_table_on_a_real_slurm(slurm, tmp_path, monkeypatch):
    from _tools import load_tool
    rp = load_tool('reproduce')
    root, data = tmp_path / 'w', tmp_path / 'd'
    records_path = root / 'slurm/jobs.json'
    # tiny data, 2-iteration transfers; the pretraining long enough to be cancelled after its first checkpoint
    argv = ['A', '--demo', '--methods', 'baseline', '--partition', 'cpu', '--work-root', str(root), '--data-root',
            str(data), '--demo-schedule', 'data_size=tiny', 'pretrain_epochs=20', 'seg_iters=2']

    def main(*extra):
        lines = []
        rc = rp.main([*argv, *extra], out=lambda s: lines.extend(str(s).splitlines()))
        records = json.loads(records_path.read_text()) if records_path.is_file() else {}
        slurm.extend(r['job'] for r in records.values())
        return rc, '\n'.join(lines), records

    rc, text, records = main('--submit')
    assert rc == 0 and '7 job(s) submitted' in text, text
    script = (root / 'slurm/pretrain_vit-nano_baseline.sh').read_text()
    assert '--gres' not in script and '#SBATCH --ntasks=1' in script and '--resume-if-any' in script

    # the pretraining, cancelled once it wrote a checkpoint
    pre = records['pretrain_vit-nano_baseline']['job']
    wd = root / 'pretrain/vit-nano_baseline'
    _wait('the first pretraining checkpoint', lambda: (wd / 'last_checkpoint').is_file(), timeout=WAIT)
    subprocess.run(['scancel', pre], check=True, timeout=60)
    assert not (wd / 'backbone.safetensors').exists(), 'the pretraining ended before it could be cancelled'
    _wait('the cancelled job to end', lambda: _states([pre]).get(pre) not in ('RUNNING', 'COMPLETING'))
    first_log = root / f'logs/pretrain_vit-nano_baseline.{pre}.log'
    assert 'no checkpoint in' in first_log.read_text()   # the first job started from scratch

    # the next --submit resubmits it, and the 6 jobs queued behind it (DependencyNeverSatisfied)
    rc, text, records = main('--submit')
    assert rc == 0 and '7 job(s) submitted' in text, text
    assert re.search(rf'pretrain vit-nano baseline .* submitted job \d+; was failed \(job {pre} CANCELLED', text), text
    new_pre = records['pretrain_vit-nano_baseline']['job']
    assert new_pre != pre
    _wait_jobs([r['job'] for r in records.values()], root / 'logs')
    log = (root / f'logs/pretrain_vit-nano_baseline.{new_pre}.log').read_text()
    assert 'mixseg: --resume-if-any: resuming from the checkpoint in' in log and 'resumed epoch' in log, log[-3000:]
    assert f'mixseg: job {new_pre} (pretrain_vit-nano_baseline) finished: exit status 0' in log

    # --status: every step done, Table A's baseline row filled (single- and multi-scale)
    rc, text, _ = main('--status')
    assert rc == 0 and text.count('  done') == 8, text
    table = (root / 'tables.md').read_text()
    for decoder in ('Linear', 'Segmenter'):
        assert re.search(rf'\| DeiT-S \| {decoder} \| [\d.]+ / [\d.]+†? / [+-][\d.]+ \| [\d.]+ / [\d.]+†? / ', table), table

    # a second --submit submits nothing
    rc, text, again = main('--submit')
    assert rc == 0 and '0 job(s) submitted' in text and again == records

    # a step to redo, the controller unreachable (a configuration naming a dead port): nothing resubmitted
    (root / 'pascal-context-59_linear/vit-nano_baseline/results/ss.json').unlink()
    dead = tmp_path / 'dead.conf'
    dead.write_text(re.sub(r'(?m)^SlurmctldPort=\d+', 'SlurmctldPort=9', Path('/etc/slurm/slurm.conf').read_text()))
    monkeypatch.setenv('SLURM_CONF', str(dead))
    rc, text, kept = main('--submit')
    assert rc == 1 and 'squeue failed' in text and 'nothing submitted or cancelled' in text, text
    assert re.search(r'test ss pascal-context-59_linear vit-nano baseline .*state unknown \(job \d+: squeue failed\)',
                     text), text
    assert kept == records
    monkeypatch.delenv('SLURM_CONF')
    rc, text, records = main('--submit')   # the controller back: the step is resubmitted
    assert rc == 0 and '1 job(s) submitted' in text, text

"""How reproduce launches the papers' runs: --auto-scale-lr exactly when the total batch differs from the
paper's, --amp on GPU runs, and the Slurm submit mode: its job scripts, and against stub sbatch/squeue/sacct
what a real Slurm does not readily show (GPU jobs, sacct states, accounting disabled, a failing squeue; the
real single-node Slurm run is tests/test_slurm_real.py)."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mixseg.reproduce.slurm import CPUS_PER_GPU, SlurmError, job_script
from mixseg.reproduce.steps import Step
from test_reproduce import dry_run, options
from test_trust_runs import toy  # noqa: F401  (the toy-config fixture)

ROOT = Path(__file__).resolve().parents[1]


def _kinds(cmds):
    """(pretrainings, transfers, tests) among the printed commands."""
    pre = [c for c in cmds if any('configs/pretrain/' in a for a in c)]
    train = [c for c in cmds if any(a.endswith('train.sh') or a.endswith('train.py') for a in c) and c not in pre]
    test = [c for c in cmds if any(a.endswith('test.sh') or a.endswith('test.py') for a in c)]
    return pre, train, test


def test_auto_scale_lr_exactly_when_the_total_batch_differs(tmp_path):
    # the papers' GPU counts: every total batch is the paper's, the lr stays
    _, cmds = dry_run('A', 'B', '--work-root', str(tmp_path))
    pre, train, test = _kinds(cmds)
    assert pre and train and test
    assert not any('--auto-scale-lr' in c for c in cmds)
    assert not any(k.startswith('auto_scale_lr') for c in cmds for k in options(c))

    # 4 GPUs: every training (pretraining 4 × 128 ≠ 1024, transfers 4 × 2 ≠ 16) rescales its lr; tests do not
    lines, cmds = dry_run('A', 'B', '--gpus', '4', '--work-root', str(tmp_path))
    pre, train, test = _kinds(cmds)
    assert all('--auto-scale-lr' in c for c in pre + train)
    assert not any('--auto-scale-lr' in c for c in test)
    # every config carries the total batch its lr belongs to (pretraining 1024, Segmenter Pascal Context 8 × 2,
    # Mask R-CNN 16), so no command needs to name it
    seg = [c for c in train if 'segmenter' in ' '.join(c)]
    assert seg and not any('auto_scale_lr.base_batch_size' in options(c) for c in pre + train)
    from mmengine.config import Config
    for c in seg:
        cfg = Config.fromfile(str(ROOT / next(a for a in c if a.startswith('configs/segmenter/'))))
        assert cfg.auto_scale_lr.base_batch_size == 16
    assert any('lr is rescaled linearly' in line for line in lines)

    # the papers' 8 GPUs given explicitly: nothing changes
    _, cmds = dry_run('B', '--gpus', '8', '--work-root', str(tmp_path))
    assert not any('--auto-scale-lr' in c for c in cmds)

    # one process (--launcher none): 1 × the per-GPU batch
    _, cmds = dry_run('B', '--methods', 'mixpro', '--launcher', 'none', '--work-root', str(tmp_path))
    pre, train, test = _kinds(cmds)
    assert all('--auto-scale-lr' in c for c in pre + train) and not any('--auto-scale-lr' in c for c in test)

    # the demo keeps its own schedules
    _, cmds = dry_run('A', '--demo', '--work-root', str(tmp_path))
    assert not any('--auto-scale-lr' in c for c in cmds)


def test_amp_on_gpu_runs_only(tmp_path):
    _, cmds = dry_run('B', '--methods', 'transmix', '--work-root', str(tmp_path))
    pre, train, test = _kinds(cmds)
    assert all((c + ['--'])[c.index('--amp') + 1].startswith('--') for c in pre + train)   # no value: the best
    assert not any('--amp' in c for c in test)
    _, cmds = dry_run('B', '--methods', 'transmix', '--amp', 'bf16', '--launcher', 'slurm', '--partition', 'p',
                      '--work-root', str(tmp_path))
    pre, train, _ = _kinds(cmds)
    assert all(c[c.index('--amp') + 1] == 'bf16' for c in pre + train)
    for argv in (['--amp', 'off'], ['--launcher', 'none'], ['--demo']):
        _, cmds = dry_run('B', '--methods', 'transmix', *argv, '--work-root', str(tmp_path))
        assert not any('--amp' in c for c in cmds), argv


# ---------------------------------------------------------------------------------------------------------
# Slurm submit mode, against stub sbatch / squeue / sacct / scancel on PATH

STUBS = {
    'sbatch': 'n=$(cat "$STUB/next" 2>/dev/null || echo 101); echo $((n + 1)) > "$STUB/next"; '
              'echo "$n $*" >> "$STUB/sbatch.log"; echo "$n"',
    # <tool>.err present: the tool fails with that message (a controller down, accounting storage disabled)
    'squeue': 'echo "$*" >> "$STUB/squeue.log"; [ -f "$STUB/squeue.err" ] && { cat "$STUB/squeue.err" >&2; exit 1; }; '
              'cat "$STUB/squeue.txt" 2>/dev/null; true',
    'sacct': 'echo "$*" >> "$STUB/sacct.log"; [ -f "$STUB/sacct.err" ] && { cat "$STUB/sacct.err" >&2; exit 1; }; '
             'cat "$STUB/sacct.txt" 2>/dev/null; true',
    'scancel': 'echo "$*" >> "$STUB/scancel.log"',
}


def _stub_slurm(tmp_path, monkeypatch):
    import os
    stub = tmp_path / 'stub'
    stub.mkdir()
    for name, body in STUBS.items():
        p = stub / name
        p.write_text(f'#!/usr/bin/env bash\n{body}\n')
        p.chmod(0o755)
    monkeypatch.setenv('PATH', f'{stub}:{os.environ["PATH"]}')
    monkeypatch.setenv('STUB', str(stub))
    return stub


def _sbatch_calls(stub):
    """job id -> (dependency job ids, script path) of every sbatch call."""
    calls = {}
    for line in (stub / 'sbatch.log').read_text().splitlines():
        job, *args = line.split()
        dep = next((a.split(':')[1:] for a in args if a.startswith('--dependency=afterok:')), [])
        calls[job] = (dep, Path(args[-1]))
    return calls


def test_submit_gpu_jobs_chained_sacct_failures_resubmitted_tables_written(tmp_path, monkeypatch):
    from test_reproduce import rp
    stub = _stub_slurm(tmp_path, monkeypatch)
    root = tmp_path / 'w'

    def main(*argv):
        lines = []
        rc = rp.main(['A', '--methods', 'transmix', '--work-root', str(root), *argv],
                     out=lambda s: lines.extend(str(s).splitlines()))
        return rc, '\n'.join(lines)

    # --dry-run prints the scripts, submits and writes nothing
    rc, text = main('--submit', '--dry-run')
    assert rc == 0 and not (stub / 'sbatch.log').exists() and not root.exists()
    assert text.count('#!/usr/bin/env bash') == 7 and text.count('$ sbatch') == 7
    assert 'export MASTER_PORT=$((20000 + SLURM_JOB_ID % 40000))' in text
    assert '--dependency=afterok:<job of pretrain_deit-s_transmix>' in text

    # submit: 7 jobs, each after the job of the step it needs; the driver returns at once
    rc, text = main('--submit', '--partition', 'gpu', '--sbatch-args=--time=72:00:00')
    assert rc == 0
    calls = _sbatch_calls(stub)
    by_name = {p.stem: (job, dep) for job, (dep, p) in calls.items()}
    assert len(calls) == 7
    pre = by_name['pretrain_deit-s_transmix']
    assert pre[1] == []
    for dec in ('linear', 'mask'):
        train = by_name[f'train_pascal-context-59_{dec}_deit-s_transmix']
        assert train[1] == [pre[0]]
        for tag in ('ss', 'ms'):
            assert by_name[f'test_{tag}_pascal-context-59_{dec}_deit-s_transmix'][1] == [train[0]]
    for job in calls:
        assert f'submitted job {job}' in text
    script = (root / 'slurm/train_pascal-context-59_mask_deit-s_transmix.sh').read_text()
    assert '#SBATCH --partition=gpu' in script and '#SBATCH --time=72:00:00' in script
    assert 'MASTER_PORT=$((20000 + SLURM_JOB_ID % 40000))' in script
    assert 'srun --kill-on-bad-exit=1' in script and 'tools/train.py' in script
    assert '--launcher slurm --resume-if-any' in script and '#SBATCH --ntasks=8' in script
    assert '#SBATCH --gres=gpu:8' in script and f'#SBATCH --cpus-per-task={CPUS_PER_GPU}' in script
    records = json.loads((root / 'slurm/jobs.json').read_text())
    assert {r['job'] for r in records.values()} == set(calls)

    # the pretraining finished; the linear transfer failed (sacct), its tests wait forever
    _touch(root / 'pretrain/deit-s_transmix/backbone.safetensors')
    lin = by_name['train_pascal-context-59_linear_deit-s_transmix'][0]
    lin_tests = [by_name[f'test_{t}_pascal-context-59_linear_deit-s_transmix'][0] for t in ('ss', 'ms')]
    (stub / 'squeue.txt').write_text(''.join(
        f'{j}|PENDING|{"DependencyNeverSatisfied" if j in lin_tests else "Dependency"}\n'
        for j in calls if j not in (pre[0], lin)))
    (stub / 'sacct.txt').write_text(f'{pre[0]}|COMPLETED\n{lin}|FAILED\n')
    rc, text = main('--status')
    assert rc == 1 and re.search(rf'failed \(job {lin} FAILED; log .*\.{lin}\.log\)', text)
    assert len(_sbatch_calls(stub)) == 7 and not (stub / 'scancel.log').exists()
    rc, text = main('--submit')
    assert rc == 0
    new = {j: c for j, c in _sbatch_calls(stub).items() if j not in calls}
    new_by_name = {p.stem: (job, dep) for job, (dep, p) in new.items()}
    assert sorted(new_by_name) == sorted(['train_pascal-context-59_linear_deit-s_transmix'] + [
        f'test_{t}_pascal-context-59_linear_deit-s_transmix' for t in ('ss', 'ms')])
    new_lin = new_by_name['train_pascal-context-59_linear_deit-s_transmix']
    assert new_lin[1] == []   # the pretraining is done: nothing to wait for
    assert all(new_by_name[f'test_{t}_pascal-context-59_linear_deit-s_transmix'][1] == [new_lin[0]]
               for t in ('ss', 'ms'))
    assert sorted((stub / 'scancel.log').read_text().split()) == sorted(lin_tests)   # the stuck ones

    # every result there: all done, the table written with our numbers
    for dec in ('linear', 'mask'):
        for tag, miou in (('ss', 50.0), ('ms', 51.0)):
            _touch(root / f'pascal-context-59_{dec}/deit-s_transmix/results/{tag}.json', json.dumps(dict(
                tag=tag, metrics={'mIoU': miou}, table_row=dict(table='A', model='deit-s', method='transmix',
                                                                decoder=dec))))
    (stub / 'squeue.txt').write_text('')
    rc, text = main('--status')
    assert rc == 0 and text.count('  done') == 5 and text.count('  skip (not needed') == 2   # 4 tests, pretraining
    for dec in ('Linear', 'Segmenter'):
        assert f'| DeiT-S + TransMix | {dec} | ' in text
        assert re.search(rf'\| DeiT-S \+ TransMix \| {dec} \| [\d.]+ / 50\.0\? / [+-][\d.]+ \| [\d.]+ / 51\.0\? /',
                         (root / 'tables.md').read_text())


def _touch(p, text='x'):
    p = Path(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_submit_without_slurm_says_so(tmp_path, monkeypatch):
    from test_reproduce import rp
    monkeypatch.setenv('PATH', str(tmp_path))   # no sbatch anywhere
    lines = []
    rc = rp.main(['B', '--methods', 'mixpro', '--submit', '--work-root', str(tmp_path / 'w')],
                 out=lambda s: lines.append(str(s)))
    assert rc == 1 and any('sbatch not found: the submit mode needs a Slurm cluster' in x for x in lines)


def test_submit_table_d_reports_missing_configs_and_reads_top1(tmp_path, monkeypatch):
    """Table D through Slurm: the pretrainings with a config are submitted, the others reported (exit status 1);
    once a backbone file exists, the next call reads its top-1 into the table (no job for that)."""
    from mixcore.weights.backbone_file import save_backbone_file
    from test_reproduce import rp
    import torch
    stub = _stub_slurm(tmp_path, monkeypatch)
    root = tmp_path / 'w'
    lines = []
    rc = rp.main(['D', '--methods', 'mixpro', '--submit', '--work-root', str(root)], out=lambda s: lines.append(s))
    text = '\n'.join(map(str, lines))
    submitted = {p.stem for _, p in _sbatch_calls(stub).values()}
    assert {'pretrain_deit-t_mixpro', 'pretrain_pvt-l_mixpro', 'pretrain_deit-b_mixpro'} <= submitted
    assert rc == 1 and re.search(r'pretrain ca-swin-t mixpro +not run: missing config', text)
    assert 'top-1 D: DeiT-T / MixPro / MixPro  waits for pretrain_deit-t_mixpro' in text
    save_backbone_file(root / 'pretrain/deit-t_mixpro/backbone.safetensors', {'w': torch.zeros(1)}, arch='deit',
                       img_size=224, patch_size=16, method='mixpro', top1=73.5)
    lines.clear()
    rp.main(['D', '--methods', 'mixpro', '--status', '--work-root', str(root)], out=lambda s: lines.append(s))
    text = '\n'.join(map(str, lines))
    assert 'top-1 D: DeiT-T / MixPro / MixPro  done' in text
    assert '| DeiT-T | MixPro | MixPro | 73.8 / 73.5? / -0.3 |' in (root / 'tables.md').read_text()


# ---------------------------------------------------------------------------------------------------------
# issue 21 / 20: states without accounting or without squeue, the job scripts, --submit --demo, --resume-if-any

def _submit_a(tmp_path, monkeypatch):
    """Table A's TransMix rows submitted to the stubs: (stub, work root, main, {step name: job})."""
    from test_reproduce import rp
    stub = _stub_slurm(tmp_path, monkeypatch)
    root = tmp_path / 'w'

    def main(*argv):
        lines = []
        rc = rp.main(['A', '--methods', 'transmix', '--work-root', str(root), *argv],
                     out=lambda s: lines.extend(str(s).splitlines()))
        return rc, '\n'.join(lines)
    assert main('--submit')[0] == 0
    return stub, root, main, {p.stem: job for job, (_, p) in _sbatch_calls(stub).items()}


def test_sacct_disabled_reads_the_logs_and_never_resubmits_an_unknown_state(tmp_path, monkeypatch):
    """No accounting storage: an ended job's state comes from its log (the job script's exit line, Slurm's
    CANCELLED line); one that ran and whose log shows no end is unknown: reported (not failed), never
    resubmitted, nor what waits for it, its id kept."""
    stub, root, main, jobs = _submit_a(tmp_path, monkeypatch)
    records = (root / 'slurm/jobs.json').read_text()
    (stub / 'sacct.err').write_text('Slurm accounting storage is disabled\n')
    pre = jobs['pretrain_deit-s_transmix']
    log = _touch(root / f'logs/pretrain_deit-s_transmix.{pre}.log', 'Epoch(train) [3][10/100] loss: 6.9\n')
    for name, job in jobs.items():   # the others ran too (logs), as far as their logs go
        if name != 'pretrain_deit-s_transmix':
            _touch(root / f'logs/{name}.{job}.log', 'starting\n')
    rc, text = main('--status')
    assert rc == 1 and 'failed' not in text.split('\n\n')[0], text
    assert re.search(rf'pretrain deit-s transmix .*state unknown \(job {pre} ended: not in squeue; no state from '
                     rf'sacct \(Slurm accounting storage is disabled\); no exit line in .*\.{pre}\.log\); work dir: '
                     'no checkpoint yet', text), text
    assert '7 step(s) in an unknown state (not failed)' in text
    rc, text = main('--submit')
    assert rc == 1 and len(_sbatch_calls(stub)) == 7 and '0 job(s) submitted' in text
    assert re.search(r'train pascal-context-59_linear deit-s transmix .*not resubmitted while its state is unknown',
                     text)
    assert (root / 'slurm/jobs.json').read_text() == records and not (stub / 'scancel.log').exists()

    # the log's exit line: failed → resubmitted, with what waits for it (never started: no log → resubmitted)
    for name, job in jobs.items():
        if name != 'pretrain_deit-s_transmix':
            (root / f'logs/{name}.{job}.log').unlink()
    log.write_text(log.read_text() + f'mixseg: job {pre} (pretrain_deit-s_transmix) finished: exit status 1\n')
    rc, text = main('--status')
    assert re.search(rf'pretrain deit-s transmix .*failed \(job {pre} FAILED; log ', text), text
    rc, text = main('--submit')
    assert rc == 0 and len(_sbatch_calls(stub)) == 14, text
    assert re.search(r'test ss pascal-context-59_mask .* submitted job \d+ \(after \d+\); was job \d+ ended '
                     r'without starting \(no log', text), text
    # Slurm's own line of a cancelled (or timed-out) job
    new_pre = json.loads((root / 'slurm/jobs.json').read_text())['pretrain_deit-s_transmix']['job']
    _touch(root / f'logs/pretrain_deit-s_transmix.{new_pre}.log',
           f'slurmstepd: error: *** JOB {new_pre} ON node1 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***\n')
    rc, text = main('--status')
    assert re.search(rf'pretrain deit-s transmix .*failed \(job {new_pre} TIMEOUT', text), text


def test_failing_squeue_resubmits_nothing_and_keeps_the_job_ids(tmp_path, monkeypatch):
    """squeue failing (controller unreachable): every state is unknown — even a job sacct calls FAILED may
    have been requeued — so nothing is submitted or cancelled, jobs.json keeps its ids, --status says unknown."""
    stub, root, main, jobs = _submit_a(tmp_path, monkeypatch)
    records = (root / 'slurm/jobs.json').read_text()
    (stub / 'squeue.err').write_text('slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n')
    (stub / 'sacct.txt').write_text(''.join(f'{j}|FAILED\n' for j in jobs.values()))
    for argv in (['--status'], ['--submit'], ['--submit']):
        rc, text = main(*argv)
        assert rc == 1 and 'squeue failed (exit status 1): slurm_load_jobs error: Unable to contact' in text, text
        assert text.count('state unknown (job ') == 7 and 'FAILED' not in text and 'nothing submitted' in text
        assert len(_sbatch_calls(stub)) == 7 and not (stub / 'scancel.log').exists()
        assert (root / 'slurm/jobs.json').read_text() == records
    assert not (stub / 'sacct.log').exists()   # (not asked: a job it calls ended may be requeued)


def _script(**kw):
    step = Step('test', 'test_ss_x', 'test ss x', [], script='test', gpus=8,
                argv=['configs/x.py', 'w/x/iter_8.pth', '--work-dir', 'w/x', '--cfg-options', 'a=1'])
    return job_script(step, work_root=Path('/tmp/w'), **kw)


def _sbatch_options(script):
    """The #SBATCH lines as sbatch reads them (it honours quotes): one option each."""
    return [shlex.split(line[len('#SBATCH '):]) for line in script.splitlines() if line.startswith('#SBATCH ')]


def test_job_scripts_quote_every_value_and_refuse_control_characters(tmp_path):
    # quotes, spaces and shell syntax stay one value (sbatch reads quotes in #SBATCH lines; bash in the body)
    odd = "gpu'; touch /tmp/pwned #"
    script = _script(partition=odd, sbatch_args=('--comment=a b',), python="/opt/my env/bin/python")
    opts = _sbatch_options(script)
    assert all(len(o) == 1 for o in opts) and [f'--partition={odd}'] in opts and ['--comment=a b'] in opts
    assert "PYTHON=${MIXSEG_PYTHON:-'/opt/my env/bin/python'}" in script
    r = subprocess.run(['bash', '-n'], input=script, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr
    # a newline (or any control character) would start a shell line or end sbatch's #SBATCH parsing: refused
    for kw, what in ((dict(partition='gpu\n#SBATCH --wrap=x'), '--partition'),
                     (dict(sbatch_args=('--time=1:00\necho hi',)), '--sbatch-args'),
                     (dict(python='/x/python\rrm -rf ~'), '--python')):
        with pytest.raises(SlurmError, match=rf"{what} '.*': control characters \('\\[nr]'\) cannot go into a "
                                             'batch script'):
            _script(**kw)
    with pytest.raises(SlurmError, match=r"--work-root '/tmp/w\\nx': control characters"):
        job_script(Step('test', 't', 't', [], script='test', argv=['c', 'k']), work_root=Path('/tmp/w\nx'))


def test_submit_refuses_control_characters_before_writing_anything(tmp_path, monkeypatch):
    from test_reproduce import rp
    stub = _stub_slurm(tmp_path, monkeypatch)
    for argv in (['--partition', 'gpu\nx'], ['--sbatch-args=--time=1\n--gres=gpu:0'],
                 ['--work-root', str(tmp_path / 'a\nb')]):
        lines = []
        rc = rp.main(['B', '--methods', 'mixpro', '--submit', '--work-root', str(tmp_path / 'w'), *argv],
                     out=lambda s: lines.append(str(s)))
        assert rc == 1 and any('control characters' in x for x in lines), (argv, lines)
        assert not (stub / 'sbatch.log').exists() and not (tmp_path / 'w').exists()
        assert not (tmp_path / 'a\nb').exists()


def test_job_scripts_run_the_planning_interpreter_and_pass_the_test_options_in_order(tmp_path):
    script = _script()
    # the interpreter that planned the job, overridable on the node; not whatever `python` the node finds
    assert f'PYTHON=${{MIXSEG_PYTHON:-{shlex.quote(sys.executable)}}}' in script and '${PYTHON:-python}' not in script
    srun = next(line for line in script.splitlines() if line.startswith('srun '))
    cmd = shlex.split(srun.split(' || ')[0])
    i = cmd.index('tools/test.py')
    assert cmd[i - 2:i] == ['$PYTHON', '-u'] and cmd[i + 1:i + 3] == ['configs/x.py', 'w/x/iter_8.pth']
    assert cmd[i + 3:] == ['--launcher', 'slurm', '--work-dir', 'w/x', '--cfg-options', 'a=1']
    assert f'--cpus-per-task={CPUS_PER_GPU}' in cmd
    # what the job ends with: the exit line --status reads when there is no accounting
    assert script.rstrip().endswith('echo "mixseg: job $SLURM_JOB_ID (test_ss_x) finished: exit status $rc"\nexit $rc')
    # the script runs the interpreter it names (here: a stub srun, a fake interpreter printing its arguments)
    bin_ = tmp_path / 'bin'
    bin_.mkdir()
    (bin_ / 'srun').write_text('#!/usr/bin/env bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n')
    fake = tmp_path / 'py thon'
    fake.write_text('#!/usr/bin/env bash\necho "ran: $*"\nexit 3\n')
    for f in (bin_ / 'srun', fake):
        f.chmod(0o755)
    path = tmp_path / 'job.sh'
    path.write_text(_script(python=str(fake)))
    env = {'PATH': f'{bin_}:/usr/bin:/bin', 'SLURM_JOB_ID': '7'}
    r = subprocess.run(['bash', str(path)], env=env, capture_output=True, text=True)
    assert r.returncode == 3 and 'ran: -u tools/test.py configs/x.py' in r.stdout, r
    assert r.stdout.rstrip().endswith('mixseg: job 7 (test_ss_x) finished: exit status 3')
    r = subprocess.run(['bash', str(path)], env=dict(env, MIXSEG_PYTHON=str(tmp_path / 'none')), capture_output=True,
                       text=True)
    assert r.returncode == 2 and f'no Python {tmp_path}/none on' in r.stderr and 'set MIXSEG_PYTHON' in r.stderr


def test_one_cpus_per_task_default_for_submit_and_slurm_train(tmp_path):
    """The CPUs per GPU task are stated once (tools/slurm_defaults.sh, from the README's loader measurement):
    the job scripts of --submit and tools/slurm_train.sh ask for the same."""
    text = (ROOT / 'tools/slurm_defaults.sh').read_text()
    assert re.search(rf'^CPUS_PER_GPU={CPUS_PER_GPU}$', text, re.M) and CPUS_PER_GPU == 10
    _, cmds = dry_run('B', '--methods', 'mixpro', '--submit', '--work-root', str(tmp_path))
    lines, _ = dry_run('B', '--methods', 'mixpro', '--submit', '--work-root', str(tmp_path))
    assert sum(f'#SBATCH --cpus-per-task={CPUS_PER_GPU}' in x for x in lines) == 3
    bin_ = tmp_path / 'bin'
    bin_.mkdir()
    (bin_ / 'srun').write_text('#!/usr/bin/env bash\necho "$@"\n')
    (bin_ / 'srun').chmod(0o755)
    import os
    for tool in ('slurm_train.sh', 'slurm_test.sh'):
        r = subprocess.run(['bash', str(ROOT / 'tools' / tool), 'p', 'j', 'c.py', 'w'], capture_output=True,
                           text=True, env=dict(os.environ, PATH=f'{bin_}:{os.environ["PATH"]}'))
        assert r.returncode == 0 and f'--cpus-per-task={CPUS_PER_GPU} ' in r.stdout, (tool, r)


def test_submit_demo_makes_cpu_jobs(tmp_path):
    """--submit --demo: the demo as CPU jobs (no gres, one task, one CPU), to try the chain on a CPU partition;
    --gpus 0 does the same for any table; a bare --gpus 0 (no Slurm) stays an error."""
    from test_reproduce import rp
    lines, _ = dry_run('A', '--demo', '--methods', 'baseline', '--submit', '--partition', 'cpu', '--work-root',
                       str(tmp_path))
    scripts = '\n'.join(lines)
    assert scripts.count('#!/usr/bin/env bash') == 7 and '--gres' not in scripts
    assert scripts.count('#SBATCH --ntasks=1') == 7 and scripts.count('#SBATCH --cpus-per-task=1') == 7
    assert scripts.count('#SBATCH --partition=cpu') == 7 and '--amp' not in scripts
    assert 'configs/demo/pretrain_vit-nano_baseline_demo.py --launcher slurm --resume-if-any' in scripts
    lines, _ = dry_run('B', '--methods', 'mixpro', '--submit', '--gpus', '0', '--work-root', str(tmp_path))
    assert '--gres' not in '\n'.join(lines) and '--amp' not in '\n'.join(lines)
    with pytest.raises(SystemExit):
        rp.parse_args(['B', '--gpus', '0'])


# --resume-if-any: what a job script runs (requeued or resubmitted jobs continue; the first one starts)

def test_resume_if_any_starts_fresh_or_resumes_and_bare_resume_still_refuses(toy, tmp_path, capsys):
    from test_trust_runs import _build_cfg, _train
    short, long = toy('toy_2', 2), toy('toy_4', 4)
    work = tmp_path / 'work'
    with pytest.raises(SystemExit, match='nothing to resume'):   # a user's bare --resume: unchanged
        _build_cfg(short, '--work-dir', work, '--resume')
    with pytest.raises(SystemExit, match='2'):
        _build_cfg(short, '--work-dir', work, '--resume', '--resume-if-any')
    assert 'give one of them' in capsys.readouterr().err
    cfg = _build_cfg(short, '--work-dir', work, '--resume-if-any')
    assert not cfg.get('resume') and cfg.get('load_from') is None
    _train(short, work, '--resume-if-any')   # empty work dir: trains from scratch
    assert 'no checkpoint in' in capsys.readouterr().out and (work / 'iter_2.pth').is_file()
    _train(long, work, '--resume-if-any')    # a checkpoint: continues from it (iterations 3, 4 only)
    out = capsys.readouterr().out
    assert f'resuming from the checkpoint in {work}' in out and (work / 'iter_4.pth').is_file()
    import torch
    assert torch.load(work / 'iter_4.pth', map_location='cpu', weights_only=False)['meta']['iter'] == 4
    log = ''.join(p.read_text() for p in sorted(work.glob('*/*.log')))   # (both runs may log into one file)
    assert 'resumed epoch: 0, iter: 2' in log
    after = log.split('resumed epoch: 0, iter: 2', 1)[1]
    assert re.search(r'\(train\) .*\[3/\d+\]', after) and not re.search(r'\(train\) .*\[1/\d+\]', after), after
    (work / 'last_checkpoint').unlink()      # checkpoints without the pointer: as --resume, refused
    with pytest.raises(SystemExit, match=r'no last_checkpoint file \(checkpoints there: iter_2.pth, iter_4.pth'):
        _build_cfg(long, '--work-dir', work, '--resume-if-any')

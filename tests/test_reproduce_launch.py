"""How reproduce launches the papers' runs: --auto-scale-lr exactly when the total batch differs from the
paper's, --amp on GPU runs, and the Slurm submit mode (stub sbatch/squeue/sacct, no cluster)."""
import re
from pathlib import Path

from test_reproduce import dry_run, options

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
    'squeue': 'echo "$*" >> "$STUB/squeue.log"; cat "$STUB/squeue.txt" 2>/dev/null; true',
    'sacct': 'cat "$STUB/sacct.txt" 2>/dev/null; true',
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


def test_submit_chains_jobs_and_rerun_reports_resubmits_and_writes_tables(tmp_path, monkeypatch):
    import json
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
    assert '--launcher slurm --resume' in script and '#SBATCH --ntasks=8' in script
    records = json.loads((root / 'slurm/jobs.json').read_text())
    assert {r['job'] for r in records.values()} == set(calls)

    # status: states from squeue; nothing submitted
    (stub / 'squeue.txt').write_text(f'{pre[0]}|RUNNING|None\n' + ''.join(
        f'{j}|PENDING|Dependency\n' for j in calls if j != pre[0]))
    rc, text = main('--status')
    assert rc == 0 and len(_sbatch_calls(stub)) == 7
    assert re.search(rf'pretrain deit-s transmix .*running \(job {pre[0]}\)', text)
    assert text.count('queued (job') == 6

    # a rerun while all are queued or running submits nothing
    rc, text = main('--submit')
    assert rc == 0 and len(_sbatch_calls(stub)) == 7 and '0 job(s) submitted' in text

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
    from mixseg.checkpoint import save_backbone_file
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

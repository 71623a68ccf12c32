"""How reproduce launches the papers' runs: --auto-scale-lr exactly when the total batch differs from the
paper's, --amp on GPU runs, and the Slurm submit mode (stub sbatch/squeue/sacct, no cluster)."""
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
    # a config without auto_scale_lr gets the paper's total batch as the base (Segmenter: 8 × 2); the
    # pretraining and Mask R-CNN configs carry their own (1024, 16)
    seg = [c for c in train if 'segmenter' in ' '.join(c)]
    assert seg and all(options(c)['auto_scale_lr.base_batch_size'] == '16' for c in seg)
    assert not any('auto_scale_lr.base_batch_size' in options(c) for c in pre)
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

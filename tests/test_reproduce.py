"""tools/reproduce.py (mixseg.reproduce): the commands of a whole table on the real configs (dry run), the
launchers and GPU counts, and the skip logic that lets a killed table run continue."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import mixseg.reproduce as lib
from _tools import load_tool
from mixseg.reproduce import execute, runner, steps as step_lib
from mixseg.tables.published import TABLES

ROOT = Path(__file__).resolve().parents[1]


rp = load_tool('reproduce')  # the command line (parse_args, main); the planner and runner: mixseg.reproduce


def dry_run(*argv):
    """Run ``reproduce.main`` with --dry-run; returns (printed lines, parsed commands)."""
    lines = []
    rc = rp.main([*argv, '--dry-run'], out=lambda s: lines.extend(str(s).splitlines()))
    assert rc == 0
    cmds = [shlex.split(line.split('$ ', 1)[1]) for line in lines if line.lstrip().startswith('$ ')]
    return lines, cmds


def options(cmd):
    """The --cfg-options of a command as a dict."""
    if '--cfg-options' not in cmd:
        return {}
    return dict(o.split('=', 1) for o in cmd[cmd.index('--cfg-options') + 1:])


def work_dir(cmd):
    if '--work-dir' in cmd:
        return cmd[cmd.index('--work-dir') + 1]
    return None


def rows_of(table):
    return [dict(r.key) for r in TABLES[table].rows if not r.reference]


EXPECTED = {  # table -> (pretrainings, transfers, tests, final checkpoint of the paper's schedule)
    'A': (3, 6, 12, 'iter_80000.pth'),
    'B': (3, 3, 3, 'epoch_12.pth'),
    'C': (6, 6, 12, 'iter_160000.pth'),
}


@pytest.mark.parametrize('table', ['A', 'B', 'C'])
def test_dry_run_prints_every_command_with_paper_gpus(table, tmp_path):
    lines, cmds = dry_run(table, '--work-root', str(tmp_path))
    pre = [c for c in cmds if 'configs/pretrain/' in ' '.join(c)]
    train = [c for c in cmds if c[:2] == ['bash', 'tools/dist_train.sh'] and c not in pre]
    test = [c for c in cmds if c[:2] == ['bash', 'tools/dist_test.sh']]
    n_pre, n_train, n_test, final = EXPECTED[table]
    assert (len(pre), len(train), len(test)) == (n_pre, n_train, n_test)
    assert len(cmds) == n_pre + n_train + n_test
    # every config exists; every run on the papers' 8 GPUs (torchrun through dist_train.sh / dist_test.sh)
    for c in pre + train:
        assert c[:2] == ['bash', 'tools/dist_train.sh'] and (ROOT / c[2]).is_file() and c[3] == '8', c
    for c in test:
        assert (ROOT / c[2]).is_file() and c[4] == '8', c
    # pretraining: the DeiT-recipe config of each (model, method)
    assert sorted(Path(c[2]).name for c in pre) == sorted(
        {f'{r["model"]}_{r["method"]}_8xb128-300e_in1k.py' for r in rows_of(table)})
    # each transfer loads the backbone file of its own pretraining
    backbones = {f'{work_dir(c)}/backbone.safetensors' for c in pre}
    for c in train:
        b = options(c)['model.backbone.checkpoint']
        assert b in backbones
        method = Path(b).parent.name.split('_', 1)[1]
        if method != 'baseline':   # the method-specific config names its method
            assert method in Path(c[2]).name, (c[2], method)
    # tests: one single-scale per row, plus multi-scale (--tta) for the tables with "+MS" columns
    seen = {}
    for c in test:
        opts = options(c)
        row = {k.split('.', 1)[1]: v for k, v in opts.items() if k.startswith('table_row.')}
        assert row.pop('table') == table
        assert row in rows_of(table), row
        tag = 'ms' if '--tta' in c else 'ss'
        seen.setdefault(tag, []).append(row)
        # the checkpoint is the final one of the config's own schedule, in the transfer's work dir
        assert c[3] == f'{work_dir(c)}/{final}'
        assert any(work_dir(t) == work_dir(c) and t[2] == c[2] for t in train)
    for tag in ({'ss', 'ms'} if table in 'AC' else {'ss'}):
        assert sorted(tuple(sorted(r.items())) for r in seen[tag]) == \
            sorted(tuple(sorted(r.items())) for r in rows_of(table))
    if table == 'B':
        assert 'ms' not in seen
    # transfer settings: A Pascal Context linear + mask, B Mask R-CNN PVT-S, C Segmenter mask on ADE20K
    names = [Path(c[2]).name for c in train]
    if table == 'A':
        assert all('pascal-context-59' in n and '8xb2' in n for n in names)
        assert sum(n.startswith('segmenter-linear_deit-s') for n in names) == 3
        assert sum(n.startswith('segmenter-mask_deit-s') for n in names) == 3
    elif table == 'B':
        assert all(n.startswith('mask-rcnn_pvt-s') and '8xb2-1x_coco' in n for n in names)
    else:
        assert all(n.startswith('segmenter-mask_deit-') and 'ade20k' in n and '8xb1' in n for n in names)
        assert {n.split('_')[1] for n in names} == {'deit-t', 'deit-s', 'deit-b'}
    # the table follows, not yet filled
    assert any(line.startswith(f'### Table {table}') for line in lines)
    assert any('not run' in line for line in lines)


def test_cli_dry_run_subprocess(tmp_path):
    r = subprocess.run([sys.executable, 'tools/reproduce.py', 'B', '--dry-run', '--work-root', str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('$ bash tools/dist_train.sh') == 6
    assert r.stdout.count('$ bash tools/dist_test.sh') == 3
    assert '(8 GPUs × 128 = 1024)' in r.stdout and '(8 GPUs × 2 = 16)' in r.stdout
    assert not any(tmp_path.iterdir())   # a dry run writes nothing


def test_launchers_and_gpu_override(tmp_path):
    _, cmds = dry_run('A', '--methods', 'transmix', '--launcher', 'slurm', '--partition', 'gpu',
                      '--work-root', str(tmp_path))
    pre, train, ss, ms, train2, ss2, ms2 = cmds
    assert pre[:3] == ['GPUS=8', 'bash', 'tools/slurm_train.sh'] and pre[3] == 'gpu'
    assert pre[5] == 'configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py'
    assert pre[6].endswith('pretrain/deit-s_transmix')         # WORK_DIR argument of slurm_train.sh
    assert train[:3] == ['GPUS=8', 'bash', 'tools/slurm_train.sh']
    assert ss[:3] == ['GPUS=8', 'bash', 'tools/slurm_test.sh'] and '--tta' in ms and '--tta' not in ss

    _, cmds = dry_run('B', '--methods', 'mixpro', '--gpus', '4', '--work-root', str(tmp_path))
    assert [c[3] for c in cmds[:2]] == ['4', '4'] and cmds[2][4] == '4'

    _, cmds = dry_run('C', '--methods', 'tokenmix', '--launcher', 'none', '--work-root', str(tmp_path))
    assert all(c[:2] in (['python', 'tools/train.py'], ['python', 'tools/test.py']) for c in cmds)
    assert len(cmds) == 3 * (1 + 1 + 2)

    with pytest.raises(SystemExit):
        rp.parse_args(['A', '--launcher', 'slurm'])   # slurm needs a partition


def test_given_backbone_replaces_pretraining(tmp_path):
    given = tmp_path / 'mine.safetensors'
    given.write_bytes(b'x')
    _, cmds = dry_run('A', '--methods', 'baseline', 'transmix', '--backbone', f'transmix={given}',
                      '--work-root', str(tmp_path / 'w'))
    pre = [c for c in cmds if 'configs/pretrain/' in ' '.join(c)]
    assert [Path(c[2]).name for c in pre] == ['deit-s_baseline_8xb128-300e_in1k.py']
    tm = [options(c)['model.backbone.checkpoint'] for c in cmds
          if c[1] == 'tools/dist_train.sh' and 'transmix' in c[2]]
    assert tm == [str(given)] * 2
    # a missing given file is reported, and the row's training is not run
    steps = lib.make_plan(['A'], methods=['mixpro'], work_root=tmp_path / 'w',
                          backbones={'mixpro': tmp_path / 'nope.safetensors'})
    assert all(s.reason.startswith('missing backbone file') for s in steps if s.kind == 'train')


def _touch(p, text='x'):
    p = Path(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _plan(root, table='A', methods=('transmix',)):
    return {s.name: s for s in lib.make_plan([table], methods=list(methods), work_root=root)}


def test_skip_logic_continues_a_partial_row(tmp_path):
    root = tmp_path / 'tables'
    pc_lin, pc_mask = root / 'pascal-context-59_linear/deit-s_transmix', root / 'pascal-context-59_mask/deit-s_transmix'
    steps = _plan(root)
    assert len(steps) == 7 and all(s.needed for s in steps.values())

    # pretraining finished, linear transfer finished and tested single-scale: only the rest runs
    _touch(root / 'pretrain/deit-s_transmix/backbone.safetensors')
    _touch(pc_lin / 'iter_80000.pth')
    _touch(pc_lin / 'results/ss.json', '{}')
    steps = _plan(root)
    needed = sorted(n for n, s in steps.items() if s.needed)
    assert needed == ['test_ms_pascal-context-59_linear_deit-s_transmix',
                      'test_ms_pascal-context-59_mask_deit-s_transmix',
                      'test_ss_pascal-context-59_mask_deit-s_transmix',
                      'train_pascal-context-59_mask_deit-s_transmix']
    assert steps['pretrain_deit-s_transmix'].reason == 'done'
    lines, cmds = dry_run('A', '--methods', 'transmix', '--work-root', str(root))
    assert len(cmds) == 4 and sum('skip (done)' in line for line in lines) == 3
    assert any('--tta' in c and c[3] == lib.rel(pc_lin / 'iter_80000.pth') for c in cmds)

    # a killed transfer (checkpoints but not the final one) is continued with --resume
    _touch(pc_mask / 'iter_8000.pth')
    _touch(pc_mask / 'last_checkpoint', str(pc_mask / 'iter_8000.pth'))
    steps = _plan(root)
    train = steps['train_pascal-context-59_mask_deit-s_transmix']
    assert train.needed and train.resume and '--resume' in train.argv and '--resume' in train.command

    # the final checkpoint found through last_checkpoint; everything after it pending
    _touch(pc_mask / 'iter_80000.pth')
    _touch(pc_mask / 'last_checkpoint', str(pc_mask / 'iter_80000.pth'))
    steps = _plan(root)
    assert not steps['train_pascal-context-59_mask_deit-s_transmix'].needed
    assert steps['test_ss_pascal-context-59_mask_deit-s_transmix'].needed

    # all results there: nothing runs, not even a pretraining whose backbone file was deleted
    (root / 'pretrain/deit-s_transmix/backbone.safetensors').unlink()
    for wd in (pc_lin, pc_mask):
        for tag in ('ss', 'ms'):
            _touch(wd / f'results/{tag}.json', '{}')
    steps = _plan(root)
    assert not any(s.needed for s in steps.values())
    assert steps['pretrain_deit-s_transmix'].reason.startswith('not needed')

    # results deleted again: the test reruns from the existing checkpoint, training is not repeated
    (pc_mask / 'results/ms.json').unlink()
    steps = _plan(root)
    assert [n for n, s in steps.items() if s.needed] == ['test_ms_pascal-context-59_mask_deit-s_transmix']


def test_final_checkpoint_name_follows_schedule():
    cfg = step_lib.config_with_options('configs/mask_rcnn/mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py', [])
    assert lib.final_checkpoint_name(cfg) == 'epoch_12.pth'
    cfg = step_lib.config_with_options('configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py',
                                ['train_cfg.max_iters=123'])
    assert lib.final_checkpoint_name(cfg) == 'iter_123.pth'


def test_run_plan_order_failures_and_rerun(tmp_path):
    """The runner itself, with Python steps: dependency order, a failure stops its dependents only
    (--keep-going), the outputs are checked, and a rerun runs only what is missing."""
    calls = []

    def writer(name, fail=False):
        def f():
            calls.append(name)
            if fail:
                raise ValueError(f'{name} broke')
            _touch(tmp_path / f'{name}.out')
        return f

    def steps(fail_b=False):
        spec = [('a', []), ('b', [0]), ('c', [1]), ('d', [0])]
        out = [lib.Step('test', n, n, [tmp_path / f'{n}.out'], deps=d, func=writer(n, fail_b and n == 'b'))
               for n, d in spec]
        for s in out:
            s.done = all(Path(o).is_file() for o in s.outputs)
            s.needed = not s.done
        return out

    printed = []
    failed = lib.run_plan(steps(fail_b=True), tmp_path, dry_run=False, inproc=False, keep_going=True,
                          out=printed.append)
    assert calls == ['a', 'b', 'd'] and sorted(s.name for s in failed) == ['b', 'c']
    text = '\n'.join(printed)
    assert 'FAILED' in text and 'b broke' in text and 'not run' in text
    assert re.search(r'\] a  done in \d+:\d\d  \(elapsed \d+:\d\d, ETA \d+:\d\d\)', text)   # progress + ETA
    assert (tmp_path / 'logs/b.log').read_text().count('b broke') >= 1

    calls.clear()
    failed = lib.run_plan(steps(), tmp_path, dry_run=False, inproc=False, out=printed.append)
    assert calls == ['b', 'c'] and failed == []

    # a step that "succeeds" without writing its outputs is a failure
    s = lib.Step('test', 'e', 'e', [tmp_path / 'e.out'], func=lambda: None)
    assert [f.name for f in lib.run_plan([s], tmp_path, dry_run=False, inproc=False, out=printed.append)] == ['e']


def test_run_plan_subprocess_commands(tmp_path):
    """Commands run as subprocesses (2 at a time), output streamed to the step's log, exit status checked."""
    ok = tmp_path / 'ok.out'
    good = lib.Step('test', 'good', 'good', [ok], command=[
        'python', '-c', f'import os; print("hello", os.environ["X"]); open({str(ok)!r}, "w").write("1")'],
        env={'X': 'from-env'})
    bad = lib.Step('test', 'bad', 'bad', [tmp_path / 'bad.out'], command=['python', '-c', 'import sys; sys.exit(3)'])
    printed = []
    failed = lib.run_plan([good, bad], tmp_path, dry_run=False, inproc=False, jobs=2, keep_going=True,
                          out=printed.append)
    assert [s.name for s in failed] == ['bad'] and ok.is_file()
    assert 'hello from-env' in (tmp_path / 'logs/good.log').read_text()
    assert any('FAILED' in p and 'exit status 3' in p for p in printed)


def test_table_row_options_are_parsed_back_to_the_row():
    """The printed --cfg-options survive mmengine's DictAction and name exactly the table's row key."""
    from mmengine.config import Config
    steps = lib.make_plan(['C'], methods=['tokenmix'], work_root='/tmp/unused-root')
    for s in steps:
        if s.kind != 'test':
            continue
        cfg = Config.fromfile(str(ROOT / s.argv[0]), import_custom_modules=False)
        ns = type('NS', (), {})()
        opts = s.argv[s.argv.index('--cfg-options') + 1:]
        from mmengine.config import DictAction
        DictAction(option_strings=[], dest='o')(None, ns, opts)
        cfg.merge_from_dict(ns.o)
        row = dict(cfg.table_row)
        assert row['table'] == 'C'
        assert tuple(sorted((k, v) for k, v in row.items() if k != 'table')) in \
            {r.key for r in TABLES['C'].rows}
    assert re.search(r'test ms', ' '.join(s.title for s in steps))


def test_demo_schedule_is_validated(capsys):
    for item in ('seg_iters=abc', 'data_size=huge', 'det_epochs=0', 'pretrain_epochs=-1', 'nope=1', 'seg_iters='):
        with pytest.raises(SystemExit) as e:
            rp.parse_args(['A', '--demo', '--demo-schedule', item])
        assert e.value.code == 2 and f"--demo-schedule '{item}'" in capsys.readouterr().err, item
    args = rp.parse_args(['A', '--demo', '--demo-schedule', 'data_size=tiny', 'seg_iters=5'])
    assert args.demo_schedule == {'data_size': 'tiny', 'seg_iters': 5}


def test_finish_tables_warns_about_skipped_results(tmp_path):
    _touch(tmp_path / 'run/results/ss.json', '{not json')
    printed = []
    lib.finish_tables(['A'], tmp_path, write=False, out=printed.append)
    assert any(p.startswith('warning: skipped') and 'unreadable results file' in p for p in printed)
    printed.clear()
    lib.finish_tables(['A'], tmp_path / 'not-yet', write=False, out=printed.append)   # a dry run's new work root
    assert not any('warning' in p for p in printed)


def test_worker_death_is_reported_and_the_pool_restarted(tmp_path, monkeypatch):
    """A step that kills its worker process (as the OOM killer would) breaks the process pool: the steps the
    pool held fail with a clear message, the pool is rebuilt for the rest (--keep-going), no traceback."""
    import os
    import signal
    import time
    from types import SimpleNamespace

    def write(argv):   # argv: output [seconds to wait first]
        time.sleep(float(argv[1]) if argv[1:] else 0)
        _touch(argv[0])
    # tools/<script>.py stand-ins, inherited by the forked workers
    monkeypatch.setitem(execute._TOOLS, 'die', SimpleNamespace(main=lambda argv: os.kill(os.getpid(), signal.SIGKILL)))
    monkeypatch.setitem(execute._TOOLS, 'write', SimpleNamespace(main=write))

    def steps(root):
        def step(name, script, deps=(), wait=None):
            out = root / f'{name}.out'
            return lib.Step('test', name, name, [out], deps=list(deps), script=script,
                            argv=[str(out)] + ([str(wait)] if wait else []), command=['python', f'tools/{script}.py'])
        # 'beside' runs beside 'dies' (it would take a minute: it is stopped with the pool)
        return [step('dies', 'die'), step('beside', 'write', wait=60), step('after', 'write', deps=[0]),
                step('later', 'write')]

    for keep_going in (True, False):
        root = tmp_path / str(keep_going)
        printed = []
        t0 = time.perf_counter()
        failed = lib.run_plan(steps(root), root, dry_run=False, inproc=True, jobs=2, keep_going=keep_going,
                              out=printed.append)
        assert time.perf_counter() - t0 < 50
        text = '\n'.join(printed)
        assert 'Traceback' not in text and 'BrokenProcessPool' not in text
        for name in ('dies', 'beside'):
            assert re.search(rf'{name}  FAILED after .*: worker process died', text), text
        if keep_going:   # the independent step runs in a fresh pool
            assert re.search(r'after  not run', text)
            assert sorted(s.name for s in failed) == ['after', 'beside', 'dies']
            assert (root / 'later.out').is_file() and re.search(r'later  done in', text)
        else:            # stops cleanly: what was left is reported as not run
            assert sorted(s.name for s in failed) == ['after', 'beside', 'dies', 'later']
            assert not (root / 'later.out').exists()


def test_changed_options_rerun_a_step_from_scratch(tmp_path, monkeypatch):
    """Each step stamps its work dir with its arguments; another --demo-schedule (here seg_iters) makes the
    affected steps start over (no --resume from the old schedule's checkpoints, which are set aside) while the
    rest stays done; work dirs without stamps (older runs) count as done."""
    import json
    from mixcore.demo_data import DATASET_DIRS, MARKER
    root, data = tmp_path / 'w', tmp_path / 'd'
    for d in ('imagenet', 'pascal_context'):
        _touch(data / DATASET_DIRS[d] / MARKER)

    def plan(**sched):
        return lib.make_plan(['A'], methods=['transmix'], demo=True, launcher='none', work_root=root,
                             data_root=data, demo_schedule=sched)

    ran = []

    def fake_run(script, argv, func, log, shell):   # what tools/train.py / test.py leave in the work dir
        wd = ROOT / argv[argv.index('--work-dir') + 1]
        ran.append((script, wd.name if script == 'test' else wd.parent.name, '--resume' in argv,
                    (wd / 'last_checkpoint').exists()))
        if script == 'test':
            _touch(wd / 'results' / ('ms.json' if '--tta' in argv else 'ss.json'), '{}')
        elif 'pretrain' in argv[0]:
            _touch(wd / 'backbone.safetensors')
        else:
            opts = dict(o.split('=', 1) for o in argv[argv.index('--cfg-options') + 1:])
            final = _touch(wd / f'iter_{opts["train_cfg.max_iters"]}.pth')
            _touch(wd / 'iter_2.pth')
            _touch(wd / 'last_checkpoint', str(final))
    monkeypatch.setattr(runner, 'run_inprocess', fake_run)

    def run(steps):
        ran.clear()
        assert lib.run_plan(steps, root, dry_run=False, inproc=True, out=lambda s: None) == []
        return ran

    steps = plan(seg_iters=4)
    for s in steps:   # the data roots through --data-root (mixcore.runtime.override_data_root), not by hand
        if s.script:
            assert '--data-root' in s.argv and not any('data_root=' in a or 'ann_file=' in a for a in s.argv)
    assert len(run(steps)) == 7   # pretraining, 2 trainings, 4 tests
    mask = root / 'pascal-context-59_mask/vit-nano_transmix'
    train = next(s for s in steps if s.name == 'train_pascal-context-59_mask_vit-nano_transmix')
    assert json.loads((mask / 'train.argv.json').read_text()) == train.key
    assert not any(s.needed for s in plan(seg_iters=4))

    # a shorter schedule: the old run's last_checkpoint (iter_4) must not be resumed; the pretraining stays
    steps = {s.name: s for s in plan(seg_iters=3)}
    assert sorted(n for n, s in steps.items() if s.needed) == \
        sorted(n for n in steps if n.startswith(('train', 'test')))
    train = steps['train_pascal-context-59_mask_vit-nano_transmix']
    assert train.stale and not train.resume and '--resume' not in train.argv and train.reason == lib.STALE
    assert all(s.stale for n, s in steps.items() if n.startswith('test'))
    assert sorted(run(list(steps.values()))) == sorted(
        [('train', 'pascal-context-59_linear', False, False), ('train', 'pascal-context-59_mask', False, False)]
        + [('test', 'vit-nano_transmix', False, True)] * 4)
    assert sorted(p.name for p in (mask / 'stale').iterdir()) == ['iter_2.pth', 'iter_4.pth', 'last_checkpoint']
    assert (mask / 'iter_3.pth').is_file() and not (mask / 'iter_4.pth').exists()
    assert not any(s.needed for s in plan(seg_iters=3))

    # another pretraining schedule: the pretraining and everything after it start over
    steps = plan(seg_iters=3, pretrain_epochs=2)
    assert all(s.needed and s.stale for s in steps if s.kind != 'data')

    # work dirs from before the stamps: reused as they are
    for p in root.rglob('*.argv.json'):
        p.unlink()
    assert not any(s.needed for s in plan(seg_iters=3, pretrain_epochs=2))


def _package_imports(folder: Path, package: str) -> dict:
    """module -> the modules of ``package`` it imports (relative or absolute, at any depth of the file)."""
    import ast
    found = {}
    for path in sorted(folder.glob('*.py')):
        mod = path.stem
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    names.add(node.module.split('.')[0])
                elif node.level == 1:
                    names.update(a.name for a in node.names)
                elif node.level == 0 and (node.module or '').startswith(package + '.'):
                    names.add(node.module[len(package) + 1:].split('.')[0])
        found[mod] = names - {mod}
    return found


def test_reproduce_modules_import_one_way():
    """The local runner and the Slurm submit mode are siblings (neither imports the other, nor the table run
    above them); no module of mixseg.reproduce closes an import circle."""
    deps = _package_imports(ROOT / 'mixseg/reproduce', 'mixseg.reproduce')
    assert deps['runner'] & {'slurm', 'table_run'} == set() and deps['slurm'] & {'runner', 'table_run'} == set()
    assert {'runner', 'slurm', 'plan'} <= deps['table_run']

    _no_circle(deps)


def test_tables_modules_import_one_way():
    """mixseg.tables: the published tables and the paper setups stand on nothing else of the package; results
    on them, rendering on results, plots on rendering; no circle."""
    deps = _package_imports(ROOT / 'mixseg/tables', 'mixseg.tables')
    assert deps['published'] == deps['setups'] == deps['rows'] == set() and deps['__init__'] == set()
    assert 'plots' not in deps['render'] and not deps['results'] & {'render', 'plots'}
    _no_circle(deps)


def _no_circle(deps: dict) -> None:
    def reach(mod, seen=()):
        for d in deps.get(mod, ()):
            assert d not in seen + (mod,), f'import circle: {" -> ".join(seen + (mod, d))}'
            reach(d, seen + (mod,))
    for mod in deps:
        if mod != '__init__':
            reach(mod)

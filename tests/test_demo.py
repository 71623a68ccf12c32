"""tools/demo.py (`make demo`) = tools/reproduce.py A B C --demo: its plan covers every cell of the three tables
with shared pretrainings, its dry run works, and (slow) a miniature run goes end to end and is reused on a rerun.
The full demo is run by `make demo`, not here."""
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mixcore.runtime import write_results
from mixseg.tables.published import TABLES
from mixseg.tables.render import build_table, missing_cells
from mixseg.tables.results import collect

ROOT = Path(__file__).resolve().parents[1]

from test_reproduce import lib, rp  # noqa: E402  (mixseg.reproduce; tools/reproduce.py, loaded once)

FAKE_METRICS = {'aAcc': 70.0, 'mIoU': 30.0, 'mAcc': 40.0,
                **{f'coco/{t}_mAP{s}': 0.2 for t in ('bbox', 'segm') for s in ('', '_50', '_75')}}


def _demo_plan(tmp_path):
    return lib.make_plan(['A', 'B', 'C'], demo=True, launcher='none', work_root=tmp_path / 'work',
                        data_root=tmp_path / 'data')


def test_demo_plan_fills_every_cell(tmp_path):
    """Pretend every test step wrote its results (with the table_row its options set), run the share steps:
    every non-reference cell of A, B and C then holds a number."""
    from mmengine.config import Config, DictAction
    steps = _demo_plan(tmp_path)
    kinds = [s.kind for s in steps]
    # one data step, one pretraining per (demo model, method): ViT × 4 methods, PVT × 3
    assert kinds.count('data') == 1
    pre = sorted(Path(s.argv[0]).name for s in steps if s.kind == 'pretrain')
    assert pre == sorted([f'pretrain_vit-nano_{m}_demo.py' for m in ('baseline', 'transmix', 'mixpro', 'tokenmix')]
                         + [f'pretrain_pvt-nano_{m}_demo.py' for m in ('baseline', 'transmix', 'mixpro')])
    # transfers: A 6 (Pascal Context linear + mask × 3), B 3 (Mask R-CNN), C 2 (ADE20K mask × 2, shared by T/S/B)
    assert kinds.count('train') == 11
    # TokenMix's label maps, made once with the demo baseline ViT as teacher before its pretraining
    assert kinds.count('maps') == 1
    for s in steps:
        if s.script:
            assert s.command[:2] == ['python', f'tools/{s.script}.py']
        if s.script in ('train', 'test'):
            assert (ROOT / s.argv[0]).is_file() and s.argv[0].startswith('configs/demo/'), s.argv[0]
    for s in steps:
        if s.kind == 'test':
            opts = s.argv[s.argv.index('--cfg-options') + 1:]
            ns = type('NS', (), {})()
            DictAction(option_strings=[], dest='o')(None, ns, opts)
            cfg = Config.fromfile(str(ROOT / s.argv[0]), import_custom_modules=False)
            cfg.merge_from_dict(ns.o)
            wd = s.argv[s.argv.index('--work-dir') + 1]
            assert Path(ROOT / wd).resolve() == s.outputs[0].parent.parent
            write_results(str(s.outputs[0].parent.parent), 'ms' if '--tta' in s.argv else 'ss', config=s.argv[0],
                          checkpoint=s.argv[1], tta='--tta' in s.argv, metrics=FAKE_METRICS,
                          table_row=dict(cfg.table_row))
    col = collect([tmp_path / 'work'])
    assert any(missing_cells(TABLES[t], col) for t in 'ABC')   # the shared rows of C are still empty
    for s in steps:
        if s.kind == 'share':
            s.func()
    col = collect([tmp_path / 'work'])
    for t in 'ABC':
        assert missing_cells(TABLES[t], col) == [], t
    # every multi-scale test runs with --tta, table B has none
    assert all(('--tta' in s.argv) == s.name.startswith('test_ms') for s in steps if s.kind == 'test')
    assert not any(s.name.startswith('test_ms_coco') for s in steps)


def test_demo_dry_run(tmp_path):
    r = subprocess.run([sys.executable, 'tools/demo.py', '--dry-run', '--work-root', str(tmp_path / 'w'),
                        '--data-root', str(tmp_path / 'd')], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    cmds = [shlex.split(line.split('$ ', 1)[1]) for line in out.splitlines() if line.lstrip().startswith('$ ')]
    assert cmds[0][:2] == ['python', 'tools/make_demo_data.py']
    assert sum(c[1] == 'tools/train.py' for c in cmds) == 7 + 11
    assert sum(c[1] == 'tools/test.py' for c in cmds) == 12 + 3 + 4
    assert out.count('(table_row of this row)') == 8    # C: DeiT-S and DeiT-B rows × 2 methods × ss/ms
    for t in 'ABC':
        assert f'### Table {t}' in out
    assert 'toy-scale demo: tiny models, generated data' in out
    assert not (tmp_path / 'w').exists() and not (tmp_path / 'd').exists()   # a dry run writes nothing


def test_demo_help_lists_the_options_it_forwards():
    """tools/demo.py passes every option but --tables on to tools/reproduce.py --demo; its help still names them."""
    r = subprocess.run([sys.executable, 'tools/demo.py', '--help'], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    for opt in ('--tables', '--work-root', '--data-root', '--dry-run', '--jobs', '--threads', '--keep-going',
                '--demo-schedule'):
        assert opt in r.stdout, opt


@pytest.mark.slow
def test_mini_demo_end_to_end_and_rerun(tmp_path):
    """Table B's baseline row on tiny data with a one-epoch schedule, in the worker pool: data → pretraining
    → Mask R-CNN → test → the table cell; the rerun finds everything done."""
    argv = ['B', '--demo', '--methods', 'baseline', '--work-root', str(tmp_path / 'w'), '--data-root',
            str(tmp_path / 'd'), '--jobs', '2', '--demo-schedule', 'data_size=tiny', 'pretrain_epochs=1',
            'det_epochs=1']
    printed = []
    assert rp.main(argv, out=lambda s: printed.extend(str(s).splitlines())) == 1   # other B rows not run
    text = '\n'.join(printed)
    assert text.count('  done in') == 4 and 'FAILED' not in text
    col = collect([tmp_path / 'w'])
    assert len(missing_cells(TABLES['B'], col)) == 12      # TransMix and MixPro rows: 2 × 6 cells
    cells, = [c for r, c in build_table(TABLES['B'], col) if r.label == ('PVT-S',)]
    assert all(c.ours is not None and 0 <= c.ours <= 100 for c in cells)
    assert (tmp_path / 'w/tables.md').is_file() and (tmp_path / 'w/tables.png').is_file()
    assert (tmp_path / 'w/logs/pretrain_pvt-nano_baseline.log').stat().st_size > 0
    printed.clear()
    rp.main(argv, out=lambda s: printed.extend(str(s).splitlines()))
    assert printed[0].startswith('4 steps, 0 to run')

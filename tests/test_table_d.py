"""Table D (ImageNet-1k top-1 of stage 1): the papers' rows, `reproduce.py D --dry-run` naming every row's
pretraining (or why it cannot run), the top-1 taken from the backbone files, and the demo filling the table."""
import re
from pathlib import Path

import pytest
import torch

import mixseg.reproduce as lib
from mixseg.tables.published import TABLE_D, TABLES
from mixseg.tables.render import missing_cells
from mixseg.tables.results import collect, write_top1_result
from test_reproduce import dry_run

ROOT = Path(__file__).resolve().parents[1]


def published(model, method):
    return next(r.published[0] for r in TABLE_D.rows if dict(r.key) == dict(model=model, method=method))


def test_table_d_holds_every_seed_row():
    """The MixPro table (14 models × baseline/TransMix/MixPro) and the TokenMix table (6 CutMix → TokenMix
    pairs; its CutMix baselines are the models' recipes = our baseline, shared with MixPro's where the model is)."""
    assert TABLES['D'] is TABLE_D
    keys = [dict(r.key) for r in TABLE_D.rows]
    assert len(keys) == len({tuple(sorted(k.items())) for k in keys}) == 14 * 3 + 6 + 2
    assert {k['model'] for k in keys if k['method'] == 'mixpro'} == {
        'deit-t', 'deit-s', 'deit-b', 'pvt-t', 'pvt-s', 'pvt-m', 'pvt-l', 'xcit-t24', 'xcit-s12', 'xcit-m24',
        'xcit-l24', 'cait-xxs36', 'ca-swin-t', 'ca-swin-s'}
    assert {k['model'] for k in keys if k['method'] == 'tokenmix'} == {
        'deit-t', 'pvt-t', 'cait-xxs24', 'deit-s', 'swin-t', 'deit-b'}
    assert not [k for k in keys if k['model'] == 'swin-t' and k['method'] in ('transmix', 'mixpro')]
    # spot checks against docs/paper_facts.md#table-d
    assert published('deit-t', 'baseline') == 72.2 and published('deit-t', 'tokenmix') == 73.2
    assert published('xcit-l24', 'mixpro') == 84.7 and published('ca-swin-s', 'transmix') == 83.2
    assert published('cait-xxs24', 'baseline') == 77.6 and published('cait-xxs36', 'baseline') == 79.1
    assert published('swin-t', 'tokenmix') == 81.6 and published('pvt-l', 'transmix') == 82.4
    row = next(r for r in TABLE_D.rows if dict(r.key) == dict(model='deit-s', method='baseline'))
    assert row.label == ('DeiT-S', 'baseline', 'MixPro, TokenMix')


def test_dry_run_lists_every_seed_rows_pretraining(tmp_path):
    lines, cmds = dry_run('D', '--work-root', str(tmp_path))
    text = '\n'.join(lines)
    pre = {c[2] for c in cmds if c[:2] == ['bash', 'tools/dist_train.sh']}
    for r in TABLE_D.rows:
        k = dict(r.key)
        ran = [c for c in pre if Path(c).name.startswith(f'{k["model"]}_{k["method"]}_')]
        missing = re.search(rf'! not run: missing config: no configs/pretrain/{k["model"]}_{k["method"]}_\*', text)
        assert len(ran) == 1 or missing, (k, 'neither a pretraining command nor a missing config')
        exists = list((ROOT / 'configs/pretrain').glob(f'{k["model"]}_{k["method"]}_*xb*-*e_in1k.py'))
        assert bool(ran) == bool(exists), k   # a config that exists is run, one that does not is reported
        # every row gets its top-1 step
        assert f'top-1 D: {" / ".join(r.label)}' in text
    # the configs that exist are run with the paper's GPUs; DeiT/PVT have all of theirs
    assert len(pre) >= 7 * 4 - 3 and '(8 GPUs × 128 = 1024)' in text
    assert all(Path(c).name.startswith(('deit', 'pvt', 'cait', 'xcit', 'swin')) for c in pre)
    # CA-Swin says why it has no config; the missing ones are counted up front
    assert re.search(r'ca-swin-t_baseline.*CA-Swin, Swin with class-attention layers, is not implemented', text)
    assert not any('transmix' in c and 'swin' in c for c in pre)
    assert any(line.startswith('### Table D') for line in lines)


def _backbone(path, top1, method='baseline'):
    from mixcore.weights.backbone_file import save_backbone_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_backbone_file(path, {'w': torch.zeros(2)}, arch='vit_nano', img_size=32, patch_size=8,
                              method=method, epochs=2, top1=top1)


def test_top1_result_from_backbone_metadata(tmp_path):
    b = _backbone(tmp_path / 'b.safetensors', 61.25)
    out = write_top1_result(b, tmp_path / 'run/results/ss.json', dict(table='D', model='deit-t', method='baseline'))
    col = collect([tmp_path])
    r = col.results[('D', (('method', 'baseline'), ('model', 'deit-t')), 'ss')]
    assert r.path == out and r.metrics == {'accuracy/top1': 61.25}
    nothing = _backbone(tmp_path / 'none.safetensors', None)
    with pytest.raises(ValueError, match=r'none\.safetensors: no top-1'):
        write_top1_result(nothing, tmp_path / 'x/results/ss.json', dict(table='D', model='deit-t', method='baseline'))
    assert not (tmp_path / 'x').exists()


def test_demo_fills_table_d_from_the_demo_pretrainings(tmp_path):
    """Every row of D on the demo models: the ViT family (DeiT, CaiT, XCiT) shows the demo ViT's top-1, the
    pyramids (PVT, Swin, CA-Swin) the demo PVT's; once the pretrainings exist only the top-1 steps run."""
    from mixcore.demo_data import DATASET_DIRS, MARKER
    root, data = tmp_path / 'w', tmp_path / 'd'
    (data / DATASET_DIRS['imagenet']).mkdir(parents=True)
    (data / DATASET_DIRS['imagenet'] / MARKER).write_text('x')
    top1 = {}
    for i, (model, method) in enumerate((m, meth) for m in ('vit-nano', 'pvt-nano')
                                        for meth in ('baseline', 'transmix', 'mixpro', 'tokenmix')):
        top1[(model, method)] = 10.0 + i
        _backbone(root / 'pretrain' / f'{model}_{method}' / 'backbone.safetensors', 10.0 + i, method)
    steps = lib.make_plan(['D'], demo=True, launcher='none', work_root=root, data_root=data)
    assert {s.kind for s in steps if s.needed} == {'top1'} and len([s for s in steps if s.needed]) == 50
    printed = []
    assert lib.run_plan(steps, root, dry_run=False, inproc=True, out=printed.append) == []
    col, missing = lib.finish_tables(['D'], root, 'demo', out=printed.append)
    assert missing == {'D': []}
    cells = {dict(r.key)['model'] + '_' + dict(r.key)['method']:
             col.results[('D', r.key, 'ss')].metrics['accuracy/top1'] for r in TABLE_D.rows}
    assert cells['xcit-l24_mixpro'] == cells['deit-t_mixpro'] == top1[('vit-nano', 'mixpro')]
    assert cells['swin-t_tokenmix'] == cells['pvt-t_tokenmix'] == top1[('pvt-nano', 'tokenmix')]
    assert cells['ca-swin-s_transmix'] == top1[('pvt-nano', 'transmix')]
    assert '| XCiT-L24 | MixPro | MixPro | 84.7 / 12.0? / -72.7 |' in '\n'.join(printed)
    assert (root / 'tables.md').is_file()
    # a rerun has nothing left to do
    again = lib.make_plan(['D'], demo=True, launcher='none', work_root=root, data_root=data)
    assert not any(s.needed for s in again)
    assert missing_cells(TABLE_D, collect([root])) == []


def test_given_backbone_fills_its_row(tmp_path):
    b = _backbone(tmp_path / 'mine.safetensors', 70.5)
    steps = lib.make_plan(['D'], methods=['transmix'], work_root=tmp_path / 'w',
                          backbones={'deit-t_transmix': b})
    mine = next(s for s in steps if s.name == 'top1_deit-t_transmix')
    assert mine.deps == [] and not mine.reason and 'pretrain_deit-t_transmix' not in {s.name for s in steps}
    assert lib.run_plan([mine], tmp_path / 'w', dry_run=False, inproc=False, out=lambda s: None) == []
    col = collect([tmp_path / 'w'])
    assert col.results[('D', (('method', 'transmix'), ('model', 'deit-t')), 'ss')].metrics['accuracy/top1'] == 70.5
    gone = lib.make_plan(['D'], methods=['transmix'], work_root=tmp_path / 'v',
                         backbones={'deit-s_transmix': tmp_path / 'nope.safetensors'})
    assert next(s for s in gone if s.name == 'top1_deit-s_transmix').reason.startswith('missing backbone file')


def test_a_step_without_config_does_not_stop_the_others(tmp_path):
    """A pretraining that cannot run (no config) is reported and its row not run; the other rows still run
    without --keep-going (only a step that ran and failed stops the run)."""
    ran = []

    def write(name):
        def f():
            ran.append(name)
            (tmp_path / f'{name}.out').write_text('x')
        return f
    steps = [lib.Step('pretrain', 'nocfg', 'nocfg', [tmp_path / 'nocfg.out'], blocked='missing config: no x'),
             lib.Step('top1', 'row1', 'row1', [tmp_path / 'row1.out'], deps=[0], func=write('row1')),
             lib.Step('pretrain', 'ok', 'ok', [tmp_path / 'ok.out'], func=write('ok')),
             lib.Step('top1', 'row2', 'row2', [tmp_path / 'row2.out'], deps=[2], func=write('row2'))]
    steps[0].reason = steps[0].blocked
    printed = []
    failed = lib.run_plan(steps, tmp_path, dry_run=False, inproc=False, out=printed.append)
    assert ran == ['ok', 'row2'] and sorted(s.name for s in failed) == ['nocfg', 'row1']
    assert any('nocfg  not run: missing config' in p for p in printed)

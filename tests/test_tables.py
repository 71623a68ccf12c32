"""Published numbers and collecting results from work dirs (complete, partial, missing, broken runs)."""
import json
import subprocess
import sys

import pytest

from mixcore.runtime import write_results
from mixseg.tables.published import TABLE_A, TABLE_B, TABLE_C, TABLES
from mixseg.tables.render import build_table, missing_cells, render, render_tables
from mixseg.tables.results import collect
from mixseg.tables.setups import paper_setup


def test_published_numbers_match_papers():
    a = {r.label: r.published for r in TABLE_A.rows}
    assert a[('DeiT-S + MixPro', 'Segmenter')] == (51.1, 51.6)
    assert a[('DeiT-S', 'Linear')] == (49.1, 49.6)
    assert a[('ResNet-101', 'DeepLabv3+')] == (47.3, 48.5)
    assert len(TABLE_A.rows) == 7
    b = {r.label: r.published for r in TABLE_B.rows}
    assert b[('TransMix-PVT-S',)] == (40.9, 63.8, 44.0, 38.4, 60.7, 41.3)
    c = {r.label: r.published for r in TABLE_C.rows}
    assert c[('DeiT-S', '✓')] == (44.5, 55.0, 45.9, 56.1)
    assert c[('DeiT-B', '✗')] == (46.3, 56.5, 47.7, 57.6)
    for t in TABLES.values():
        assert all(len(r.published) == len(t.columns) for r in t.rows)


def paper_like(table, key=(), **change):
    """A ``setup`` record (mixcore.provenance.result_setup) with the paper's data and schedule of ``table``."""
    exp = paper_setup(table, key)
    train = dict(data_root='/data', train_images=exp.train_images, val_images=exp.val_images,
                 max_iters=exp.max_iters, max_epochs=exp.max_epochs, batch_size=exp.total_batch // 8, gpus=8,
                 total_batch=exp.total_batch, demo=None, recorded='training run')
    train.update(change)
    return dict(train=train, test=dict(data_root='/data', images=exp.val_images, demo=None))


def _run(root, name, tag, row, metrics, setup='paper'):
    if setup == 'paper':
        setup = paper_like(row['table'], tuple(sorted((k, v) for k, v in row.items() if k != 'table')))
    write_results(str(root / name), tag, config=f'{name}.py', checkpoint='x.pth', tta=tag == 'ms',
                  metrics=metrics, table_row=row, setup=setup)


def test_collect_complete_partial_missing(tmp_path):
    row = dict(table='A', model='deit-s', method='transmix', decoder='mask')
    _run(tmp_path, 'a_tm_mask', 'ss', row, {'aAcc': 80.0, 'mIoU': 40.0, 'mAcc': 50.0})
    _run(tmp_path, 'a_tm_mask', 'ms', row, {'mIoU': 41.0})
    # partial: single-scale only
    _run(tmp_path, 'a_base_lin', 'ss', dict(table='A', model='deit-s', method='baseline', decoder='linear'),
         {'mIoU': 30.0})
    # detection metrics carry mmdet's 'coco/' prefix and are in [0, 1]
    _run(tmp_path, 'b_mixpro', 'ss', dict(table='B', model='pvt-s', method='mixpro'),
         {'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5, 'coco/segm_mAP': 0.2})
    # broken files are reported, not fatal
    (tmp_path / 'broken/results').mkdir(parents=True)
    (tmp_path / 'broken/results/ss.json').write_text('{not json')
    (tmp_path / 'norow/results').mkdir(parents=True)
    (tmp_path / 'norow/results/ss.json').write_text(json.dumps({'metrics': {'mIoU': 1}}))

    col = collect([tmp_path, tmp_path / 'does-not-exist'])
    skipped = {str(p) for p, _ in col.skipped}
    assert any('broken' in s for s in skipped) and any('norow' in s for s in skipped)
    assert any('does-not-exist' in s for s in skipped)

    a = {row.label: cells for row, cells in build_table(TABLE_A, col)}
    tm = a[('DeiT-S + TransMix', 'Segmenter')]
    assert tm[0].ours == 40.0 and tm[0].diff == pytest.approx(40.0 - 50.6)
    assert tm[1].ours == 41.0
    base = a[('DeiT-S', 'Linear')]
    assert base[0].ours == 30.0 and base[1].ours is None   # partial run: +MS missing
    assert a[('DeiT-S + MixPro', 'Linear')][0].ours is None  # not run
    missing = missing_cells(TABLE_A, col)
    assert (('DeiT-S', 'Linear'), '+MS') in missing and len(missing) == 12 - 3

    b = {row.label: cells for row, cells in build_table(TABLE_B, col)}
    assert b[('MixPro-PVT-S',)][0].ours == pytest.approx(25.0)
    assert b[('MixPro-PVT-S',)][3].ours == pytest.approx(20.0)
    assert b[('MixPro-PVT-S',)][5].ours is None

    md = render(TABLE_A, col)
    assert '50.6 / 40.0 / -10.6' in md
    assert 'not run' in md and '(ref.)' in md
    js = json.loads(render(TABLE_C, col, 'json'))
    assert js['table'] == 'C' and all(c['ours'] is None for r in js['rows'] for c in r['cells'].values())
    csv = render(TABLE_B, col, 'csv').splitlines()
    assert csv[0].startswith('backbone,AP^b') and len(csv) == 1 + 4 * len(TABLE_B.rows)
    assert 'MixPro-PVT-S,paper,paper,paper,paper,paper,paper,setup' in csv


def test_tables_cli(tmp_path, repo_root):
    _run(tmp_path, 'c_tokenmix', 'ss', dict(table='C', model='deit-t', method='tokenmix'),
         {'mIoU': 12.5, 'mAcc': 20.0})
    out = tmp_path / 'tables.md'
    r = subprocess.run([sys.executable, str(repo_root / 'tools/tables.py'), str(tmp_path), '--tables', 'C',
                        '--plot', str(tmp_path / 'p.png'), '--out', str(out), '--note', 'toy'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '37.1 / 12.5 / -24.6' in r.stdout
    assert out.read_text().strip() == r.stdout.strip()
    assert (tmp_path / 'p.png').stat().st_size > 1000


def test_render_tables_reports_skipped_files(tmp_path, capsys):
    """The one path of tools/tables.py and tools/reproduce.py: every skipped file is reported."""
    _run(tmp_path, 'b_base', 'ss', dict(table='B', model='pvt-s', method='baseline'), {'coco/bbox_mAP': 0.3})
    (tmp_path / 'broken/results').mkdir(parents=True)
    (tmp_path / 'broken/results/ss.json').write_text('{not json')
    warned = []
    col, text = render_tables([tmp_path], ['A', 'B'], warn=warned.append)
    assert len(warned) == 1 and warned[0].startswith('warning: skipped') and 'broken' in warned[0]
    assert text == render(TABLE_A, col) + '\n\n' + render(TABLE_B, col)
    _, text = render_tables([tmp_path / 'none'], ['C'], 'json')   # default: warnings on stderr
    assert json.loads(text)[0]['table'] == 'C' and 'warning: skipped' in capsys.readouterr().err

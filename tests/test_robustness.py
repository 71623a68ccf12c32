"""Robustness benchmarks of stage-1 classifiers (pretrain/robustness, tools/robustness.py): the metrics on
hand-built inputs, the wnid mapping, the refusals, and the evaluations on a stand-in model."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pretrain.robustness import (aupr, auroc, class_indices, folder_classes, imagenet_wnids, model_classes,
                                 msp_anomaly_score, restricted_top1, shuffle_patches, shuffle_perms)

TIMM_INFO = Path(__import__('timm').__file__).parent / 'data' / '_info'


# ---------------------------------------------------------------------------------------------- metrics
def test_aupr_by_hand():
    # ranked: + - + -  -> precision at the two positives: 1/1 and 2/3; AP = 0.5·1 + 0.5·2/3
    assert aupr([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 1 / 3)
    # ranked: - + + : precision 1/2 and 2/3 at recall 0.5 and 1
    assert aupr([3., 2., 1.], [0, 1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # a tie between a positive and a negative is one threshold: precision 1/2 at recall 1
    assert aupr([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    # perfect separation, any order of the input
    assert aupr([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1]) == pytest.approx(1.0)


def test_auroc_by_hand():
    # pairs (pos, neg): (0.9, 0.8) (0.9, 0.6) (0.7, 0.6) won, (0.7, 0.8) lost -> 3/4
    assert auroc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)               # a tie counts one half
    assert auroc([1., 2., 3.], [1, 0, 0]) == pytest.approx(0.0)
    # ties across groups: pos {2, 2}, neg {1, 2}: pairs (2,1) (2,1) won, (2,2) (2,2) half -> 3/4
    assert auroc([2., 2., 1., 2.], [1, 1, 0, 0]) == pytest.approx(0.75)


def test_metrics_refuse_one_class_and_nan():
    with pytest.raises(ValueError, match='both positives and negatives'):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match='non-finite'):
        aupr([float('nan'), 0.2], [1, 0])


def test_msp_and_restricted_top1_by_hand():
    logits = torch.tensor([[0., 5., 1., 2.],     # global argmax 1; among classes (0, 2, 3): 3 -> position 2
                           [3., 0., 4., 1.]])    # among (0, 2, 3): 2 -> position 1
    hits = restricted_top1(logits, torch.tensor([2, 0]), [0, 2, 3])
    assert hits.tolist() == [True, False]
    assert msp_anomaly_score(torch.tensor([[0., 0.], [0., 100.]])).tolist() == pytest.approx([-0.5, -1.0])


# ---------------------------------------------------------------------------------------------- shuffling
def test_shuffle_is_a_permutation_of_cells():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    perms = shuffle_perms([0, 1], 4, seed=0)
    y = shuffle_patches(x, 4, perms)

    def cells(t):
        return t.reshape(2, 3, 4, 2, 4, 2).permute(0, 2, 4, 1, 3, 5).reshape(2, 16, -1)
    cx, cy = cells(x), cells(y)
    for b in range(2):
        assert sorted(perms[b].tolist()) == list(range(16))
        for j in range(16):                                       # target cell j holds source cell perms[b, j]
            assert torch.equal(cy[b, j], cx[b, perms[b, j]])
    assert not torch.equal(y, x)
    assert torch.equal(shuffle_patches(x, 1, shuffle_perms([0, 1], 1, 0)), x)
    assert torch.equal(shuffle_perms([5], 4, 3), shuffle_perms([5], 4, 3))       # fixed by (seed, g, index)
    assert not torch.equal(shuffle_perms([5], 4, 3), shuffle_perms([6], 4, 3))


def test_shuffle_keeps_border_when_side_is_no_multiple():
    x = torch.rand(1, 1, 7, 7)
    y = shuffle_patches(x, 2, torch.tensor([[3, 2, 1, 0]]))
    assert torch.equal(y[..., 6, :], x[..., 6, :]) and torch.equal(y[..., :, 6], x[..., :, 6])
    assert torch.equal(y[..., :3, :3], x[..., 3:6, 3:6])


# ---------------------------------------------------------------------------------------------- classes
def test_wnid_list_is_timms_imagenet_order():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[0] == 'n01440764' and list(wnids) == sorted(wnids)
    assert list(wnids) == (TIMM_INFO / 'imagenet_synsets.txt').read_text().split()


@pytest.mark.parametrize('subset', ['imagenet_a', 'imagenet_r'])
def test_wnid_mapping_on_fake_200_class_folder(tmp_path, subset):
    wnids = (TIMM_INFO / f'{subset}_synsets.txt').read_text().split()
    for w in reversed(wnids):
        (tmp_path / w).mkdir()
    names = folder_classes(tmp_path)
    assert len(names) == 200
    expected = [int(i) for i in (TIMM_INFO / f'{subset}_indices.txt').read_text().split()]
    assert class_indices(tmp_path, names, imagenet_wnids()) == expected


def test_folder_of_other_classes_is_refused(tmp_path):
    for w in ('n01440764', 'circle', 'n99999999'):
        (tmp_path / w).mkdir()
    with pytest.raises(ValueError, match=rf'{tmp_path}.*2 of its 3 class folders are not ImageNet-1k'):
        class_indices(tmp_path, folder_classes(tmp_path), imagenet_wnids())
    with pytest.raises(FileNotFoundError, match='no class sub-folders'):
        folder_classes(tmp_path / 'n01440764')


class _Fixed(torch.nn.Module):
    """Logits that ignore the image: the same vector for every input."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer('logits', torch.as_tensor(logits, dtype=torch.float32))
        self.num_classes = len(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def _loaded(logits, classes=None, source='fake.pth'):
    from pretrain.viz.models import LoadedModel
    meta = {'dataset_meta': {'classes': list(classes)}} if classes is not None else {}
    return LoadedModel(_Fixed(logits).eval(), source, 'vit_tiny_patch16_224', (32, 32), has_head=True,
                       kind='training checkpoint', meta=meta, method='baseline')


def test_model_of_other_classes_is_refused():
    with pytest.raises(ValueError, match=r'fake\.pth: the model has 10 classes, not ImageNet-1k'):
        model_classes(_loaded(torch.zeros(10), classes=[f'c{i}' for i in range(10)]))
    shuffled = list(imagenet_wnids())[::-1]
    with pytest.raises(ValueError, match='another order'):
        model_classes(_loaded(torch.zeros(1000), classes=shuffled))
    assert model_classes(_loaded(torch.zeros(1000))) == imagenet_wnids()
    assert model_classes(_loaded(torch.zeros(3), classes='abc'), any_classes=True) == ('a', 'b', 'c')
    with pytest.raises(ValueError, match='records no class names'):
        model_classes(_loaded(torch.zeros(3)), any_classes=True)


# ---------------------------------------------------------------------------------------------- evaluations
def _folder(root: Path, counts: dict, size=32) -> Path:
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / name / f'{i}.png')
    return root


def test_subset_top1_restricts_logits(tmp_path):
    from pretrain.robustness.evaluate import subset_top1
    wnids = imagenet_wnids()
    a = _folder(tmp_path / 'a', {wnids[5]: 3, wnids[7]: 1})
    logits = torch.zeros(1000)
    logits[0], logits[5], logits[7] = 10., 2., 1.    # class 0 wins overall, class 5 within the folder's classes
    rec = subset_top1(_loaded(logits), a, benchmark='imagenet-a', progress=False)
    assert rec['images'] == 4 and rec['num_classes'] == 2
    assert rec['top1'] == pytest.approx(75.0)


def test_ood_detection_and_shuffle_on_stand_in_model(tmp_path):
    from pretrain.robustness.evaluate import ood_detection, shuffling
    o = _folder(tmp_path / 'o', {'b': 2})
    val = _folder(tmp_path / 'val', {'a': 2, 'b': 1})
    rec = ood_detection(_loaded([1., 0., 0.], classes='abc'), o, val, any_classes=True, progress=False)
    # the same score for every image: one tie -> AUROC 1/2, AUPR = share of positives (2 of 5)
    assert rec['auroc'] == pytest.approx(50.) and rec['aupr'] == pytest.approx(40.)
    assert (rec['images'], rec['val_images']) == (2, 3)
    sh = shuffling(_loaded([1., 0., 0.], classes='abc'), val, grids=(1, 2, 4), any_classes=True, progress=False)
    assert [r['grid'] for r in sh['results']] == [1, 2, 4]
    assert all(r['top1'] == pytest.approx(200 / 3) for r in sh['results'])   # always 'a': 2 of 3 right
    with pytest.raises(ValueError, match='not ImageNet-1k'):
        ood_detection(_loaded(torch.zeros(1000)), o, val, progress=False)


def test_occlusion_reuses_the_viz_definition_with_mapped_targets(tmp_path):
    from pretrain.robustness.evaluate import occlusion
    val = _folder(tmp_path / 'val', {'b': 2, 'c': 1})           # folder positions 0, 1 are outputs 1, 2
    rec = occlusion(_loaded([0., 0., 1.], classes='abc'), val, ratios=(0.0, 0.5), patch=8, any_classes=True,
                    progress=False)
    assert rec['benchmark'] == 'occlusion' and rec['images'] == 3
    assert [r['top1'] for r in rec['results']] == pytest.approx([100 / 3, 100 / 3])


# ---------------------------------------------------------------------------------------------- tool and Table E
@pytest.fixture(scope='module')
def tiny_imagenet_classifier(tmp_path_factory):
    """An official-format timm .pth (no metadata) of a 1000-class ViT at 32 px."""
    import timm
    torch.manual_seed(0)
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=1000, img_size=32)
    path = tmp_path_factory.mktemp('ckpt') / 'vit_tiny_in1k.pth'
    torch.save(model.state_dict(), path)
    return path


def test_tool_writes_results_that_fill_table_e(tmp_path, tiny_imagenet_classifier):
    import json

    from mixseg.tables.published import TABLE_E
    from mixseg.tables.render import build_table, render
    from mixseg.tables.results import collect
    from tools.robustness import main
    wnids = imagenet_wnids()
    a = _folder(tmp_path / 'imagenet-a', {wnids[6]: 2, wnids[11]: 1})
    val = _folder(tmp_path / 'val', {wnids[0]: 2, wnids[6]: 1})
    wd = tmp_path / 'wd'
    common = ['--checkpoint', str(tiny_imagenet_classifier), '--arch', 'vit_tiny_patch16_224', '--img-size', '32',
              '--work-dir', str(wd), '--model', 'deit-s', '--no-progress']
    main(['imagenet-a', '--images', str(a)] + common)
    main(['imagenet-o', '--images', str(a), '--val', str(val)] + common)
    main(['shuffle', '--images', str(val), '--grids', '1', '2'] + common)
    rec = json.loads((wd / 'results' / 'imagenet-a.json').read_text())
    assert rec['table_row'] == dict(table='E', model='deit-s', method='baseline')
    assert 0 <= rec['metrics']['top1'] <= 100
    assert set(json.loads((wd / 'results' / 'shuffle.json').read_text())['metrics']) == {'top1@g1', 'top1@g2'}
    assert json.loads((wd / 'robustness' / 'imagenet-o.json').read_text())['val_images'] == 3
    col = collect([wd])
    assert not col.skipped
    cells = dict((row.label, cells) for row, cells in build_table(TABLE_E, col))[('DeiT-S', 'baseline')]
    assert cells[0].ours == pytest.approx(rec['metrics']['top1'])
    assert 'published values left empty' in render(TABLE_E, col)


def test_tool_refuses_a_folder_of_other_classes(tmp_path, tiny_imagenet_classifier):
    from tools.robustness import main
    bad = _folder(tmp_path / 'shapes', {'circle': 1, 'square': 1})
    with pytest.raises(SystemExit, match=r'shapes: 2 of its 2 class folders are not ImageNet-1k classes'):
        main(['imagenet-r', '--images', str(bad), '--checkpoint', str(tiny_imagenet_classifier), '--arch',
              'vit_tiny_patch16_224', '--img-size', '32', '--work-dir', str(tmp_path / 'wd'), '--no-progress'])
    assert not (tmp_path / 'wd' / 'results').exists()
    with pytest.raises(SystemExit, match='needs --val'):
        main(['imagenet-o', '--images', str(bad), '--checkpoint', str(tiny_imagenet_classifier), '--arch',
              'vit_tiny_patch16_224', '--work-dir', str(tmp_path / 'wd'), '--no-progress'])


# ---------------------------------------------------------------------------------------------- planner and demo
def test_demo_data_has_robustness_folders_of_demo_classes(tmp_path):
    from mixcore.demo_data import IMAGENET_CLASSES, ROBUSTNESS_CLASSES, make_demo_data
    root = make_demo_data(tmp_path, size='tiny', only='robustness', log=None)['robustness']
    for bench in ('imagenet-a', 'imagenet-r', 'imagenet-o'):
        names = folder_classes(root / bench)
        assert names == sorted(ROBUSTNESS_CLASSES[bench]) and set(names) <= set(IMAGENET_CLASSES)
        assert all(len(list((root / bench / n).glob('*.JPEG'))) == 2 for n in names)


def test_plan_of_table_e(tmp_path):
    """Real setting: five benchmark steps per method on the pretraining's final training checkpoint, blocked
    while the benchmark folders are missing; demo: the generated folders, --any-classes."""
    import mixseg.reproduce as lib
    steps = lib.make_plan(['E'], work_root=tmp_path / 'w')
    rob = [s for s in steps if s.script == 'robustness']
    assert len(rob) == 20 and all(s.kind == 'test' for s in rob)
    by_bench = {s.argv[0] for s in rob}
    assert by_bench == {'occlusion', 'shuffle', 'imagenet-a', 'imagenet-r', 'imagenet-o'}
    s = next(s for s in rob if s.argv[0] == 'imagenet-a' and 'transmix' in s.name)
    assert steps[s.deps[0]].kind == 'pretrain' and s.argv[2].endswith('.pth')
    assert s.argv[s.argv.index('--model') + 1] == 'deit-s' and '--any-classes' not in s.argv
    assert s.blocked.startswith('missing data: data/imagenet-a')
    demo = lib.make_plan(['E'], demo=True, launcher='none', work_root=tmp_path / 'd')
    data = next(s for s in demo if s.kind == 'data')
    assert 'robustness' in data.command[-1]
    rob = [s for s in demo if s.script == 'robustness']
    assert len(rob) == 20 and all('--any-classes' in s.argv and '--max-images' in s.argv and not s.blocked for s in rob)
    tok = next(s for s in demo if s.kind == 'pretrain' and 'tokenmix' in s.name)
    assert any(demo[d].kind == 'maps' for d in tok.deps)      # the demo TokenMix pretraining reads label maps


@pytest.mark.slow
def test_demo_table_e_end_to_end(tmp_path):
    """tools/reproduce.py E --demo on tiny data, one epoch: every benchmark writes its results, Table E fills,
    its curves are drawn."""
    from _tools import load_tool
    from mixseg.tables.published import TABLE_E
    from mixseg.tables.render import missing_cells
    from mixseg.tables.results import collect
    rp = load_tool('reproduce')
    argv = ['E', '--demo', '--methods', 'baseline', 'transmix', '--work-root', str(tmp_path / 'w'), '--data-root',
            str(tmp_path / 'd'), '--demo-schedule', 'data_size=tiny', 'pretrain_epochs=1']
    printed = []
    rp.main(argv, out=lambda s: printed.extend(str(s).splitlines()))
    assert 'FAILED' not in '\n'.join(printed)
    for m in ('baseline', 'transmix'):
        for bench in ('occlusion', 'shuffle', 'imagenet-a', 'imagenet-r', 'imagenet-o'):
            assert (tmp_path / f'w/robustness/vit-nano_{m}/results/{bench}.json').is_file()
    col = collect([tmp_path / 'w'])
    assert len(missing_cells(TABLE_E, col)) == 2 * len(TABLE_E.columns)      # MixPro and TokenMix rows not run
    assert (tmp_path / 'w/tables_E_curves.png').is_file()
    assert '| DeiT-S | TransMix | — / ' in (tmp_path / 'w/tables.md').read_text()

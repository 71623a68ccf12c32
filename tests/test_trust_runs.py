"""No silent wrong numbers, no silent data loss in work dirs (issue 12).

Training runs here are the tiny regression of test_foundation.py, run in-process through tools/train.py's
``main`` (a unique ``experiment_name`` each, so mmengine's logger and message hub are not shared).
"""
import itertools
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from _tools import load_tool

from test_foundation import TOY_CONFIG, TOY_MODULE

ROOT = Path(__file__).resolve().parents[1]
_RUN = itertools.count()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """``make(name, max_iters, extra='')`` → a toy config file (tmp_path is on sys.path for its module)."""
    (tmp_path / 'toy_mm.py').write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.set_num_threads(1)

    def make(name, max_iters, extra=''):
        path = tmp_path / f'{name}.py'
        path.write_text(TOY_CONFIG.format(max_iters=max_iters, nan_at=None) + extra)
        return path
    return make


def _train(cfg, work, *extra, opts=()):
    argv = [str(cfg), '--work-dir', str(work), *map(str, extra), '--cfg-options',
            f'experiment_name=trust_{os.getpid()}_{next(_RUN)}', *opts]
    return load_tool('train').main(argv)


def _build_cfg(*argv):
    train = load_tool('train')
    return train.build_cfg(train.parse_args([str(a) for a in argv]))


# ---------------------------------------------------------------------------------------------------------
# item 9: one run per work dir

def test_a_work_dir_holding_another_run_is_refused(toy, tmp_path, capsys):
    a, b = toy('toy_a', 4), toy('toy_b', 6)
    work = tmp_path / 'work'
    _train(a, work)
    (work / 'results').mkdir()
    (work / 'results/ss.json').write_text('{}')  # what tools/test.py leaves
    before = {p.name: p.read_bytes() for p in work.glob('*.pth')}
    assert sorted(before) == ['iter_2.pth', 'iter_4.pth']

    for cfg, opts in ((b, ()), (a, ('optim_wrapper.optimizer.lr=0.1',))):  # another config; other options
        with pytest.raises(SystemExit) as info:
            _train(cfg, work, opts=opts)
        message = str(info.value)
        assert message.startswith(f'error: {work} holds another run: {a}'), message
        assert ('train_cfg' if cfg == b else 'optim_wrapper') in message.split('differ:')[1]
        assert '--resume' in message and '--overwrite-work-dir' in message and 'iter_4.pth' in message
        assert {p.name: p.read_bytes() for p in work.glob('*.pth')} == before  # nothing written
        assert (work / 'results/ss.json').is_file()
    assert json.loads((work / 'run.json').read_text())['config'] == str(a)

    _train(a, work)  # the same run again: allowed, from scratch, and said so
    assert 'holds checkpoints of this same run; training starts from scratch' in capsys.readouterr().out
    _train(b, work, '--resume')  # continuing it with another schedule: allowed
    assert (work / 'iter_6.pth').is_file() and json.loads((work / 'run.json').read_text())['config'] == str(b)

    _train(a, work, '--overwrite-work-dir')  # replacing it: the old run's files go first
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert not (work / 'results').exists()
    assert json.loads((work / 'run.json').read_text())['config'] == str(a)


def test_a_work_dir_of_an_older_run_without_identity_is_refused(toy, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    torch.save({'meta': {}}, work / 'epoch_3.pth')
    with pytest.raises(SystemExit, match=r'holds the files of an earlier run without a run.json .*epoch_3.pth'):
        _train(toy('toy_a', 2), work)


# ---------------------------------------------------------------------------------------------------------
# items 10 and 11: last_checkpoint, --resume

def test_last_checkpoint_is_relative_and_a_moved_work_dir_resumes_its_own(toy, tmp_path, capsys):
    original, moved = tmp_path / 'original', tmp_path / 'moved'
    _train(toy('toy_4', 4), original)
    assert (original / 'last_checkpoint').read_text() == 'iter_4.pth'
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    first = (moved / 'iter_2.pth').stat().st_mtime_ns
    capsys.readouterr()
    _train(toy('toy_6', 6), moved, '--resume')
    log = capsys.readouterr().out
    assert 'resumed epoch: 0, iter: 4' in log and f'{moved}/iter_4.pth' in log
    assert torch.load(moved / 'iter_6.pth', weights_only=True)['meta']['iter'] == 6
    assert (moved / 'iter_2.pth').stat().st_mtime_ns == first  # not trained again from the start


def test_latest_checkpoint_resolves_relative_and_old_absolute_pointers(tmp_path):
    from mixcore.workdir import WorkDirError, latest_checkpoint
    a, b = tmp_path / 'a', tmp_path / 'b'
    for d in (a, b):
        d.mkdir()
        (d / 'iter_4.pth').write_bytes(b'x')
    assert latest_checkpoint(a) is None
    (a / 'last_checkpoint').write_text('iter_4.pth\n')
    assert latest_checkpoint(a) == str(a / 'iter_4.pth')
    (a / 'last_checkpoint').write_text(str(b / 'iter_4.pth'))  # mmengine's absolute form, copied from b
    assert latest_checkpoint(a) == str(a / 'iter_4.pth')       # the work dir's own file wins
    (a / 'last_checkpoint').write_text(str(b / 'iter_4.pth'))
    (a / 'iter_4.pth').unlink()
    assert latest_checkpoint(a) == str(b / 'iter_4.pth')       # old absolute files are still read
    (a / 'last_checkpoint').write_text('')
    with pytest.raises(WorkDirError, match='last_checkpoint is empty'):
        latest_checkpoint(a)


def test_resume_without_a_checkpoint_is_an_error(toy, tmp_path):
    cfg, work = toy('toy_2', 2), tmp_path / 'work'
    with pytest.raises(SystemExit, match=rf'error: --resume: nothing to resume in {work}: no last_checkpoint file '
                                         r'and no checkpoint\. Without --resume the run starts from scratch'):
        _build_cfg(cfg, '--work-dir', work, '--resume')
    with pytest.raises(SystemExit, match=rf'error: --resume {tmp_path}/missing.pth: no such checkpoint file'):
        _build_cfg(cfg, '--work-dir', work, '--resume', tmp_path / 'missing.pth')
    work.mkdir()
    (work / 'iter_2.pth').write_bytes(b'x')
    with pytest.raises(SystemExit, match=r'no last_checkpoint file \(checkpoints there: iter_2.pth; continue from '
                                         r'one with --resume PATH\)'):
        _build_cfg(cfg, '--work-dir', work, '--resume')
    (work / 'last_checkpoint').write_text('')
    with pytest.raises(SystemExit, match='last_checkpoint is empty; it should name the checkpoint to resume from'):
        _build_cfg(cfg, '--work-dir', work, '--resume')
    (work / 'last_checkpoint').write_text('iter_9.pth')
    with pytest.raises(SystemExit, match=rf'last_checkpoint names {work}/iter_9.pth, which does not exist'):
        _build_cfg(cfg, '--work-dir', work, '--resume')
    (work / 'last_checkpoint').write_text('iter_2.pth')
    c = _build_cfg(cfg, '--work-dir', work, '--resume')
    assert c.resume and c.load_from == str(work / 'iter_2.pth')
    url = 'http://127.0.0.1:9/iter_2.pth'  # read by the safe URL loader when the Runner resumes (test_trust_loading)
    assert _build_cfg(cfg, '--work-dir', work, '--resume', url).load_from == url


def test_demo_configs_checkpoint_during_the_run():
    """A killed demo run can continue: every demo config saves before its end, and keeps few checkpoints."""
    from mmengine.config import Config
    for path in sorted((ROOT / 'configs/demo').glob('*.py')):
        cfg = Config.fromfile(str(path))
        ck, tc = cfg.default_hooks.checkpoint, cfg.train_cfg
        length = tc.get('max_epochs') or tc.get('max_iters')
        assert ck.interval > 0 and ck.interval < length, (path.name, ck.interval, length)
        assert 1 <= ck.get('max_keep_ckpts', -1) <= 2, path.name


# ---------------------------------------------------------------------------------------------------------
# item 12: --cfg-options that nothing reads; the missing-data hint

def test_cfg_options_that_change_nothing_are_errors(repo_root):
    config = repo_root / 'configs/demo/mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py'
    with pytest.raises(SystemExit) as info:
        _build_cfg(config, '--cfg-options', 'max_epochs=1')
    message = str(info.value)
    assert "--cfg-options max_epochs=1: nothing reads the top-level key 'max_epochs'" in message
    assert 'train_cfg.max_epochs=1' in message
    with pytest.raises(SystemExit, match="data_root=/x: nothing reads the top-level key 'data_root'.*use --data-root"):
        _build_cfg(config, '--cfg-options', 'data_root=/x')
    with pytest.raises(SystemExit, match="'no_such_key' \\(the config has no such entry\\)"):
        _build_cfg(config, '--cfg-options', 'no_such_key.x=1')
    cfg = _build_cfg(config, '--cfg-options', 'train_cfg.max_epochs=1', 'randomness.seed=3', 'load_from=x.pth',
                     'table_row.method=transmix', 'experiment_name=e')
    assert cfg.train_cfg.max_epochs == 1 and cfg.randomness.seed == 3


def test_missing_data_error_hints_data_root(repo_root, tmp_path):
    from mmengine.config import Config

    from mixseg.data_roots import check_data_roots
    cfg = Config.fromfile(str(repo_root / 'configs/demo/segmenter-linear_vit-demo_1xb4-200i_ade20k-demo-128x128.py'))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as info:
        check_data_roots(cfg, 'x.py')
    assert '--data-root DIR' in str(info.value) and '--cfg-options' not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# item 15: full disk mid-run; resuming another config's checkpoint

def test_full_disk_during_training_keeps_the_previous_checkpoint(toy, tmp_path, monkeypatch):
    """mmengine deleted the checkpoint leaving ``max_keep_ckpts`` before writing the new one: a full disk left
    none. Now the old one goes only after the new one is written."""
    cfg, work = toy('toy_6', 6), tmp_path / 'work'
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if '.iter_4.pth.' in str(f):
            with open(f, 'wb') as fh:
                fh.write(b'partial')
            raise RuntimeError('[enforce fail at inline_container.cc:664] . unexpected pos 4160 vs 4054')
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', save)
    with pytest.raises(SystemExit) as info:
        _train(cfg, work, opts=['default_hooks.checkpoint.max_keep_ckpts=1'])
    assert str(info.value).startswith(f'error: {work}/iter_4.pth: not written: the disk is full'), str(info.value)
    assert torch.load(work / 'iter_2.pth', weights_only=True)['meta']['iter'] == 2
    assert (work / 'last_checkpoint').read_text() == 'iter_2.pth'
    assert not list(work.glob('.*.part')) and not (work / 'iter_4.pth').exists()


def test_resuming_another_configs_checkpoint_names_the_mismatch(toy, tmp_path):
    a = toy('toy_a', 4)
    _train(a, tmp_path / 'a')
    # other optimizer settings: one parameter group per parameter instead of one for all
    b = toy('toy_b', 6, "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9), "
                        "paramwise_cfg=dict(bias_lr_mult=2.0))\n")
    with pytest.raises(SystemExit) as info:
        _train(b, tmp_path / 'b', '--resume', tmp_path / 'a/iter_4.pth')
    message = str(info.value)
    assert "cannot resume: the checkpoint's optimizer has 1 parameter groups (parameters per group: [2]), the " \
           "config's optimizer has 2 ([1, 1])" in message, message
    assert 'different number of parameter groups' not in message and not (tmp_path / 'b/iter_6.pth').exists()
    # another model: the keys are named
    ckpt = torch.load(tmp_path / 'a/iter_4.pth', weights_only=True)
    ckpt['state_dict'] = {'head.' + k: v for k, v in ckpt['state_dict'].items()}
    torch.save(ckpt, tmp_path / 'other.pth')
    with pytest.raises(SystemExit, match=r'other.pth: weights do not fit ToyRegressor\n  missing keys \(2\): '
                                         r'fc.weight, fc.bias\n  unexpected keys \(2\): head.fc.weight, head.fc.bias'):
        _train(a, tmp_path / 'c', '--resume', tmp_path / 'other.pth')


# ---------------------------------------------------------------------------------------------------------
# item 4: a checkpoint that does not fit is not evaluated

def test_load_from_that_does_not_fit_is_refused_unless_partial_load_is_asked(toy, tmp_path):
    a = toy('toy_a', 2)
    _train(a, tmp_path / 'a')
    ckpt = torch.load(tmp_path / 'a/iter_2.pth', weights_only=True)
    ckpt['state_dict']['fc.weight'] = torch.zeros(1, 5)
    torch.save(ckpt, tmp_path / 'bad.pth')
    with pytest.raises(SystemExit, match=r'(?s)bad.pth: weights do not fit ToyRegressor\n  shape mismatch: fc.weight: '
                                         r'file \(1, 5\) vs model \(1, 4\).*--allow-partial-load'):
        _train(a, tmp_path / 'b', opts=[f'load_from={tmp_path}/bad.pth'])
    assert not list((tmp_path / 'b').glob('*.pth'))
    _train(a, tmp_path / 'b', '--allow-partial-load', opts=[f'load_from={tmp_path}/bad.pth'])
    assert (tmp_path / 'b/iter_2.pth').is_file()


SEG_DEMO = 'configs/demo/segmenter-linear_vit-demo_1xb4-200i_ade20k-demo-128x128.py'


@pytest.fixture(scope='module')
def seg_demo_state():
    """The state dict of the demo linear Segmenter (random weights)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import mixseg.backbones.vit  # noqa: F401
    cfg = Config.fromfile(str(ROOT / SEG_DEMO))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    return model.state_dict()


@pytest.mark.parametrize('case', ['foreign', 'shape'])
def test_tools_test_refuses_a_checkpoint_that_does_not_fit(case, seg_demo_state, demo_data, tmp_path):
    """A checkpoint none of whose keys fit was "evaluated" with random weights and written to results/ss.json."""
    from mixcore.demo_data import DATA_ROOTS
    state = dict(seg_demo_state)
    if case == 'foreign':
        state = {'fc.weight': torch.zeros(2, 2)}
        expect = r'missing keys \(\d+\): backbone\.cls_token.*\n  unexpected keys \(1\): fc\.weight'
    else:
        state['decode_head.conv_seg.weight'] = torch.zeros(7, 96, 1, 1)
        expect = r'shape mismatch: decode_head.conv_seg.weight: file \(7, 96, 1, 1\) vs model \(150, 96, 1, 1\)'
    ckpt = tmp_path / f'{case}.pth'
    torch.save({'meta': {}, 'state_dict': state}, ckpt)
    argv = [str(ROOT / SEG_DEMO), str(ckpt), '--work-dir', str(tmp_path / 'work'), '--data-root',
            str(demo_data / DATA_ROOTS['ade20k']), '--cfg-options', f'experiment_name=trust_test_{case}']
    with pytest.raises(SystemExit) as info:
        load_tool('test').main(argv)
    message = str(info.value)
    assert message.startswith(f'error: {ckpt}: weights do not fit EncoderDecoder'), message
    import re
    assert re.search(expect, message, re.S), message
    assert '--allow-partial-load' in message
    assert not (tmp_path / 'work/results').exists()


@pytest.mark.slow
def test_tools_test_partial_load_on_request(seg_demo_state, demo_data, tmp_path):
    from mixcore.demo_data import DATA_ROOTS
    state = dict(seg_demo_state)
    state['decode_head.conv_seg.weight'] = torch.zeros(7, 96, 1, 1)
    ckpt = tmp_path / 'shape.pth'
    torch.save({'meta': {}, 'state_dict': state}, ckpt)
    load_tool('test').main([str(ROOT / SEG_DEMO), str(ckpt), '--work-dir', str(tmp_path / 'work'), '--data-root',
                            str(demo_data / DATA_ROOTS['ade20k']), '--allow-partial-load',
                            '--cfg-options', 'experiment_name=trust_test_partial'])
    assert (tmp_path / 'work/results/ss.json').is_file()


# ---------------------------------------------------------------------------------------------------------
# item 5: the table row follows the backbone file

README_SEG = 'configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py'


def _backbone(tmp_path, method, arch='deit_small_patch16_224', **meta):
    from mixcore.weights.backbone_file import save_backbone_file
    return save_backbone_file(tmp_path / f'{method}.safetensors', {'w': torch.zeros(1)}, arch=arch, img_size=224,
                              patch_size=16, method=method, **meta)


def test_readme_example_lands_in_the_backbones_row(tmp_path, capsys):
    """README: a TransMix backbone with the (baseline) Segmenter ADE20K config. The row came from the config's
    default (baseline); it comes from the backbone file's metadata."""
    from mmengine.config import Config
    backbone = _backbone(tmp_path, 'transmix')
    cfg = _build_cfg(ROOT / README_SEG, '--cfg-options', f'model.backbone.checkpoint={backbone}')
    assert cfg.table_row == dict(table='C', model='deit-s', method='transmix')
    assert cfg.pretrained_backbone['file'] == str(backbone) and cfg.pretrained_backbone['method'] == 'transmix'
    assert "table_row.method = 'transmix' from" in capsys.readouterr().out

    # tools/test.py on that run's checkpoint with the config as it is (no backbone option): the stored config
    # carries the backbone record, even when the backbone file is gone
    ckpt = tmp_path / 'iter_160000.pth'
    torch.save({'meta': {'cfg': cfg.pretty_text}, 'state_dict': {}}, ckpt)
    backbone.unlink()
    from mixseg.run_preparation import prepare_testing
    test = load_tool('test')

    def row(*opts):
        args = test.parse_args([str(ROOT / README_SEG), str(ckpt), *(('--cfg-options', *opts) if opts else ())])
        return prepare_testing(Config.fromfile(args.config), args)

    assert row() == dict(table='C', model='deit-s', method='transmix')
    with pytest.raises(SystemExit) as info:
        row('table_row.method=baseline')
    message = str(info.value)
    assert '--cfg-options table_row.method=baseline contradicts the backbone' in message
    assert f"{backbone} (the backbone the run that wrote {ckpt} started from) says method='transmix'" in message
    assert row('table_row.method=transmix') == dict(table='C', model='deit-s', method='transmix')


def test_table_row_model_follows_the_backbone_and_explicit_conflicts_fail(tmp_path):
    tiny = _backbone(tmp_path, 'tokenmix', arch='deit_tiny_patch16_224')
    cfg = _build_cfg(ROOT / README_SEG, '--cfg-options', f'model.backbone.checkpoint={tiny}')
    assert cfg.table_row == dict(table='C', model='deit-t', method='tokenmix')
    with pytest.raises(SystemExit, match=r"table_row.model=deit-s contradicts the backbone .*tokenmix.safetensors "
                                         r"says model='deit-t'"):
        _build_cfg(ROOT / README_SEG, '--cfg-options', f'model.backbone.checkpoint={tiny}', 'table_row.model=deit-s')
    # a demo-size network under a paper architecture's name decides the method only
    nano = _backbone(tmp_path, 'mixpro', arch='vit_tiny_patch16_224', model_kwargs=dict(embed_dim=96, depth=4))
    cfg = _build_cfg(ROOT / README_SEG, '--cfg-options', f'model.backbone.checkpoint={nano}', 'table_row.model=deit-b')
    assert cfg.table_row == dict(table='C', model='deit-b', method='mixpro')

"""Issue 22 item 6: ``tools/test.py CONFIG CKPT`` evaluates with the training run's overrides (data root,
num_classes), read from the config mmengine stores in the checkpoint, unless the command overrides them."""
import pytest
import torch

from _tools import load_tool

CONFIG = 'configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py'


class _Built(Exception):
    pass


@pytest.fixture
def captured(monkeypatch):
    """The config tools/test.py hands mmengine's Runner (the run itself stops there)."""
    from mmengine.runner import Runner
    seen = {}

    def from_cfg(cfg):
        seen['cfg'] = cfg
        raise _Built

    monkeypatch.setattr(Runner, 'from_cfg', staticmethod(from_cfg))
    return seen


def _checkpoint(repo_root, tmp_path, edit):
    """A checkpoint as mmengine writes it: the run's resolved config in ``meta['cfg']``."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(repo_root / CONFIG))
    edit(cfg)
    path = tmp_path / 'iter_20.pth'
    torch.save(dict(meta=dict(cfg=cfg.pretty_text), state_dict={}), path)
    return path


def _ade_root(path):
    """An (empty) ADE20K root in its released layout: tools/test.py checks the folders it will read exist."""
    for sub in ('images/validation', 'annotations/validation'):
        (path / sub).mkdir(parents=True)
    return path


def _test_cfg(repo_root, ckpt, *argv):
    with pytest.raises(_Built):
        load_tool('test').main([str(repo_root / CONFIG), str(ckpt), '--work-dir', str(ckpt.parent / 'w'), *argv])


def test_training_overrides_come_from_the_checkpoint(repo_root, tmp_path, captured):
    from mixcore.runtime import override_data_root
    mine = _ade_root(tmp_path / 'my_ade')

    def trained_on_mine(cfg):  # tools/train.py --data-root my_ade --cfg-options model.decode_head.num_classes=7
        override_data_root(cfg, str(mine))
        cfg.model.decode_head.num_classes = 7

    ckpt = _checkpoint(repo_root, tmp_path, trained_on_mine)
    _test_cfg(repo_root, ckpt)
    cfg = captured['cfg']
    assert cfg.test_dataloader.dataset.data_root == str(mine)
    assert cfg.model.decode_head.num_classes == 7

    # this command's own options win
    other = _ade_root(tmp_path / 'other')
    _test_cfg(repo_root, ckpt, '--data-root', str(other), '--cfg-options', 'model.decode_head.num_classes=9')
    cfg = captured['cfg']
    assert cfg.test_dataloader.dataset.data_root == str(other) and cfg.model.decode_head.num_classes == 9


def test_types_and_weights_are_never_taken_from_a_stored_config(repo_root, tmp_path, captured, capsys):
    mine = _ade_root(tmp_path / 'ade')

    def crafted(cfg):
        cfg.test_dataloader.dataset.type = 'os.system'
        cfg.test_dataloader.dataset.data_root = str(mine)
        cfg.model.backbone.checkpoint = '/elsewhere/backbone.safetensors'

    ckpt = _checkpoint(repo_root, tmp_path, crafted)
    _test_cfg(repo_root, ckpt)
    cfg = captured['cfg']
    assert cfg.test_dataloader.dataset.type == 'ADE20KDataset' and cfg.model.backbone.checkpoint is None
    assert cfg.test_dataloader.dataset.data_root == str(mine)
    assert 'from the training run stored in' in capsys.readouterr().out


def test_overrides_are_the_differences_within_what_testing_reads():
    from mixcore.training_overrides import training_overrides
    file = dict(model=dict(type='M', head=dict(num_classes=150), init_cfg=None),
                test_dataloader=dict(num_workers=4, dataset=dict(type='D', data_root='a', pipeline=[dict(type='L')])),
                train_dataloader=dict(batch_size=4))
    stored = dict(model=dict(type='M', head=dict(num_classes=7), init_cfg=dict(type='Pretrained', checkpoint='x')),
                  test_dataloader=dict(num_workers=1, dataset=dict(type='D', data_root='b',
                                                                   pipeline=[dict(type='L'), dict(type='P')])),
                  train_dataloader=dict(batch_size=1), data_root='b')
    taken, skipped = training_overrides(file, stored)
    assert taken == {'model.head.num_classes': 7, 'test_dataloader.dataset.data_root': 'b', 'data_root': 'b'}
    assert skipped == ['test_dataloader.dataset.pipeline']

"""Foundation: the mm tools on CPU, safe checkpoint loading under torch >= 2.6, resume."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

TOY_MODULE = '''
import torch
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    def __init__(self, nan_at=None):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)
        self.nan_at, self.calls = nan_at, 0

    def forward(self, inputs, targets=None, mode='loss'):
        out = self.fc(inputs)
        if mode == 'loss':
            self.calls += 1
            loss = ((out.squeeze(1) - targets) ** 2).mean()
            return dict(loss=loss * float('nan') if self.calls == self.nan_at else loss)
        return [dict(pred=o) for o in out]


@DATASETS.register_module(force=True)
class ToyData(torch.utils.data.Dataset):
    def __init__(self, n=32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])
'''

TOY_CONFIG = '''
custom_imports = dict(imports=['toy_mm'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='ToyRegressor', nan_at={nan_at})
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type='ToyData'), collate_fn=dict(type='default_collate'))
train_cfg = dict(by_epoch=False, max_iters={max_iters})
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]  # <= the shortest run
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                     logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
'''


def _train(tmp_path, max_iters, *extra, nan_at=None):
    cfg = tmp_path / f'toy_{max_iters}.py'
    cfg.write_text(TOY_CONFIG.format(max_iters=max_iters, nan_at=nan_at))
    (tmp_path / 'toy_mm.py').write_text(TOY_MODULE)
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{ROOT}', CUDA_VISIBLE_DEVICES='-1')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)
    return subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), str(cfg), '--work-dir',
                           str(tmp_path / 'work'), *extra], env=env, capture_output=True, text=True, timeout=300)


def test_resume_under_safe_loading(tmp_path):
    """A CPU run saves checkpoints; --resume continues it with torch's weights_only=True loading."""
    r = _train(tmp_path, 4)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'work/iter_4.pth').is_file()
    r = _train(tmp_path, 8, '--resume')
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert 'resumed' in log.lower() and 'iter_4.pth' in log
    from mmengine.logging import HistoryBuffer
    ckpt = torch.load(tmp_path / 'work/iter_8.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 8
    # the message hub's HistoryBuffers survived the round trip and carry the history of both runs
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and len(loss.data[0]) == 8
    assert loss.statistics('mean') > 0


def test_allow_list_is_exact():
    """The allow-list admits mmengine's types but a pickle carrying code is still refused."""
    import io

    from mmengine.logging import HistoryBuffer

    buf = io.BytesIO()
    torch.save({'h': HistoryBuffer([1.0, 2.0], [1, 1])}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)['h'].mean() == 1.5

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    buf = io.BytesIO()
    torch.save({'x': Evil()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf, weights_only=True)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_train_and_test_tools_refuse_a_checkpoint_carrying_code(tmp_path, demo_data):
    """--resume FILE, --resume (latest in the work dir) and tools/test.py stop with the file named; the
    code never runs and nothing is trained."""
    assert _train(tmp_path, 2).returncode == 0
    work, marker = tmp_path / 'work', tmp_path / 'pwned'
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=True)
    ckpt['meta']['note'] = _Evil(marker)
    evil = work / 'iter_3.pth'
    torch.save(ckpt, evil)
    for extra in (['--resume', str(evil)], ['--resume']):
        if extra == ['--resume']:
            (work / 'last_checkpoint').write_text(str(evil))  # what CheckpointHook writes after a save
        r = _train(tmp_path, 4, *extra)
        assert r.returncode != 0
        assert f'error: {evil}: cannot be loaded safely: refused by torch.load(weights_only=True)' in r.stderr, \
            r.stderr[-2000:]
        assert 'posix.system' in r.stderr
        assert not marker.exists() and not (work / 'iter_4.pth').exists()

    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES='-1')
    root = demo_data / 'ade/ADEChallengeData2016'
    r = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'),
                        str(ROOT / 'configs/demo/segmenter-linear_vit-demo_1xb4-200i_ade20k-demo-128x128.py'),
                        str(evil), '--work-dir', str(tmp_path / 'test'), '--data-root', str(root)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and f'error: {evil}: cannot be loaded safely' in r.stderr, r.stderr[-2000:]
    assert not marker.exists() and not (tmp_path / 'test/results').exists()


def test_cpu_distributed_config():
    """On a CPU machine a multi-process launch gets gloo and a DDP wrapper without device_ids."""
    from mmengine.config import Config

    from mixcore.runtime import setup_cpu_distributed
    cfg = Config(dict(model=dict(type='X')))
    setup_cpu_distributed(cfg, 'none')
    assert 'model_wrapper_cfg' not in cfg
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29531', RANK='0', WORLD_SIZE='1')
    try:
        setup_cpu_distributed(cfg, 'pytorch')
        # mmengine's own default wrapper, minus the device ids
        assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                             broadcast_buffers=False, find_unused_parameters=False)
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert torch.distributed.get_backend() == 'gloo'
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    r = _train(tmp_path, 8, nan_at=5)
    assert r.returncode != 0
    log = r.stdout + r.stderr
    assert 'FloatingPointError: loss became nan at iteration 5' in log
    assert 'iter_4.pth' in log.split('FloatingPointError')[-1]
    work = tmp_path / 'work'
    assert not (work / 'iter_6.pth').exists()
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu', weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())


def test_override_data_root(repo_root):
    from mmengine.config import Config

    from mixcore.runtime import override_data_root
    cfg = Config.fromfile(str(repo_root / 'configs/demo/mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py'))
    override_data_root(cfg, '/elsewhere/coco')
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.data_root == '/elsewhere/coco'
    assert cfg.val_evaluator.ann_file.startswith('/elsewhere/coco/annotations/')

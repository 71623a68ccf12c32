"""Kill and resume: a demo run killed with SIGKILL after iteration k and continued with ``tools/train.py
--resume`` ends with exactly the weights (and optimizer state) of an uninterrupted run of the same seed
(CPU, ``--deterministic``).

Stage 1 runs the TransMix ViT demo (epoch-based, two data workers, random augmentation and mixing), killed in
the middle of epoch 2, so the resumed run restarts from the epoch-1 checkpoint. Stage 2 runs the Segmenter
demo (iteration-based, augmentation in the main process), killed two iterations after a checkpoint, so the
resumed run replays the skipped batches. A hook loaded only here kills the process from inside at the chosen
iteration; without :class:`mixcore.hooks.ResumableRandomnessHook` both comparisons fail (the reseeding test
below shows the draws it fixes).
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mixcore.weights.backbone_file import load_backbone_file

ROOT = Path(__file__).resolve().parents[1]

KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterIter(Hook):
    """SIGKILLs its own process once iteration `after` (1-based) has finished."""
    priority = 'LOWEST'

    def __init__(self, after):
        self.after = after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.after:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def _killing_config(tmp_path, config, after):
    """A config that is ``config`` plus the kill hook (lists are replaced in a child config, so the
    base's imports and hooks are written out)."""
    (tmp_path / 'kill_after_iter.py').write_text(KILL_HOOK)
    base = Config.fromfile(str(ROOT / config))
    imports = list((base.get('custom_imports') or {}).get('imports', [])) + ['kill_after_iter']
    hooks = list(base.get('custom_hooks') or []) + [dict(type='KillAfterIter', after=after)]
    path = tmp_path / f'killed_{Path(config).name}'
    path.write_text(f'_base_ = [{str(ROOT / config)!r}]\n'
                    f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n'
                    f'custom_hooks = {[dict(h) for h in hooks]!r}\n')
    return path


def _train(tmp_path, config, work_dir, opts, *extra):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    cmd = [sys.executable, str(ROOT / 'tools/train.py'), str(config), '--work-dir', str(work_dir),
           '--deterministic', '--seed', '0', *extra, '--cfg-options', *opts]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _assert_same_training_state(a, b):
    ca = torch.load(a, map_location='cpu', weights_only=True)
    cb = torch.load(b, map_location='cpu', weights_only=True)
    assert ca['meta']['iter'] == cb['meta']['iter'] and ca['meta']['epoch'] == cb['meta']['epoch']
    sa, sb = ca['state_dict'], cb['state_dict']
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f'{len(differ)} of {len(sa)} tensors differ, e.g. {differ[:3]}'
    oa, ob = ca['optimizer']['state'], cb['optimizer']['state']
    assert oa.keys() == ob.keys()
    assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i] if torch.is_tensor(oa[i][k]))


def _kill_then_resume(tmp_path, config, opts, after):
    killed = _train(tmp_path, _killing_config(tmp_path, config, after), tmp_path / 'resumed', opts)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-3000:]
    resumed = _train(tmp_path, ROOT / config, tmp_path / 'resumed', opts, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    return resumed.stdout + resumed.stderr


@pytest.mark.slow
def test_pretraining_killed_mid_epoch_resumes_to_identical_weights(demo_data, tmp_path):
    config = 'configs/demo/pretrain_vit-nano_transmix_demo.py'
    root = demo_data / 'imagenet'
    # 40 images, batch 8: 5 iterations per epoch, 3 epochs; the kill comes after iteration 8 (epoch 2)
    opts = [f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += ['train_dataloader.batch_size=8', 'train_dataloader.num_workers=2', 'train_cfg.max_epochs=3',
             'train_cfg.val_interval=3', 'param_scheduler.1.T_max=2', 'param_scheduler.1.end=3',
             'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    full = _train(tmp_path, ROOT / config, tmp_path / 'full', opts)
    assert full.returncode == 0, full.stdout[-2000:] + full.stderr[-3000:]
    assert 'persistent_workers = False' in full.stdout  # --deterministic: workers restart each epoch

    log = _kill_then_resume(tmp_path, config, opts, after=8)
    assert 'resumed epoch: 1, iter: 5' in log  # from the end of epoch 1: iterations 6-8 are done again
    _assert_same_training_state(tmp_path / 'full/epoch_3.pth', tmp_path / 'resumed/epoch_3.pth')
    a, b = (load_backbone_file(tmp_path / d / 'backbone.safetensors') for d in ('full', 'resumed'))
    assert all(torch.equal(v, b.state_dict[k]) for k, v in a.state_dict.items())
    assert a.meta['top1'] == b.meta['top1']


@pytest.mark.slow
def test_segmentation_killed_after_a_checkpoint_resumes_to_identical_weights(demo_data, tmp_path):
    from mixcore.demo_data import DATA_ROOTS
    config = 'configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py'
    root = demo_data / DATA_ROOTS['ade20k']
    iters = 10
    opts = [f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}', f'param_scheduler.0.end={iters}',
             'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1']
    full = _train(tmp_path, ROOT / config, tmp_path / 'full', opts)
    assert full.returncode == 0, full.stdout[-2000:] + full.stderr[-3000:]

    log = _kill_then_resume(tmp_path, config, opts, after=6)  # last checkpoint: iter_4
    assert 'resumed epoch: 0, iter: 4' in log and 'Advance dataloader 4 steps' in log
    _assert_same_training_state(tmp_path / f'full/iter_{iters}.pth', tmp_path / f'resumed/iter_{iters}.pth')


def test_reseeding_makes_draws_a_function_of_seed_and_step():
    """The property both resume tests rest on, on the hook's own seeding function: the same key gives the
    same draws whatever came before; another step, phase or seed gives other draws."""
    import random

    import numpy as np

    from mixcore.hooks import reseed

    def draws():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    reseed(0, 3, 7)
    first = draws()
    torch.rand(100), np.random.rand(5), random.random()  # whatever else ran in between
    reseed(0, 3, 7)
    assert draws() == first
    for key in [(0, 3, 8), (0, 2, 7), (1, 3, 7)]:
        reseed(*key)
        assert all(a != b for a, b in zip(draws(), first))


def _build_cfg(config, *args):
    from _tools import load_tool
    train = load_tool('train')
    return train.build_cfg(train.parse_args([str(ROOT / config), *args]))


def test_train_tool_pins_the_sampler_seed_and_stops_persistent_workers_when_deterministic(capsys):
    """mmengine gives samplers no seed under diff_rank_seed (they then draw a random one on every start);
    persistent workers of an epoch-based loop cannot be put back into their state at epoch k."""
    cfg = _build_cfg('configs/demo/pretrain_vit-nano_transmix_demo.py', '--seed', '5')
    assert cfg.randomness.diff_rank_seed and cfg.train_dataloader.sampler.seed == 5
    assert cfg.train_dataloader.persistent_workers  # only deterministic mode changes the workers
    assert any(h['type'] == 'mixcore.ResumableRandomnessHook' for h in cfg.custom_hooks)

    cfg = _build_cfg('configs/demo/pretrain_vit-nano_transmix_demo.py', '--deterministic')
    assert cfg.train_dataloader.sampler.seed == 0 and not cfg.train_dataloader.persistent_workers
    assert cfg.train_dataloader.worker_init_fn == dict(type='mixcore.epoch_seeded_worker_init_fn')
    assert cfg.val_dataloader.persistent_workers  # validation draws nothing random
    assert 'persistent_workers = False' in capsys.readouterr().out

    # iteration-based loop: one data iterator for the whole run, its workers are replayed after a resume
    cfg = _build_cfg('configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py', '--deterministic')
    assert cfg.train_dataloader.persistent_workers and cfg.randomness.seed == 0
    # stage-2 runtimes draw per rank (diff_rank_seed): the sampler gets the one shared seed
    assert cfg.randomness.diff_rank_seed and cfg.train_dataloader.sampler.seed == 0


class _Draws(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import random

        import numpy as np
        return torch.tensor([random.random(), float(np.random.rand()), float(torch.rand(()))])


def test_epoch_seeded_workers_draw_anew_each_epoch_and_repeat_after_a_reseed():
    """Workers started per epoch (deterministic mode) take their seeds from the main process's RNG, which the
    hook sets from (seed, epoch): another epoch draws other augmentations (mmengine's worker_init_fn would
    repeat them), the same epoch after a resume draws the same."""
    from mmengine.registry import FUNCTIONS

    from mixcore.hooks import reseed
    init = FUNCTIONS.get('mixcore.epoch_seeded_worker_init_fn')
    loader = torch.utils.data.DataLoader(_Draws(), batch_size=2, num_workers=2, worker_init_fn=init)

    def epoch(e):
        reseed(0, 1, e)  # what ResumableRandomnessHook does before the epoch's iterator is made
        return torch.cat(list(loader))

    first, second = epoch(0), epoch(1)
    assert not torch.isclose(first, second).any()
    assert torch.equal(epoch(0), first)
    assert len({tuple(r) for r in first.tolist()}) == 4  # two workers, two samples each: all different

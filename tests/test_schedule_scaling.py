"""Issue 22 item 1 (and the empty-epoch part of item 6): ``tools/train.py --epochs N`` / ``--iters N`` (and the
advised ``--cfg-options train_cfg.max_epochs=N``) rescale every scheduler, warmup and interval with the loop; a
loop that disagrees with its schedulers is an error naming both; an epoch without a batch says why."""
import math

import pytest
import torch

from _tools import load_tool

DEIT_T = {
    'transmix-official': 'configs/pretrain/deit-t_transmix-official_8xb32-300e_in1k.py',  # TimmCosineLR per epoch
    'mixpro-official': 'configs/pretrain/deit-t_mixpro-official_8xb128-300e_in1k.py',  # TimmCosineLR per iter
    'tokenmix-official': 'configs/pretrain/deit-t_tokenmix-official_8xb128-300e_in1k.py',  # + 10 cooldown epochs
    'baseline': 'configs/pretrain/deit-t_baseline_8xb128-300e_in1k.py',  # LinearLR + CosineAnnealingLR
}
SEGMENTER = 'configs/segmenter/segmenter-mask_deit-t_8xb1-160k_ade20k-512x512.py'
MASK_RCNN = 'configs/mask_rcnn/mask-rcnn_pvt-t_fpn_8xb2-1x_coco.py'


def _cfg(repo_root, tmp_path, config, *argv):
    train = load_tool('train')
    args = train.parse_args([str(repo_root / config), '--work-dir', str(tmp_path / 'work'), *argv])
    return train.build_cfg(args)


def _lrs(cfg, epoch_length, base_lr=1.0, only=None):
    """The lr of every iteration of the run, stepped as mmengine's ParamSchedulerHook does (schedulers built
    as mmengine's Runner builds them, after :func:`mixcore.schedule.whole_iterations`)."""
    from pretrain.registry import PARAM_SCHEDULERS  # TimmCosineLR; mmengine's own schedulers through the parent

    from mixcore.schedule import whole_iterations
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    scheds = []
    chosen = [dict(s) for s in cfg.param_scheduler if only is None or s['type'] == only]
    for s in whole_iterations(chosen, epoch_length, log=lambda m: None):
        s = dict(s)
        convert = s.pop('convert_to_iter_based', False)
        cls = PARAM_SCHEDULERS.get(s.pop('type'))
        scheds.append(cls.build_iter_from_epoch(opt, **s, epoch_length=epoch_length) if convert else cls(opt, **s))
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs):
        for _ in range(epoch_length):
            lrs.append(opt.param_groups[0]['lr'])
            for s in scheds:
                if not s.by_epoch:
                    s.step()
        for s in scheds:
            if s.by_epoch:
                s.step()
    return lrs


@pytest.mark.parametrize('name', sorted(DEIT_T))
def test_one_epoch_deit_t_anneals_to_the_minimum_lr(name, repo_root, tmp_path):
    cfg = _cfg(repo_root, tmp_path, DEIT_T[name], '--epochs', '1')
    assert cfg.train_cfg.max_epochs == 1
    base = cfg.optim_wrapper.optimizer.lr
    min_lr = next(s.get('lr_min', s.get('eta_min')) for s in cfg.param_scheduler if 'Cosine' in s['type'])
    lrs = _lrs(cfg, epoch_length=200, base_lr=base)
    assert len(lrs) == 200
    assert max(lrs) > 0.9 * base  # the warmup still reaches the peak lr
    assert lrs[-1] == pytest.approx(min_lr, abs=0.002 * base)  # and the cosine ends within the epoch
    # the warmup keeps its share of the run (5 or 20 of 300 epochs -> 1/60 or 1/15 of the iterations)
    first_peak = next(i for i, lr in enumerate(lrs) if lr > 0.95 * base)
    assert first_peak <= math.ceil(200 * 20 / 300) + 1
    # the intervals fit the loop
    assert cfg.train_cfg.val_interval <= 1 and cfg.default_hooks.checkpoint.interval <= 1


def test_same_config_and_old_loop_option_rescale_alike(repo_root, tmp_path):
    a = _cfg(repo_root, tmp_path, DEIT_T['transmix-official'], '--epochs', '62')
    b = _cfg(repo_root, tmp_path, DEIT_T['transmix-official'], '--cfg-options', 'train_cfg.max_epochs=62')
    assert a.param_scheduler == b.param_scheduler and a.train_cfg == b.train_cfg
    # 300 cosine (5 warmup) + 10 cooldown epochs of 310 -> 60 (1) + 2 of 62: whole epochs, stepped per epoch
    s, = a.param_scheduler
    assert (s.t_initial, s.warmup_t, a.train_cfg.max_epochs, s.convert_to_iter_based) == (60, 1, 62, False)
    # a fraction of an epoch (warmup 0.5 of 31) is stepped per iteration
    s, = _cfg(repo_root, tmp_path, DEIT_T['transmix-official'], '--epochs', '31').param_scheduler
    assert (s.t_initial, s.warmup_t, s.convert_to_iter_based) == (30, 0.5, True)


def test_tiny_epochs_leave_out_phases_shorter_than_one_iteration(repo_root, tmp_path):
    """5 iterations per epoch: a 1/60-epoch warmup is no iteration long; mmengine would refuse it (end <= begin)."""
    cfg = _cfg(repo_root, tmp_path, DEIT_T['baseline'], '--epochs', '1')
    lrs = _lrs(cfg, epoch_length=5, base_lr=1e-3)
    assert len(lrs) == 5 and lrs[0] == pytest.approx(1e-3) and lrs[-1] < 0.2e-3


def test_segmenter_iters_20_rescales_poly_and_intervals(repo_root, tmp_path):
    for argv in (['--iters', '20'], ['--cfg-options', 'train_cfg.max_iters=20']):
        cfg = _cfg(repo_root, tmp_path, SEGMENTER, *argv)
        poly, = cfg.param_scheduler
        assert (cfg.train_cfg.max_iters, poly.begin, poly.end) == (20, 0, 20)
        hooks = cfg.default_hooks
        assert cfg.train_cfg.val_interval <= 20 and hooks.checkpoint.interval <= 20 and hooks.logger.interval <= 20


def test_mask_rcnn_epochs_rescale_iteration_warmup_and_milestones(repo_root, tmp_path):
    cfg = _cfg(repo_root, tmp_path, MASK_RCNN, '--epochs', '6')
    warmup, steps = cfg.param_scheduler
    assert warmup.end == 250 and steps.end == 6 and list(steps.milestones) == [4, 5.5]
    # 5.5 epochs: a whole iteration (55), not a float no step equals
    lrs = _lrs(cfg, epoch_length=10, only='MultiStepLR')
    assert (lrs[39], lrs[40], lrs[54], lrs[55]) == pytest.approx((1, 0.1, 0.1, 0.01))


def test_explicit_entries_win_over_the_rescaled_ones(repo_root, tmp_path):
    cfg = _cfg(repo_root, tmp_path, SEGMENTER, '--iters', '20', '--cfg-options', 'default_hooks.checkpoint.interval=5')
    assert cfg.default_hooks.checkpoint.interval == 5 and cfg.param_scheduler[0].end == 20


def test_wrong_length_option_is_an_error(repo_root, tmp_path):
    with pytest.raises(SystemExit, match=r'--epochs 1: this config counts iters .*max_iters = 160000.*use --iters'):
        _cfg(repo_root, tmp_path, SEGMENTER, '--epochs', '1')
    with pytest.raises(SystemExit, match=r'--iters 5: this config counts epochs.*use --epochs'):
        _cfg(repo_root, tmp_path, MASK_RCNN, '--iters', '5')
    with pytest.raises(SystemExit, match=r'--iters 20 and --cfg-options train_cfg.max_iters=30 disagree'):
        _cfg(repo_root, tmp_path, SEGMENTER, '--iters', '20', '--cfg-options', 'train_cfg.max_iters=30')


def test_loop_shorter_than_its_schedule_is_an_error_naming_both(repo_root, tmp_path):
    """From any source: here a config file that shortens only the loop (the old advice)."""
    short = tmp_path / 'short.py'
    short.write_text(f"_base_ = '{repo_root / SEGMENTER}'\ntrain_cfg = dict(max_iters=20)\n")
    with pytest.raises(SystemExit) as info:
        _cfg(repo_root, tmp_path, short)
    message = str(info.value)
    assert 'ends at iter 160000' in message and 'runs 20 iters (train_cfg.max_iters)' in message
    assert '--iters N' in message and str(short) in message
    # the schedule set by hand with --cfg-options: run as asked, with a printed warning
    cfg = _cfg(repo_root, tmp_path, short, '--cfg-options', 'param_scheduler.0.end=40')
    assert cfg.param_scheduler[0].end == 40


def test_loop_longer_than_the_configs_own_tail_is_an_error(repo_root, tmp_path, capsys):
    from mixcore.schedule import ScheduleError, check_schedule
    from mmengine.config import Config
    cfg = Config.fromfile(str(repo_root / DEIT_T['tokenmix-official']))  # cosine to 300, loop 310: the cooldown
    assert check_schedule(cfg, (310, 300), 'x.py') == []
    cfg.train_cfg.max_epochs = 600
    with pytest.raises(ScheduleError, match=r'ends at epoch 300 .* runs 600 epochs.*last 300 epochs run at the '
                                            r'final lr \(the config itself has 19.35 such epochs'):
        check_schedule(cfg, (310, 300), 'x.py')
    warnings = check_schedule(cfg, (310, 300), 'x.py', explicit=['param_scheduler.1.end'])
    assert len(warnings) == 1 and 'runs as asked' in warnings[0]


def test_every_shipped_config_passes_the_schedule_check(repo_root):
    from mmengine.config import Config

    from mixcore.schedule import check_schedule, loop_length, schedule_end
    for path in sorted((repo_root / 'configs').rglob('*.py')):
        if '_base_' in path.parts:
            continue
        cfg = Config.fromfile(str(path))
        if not cfg.get('train_cfg'):
            continue
        ref = (loop_length(cfg), schedule_end(cfg)[0])
        assert ref[1] is None or ref[1] <= ref[0], path.name
        assert check_schedule(cfg, ref, str(path)) == []


def test_empty_epoch_names_images_batch_and_root():
    from torch.utils.data import DataLoader

    from mixcore.schedule import ScheduleError, check_epoch_length
    loader = DataLoader(list(range(3)), batch_size=4, drop_last=True)
    cfg = dict(train_dataloader=dict(dataset=dict(type='ImageNetFolder', data_root='/data/mine')))
    with pytest.raises(ScheduleError, match=r'3 images < batch size 4 \(drop_last\).*dataset root /data/mine.*'
                                            r'train_dataloader.batch_size=N.*drop_last=False'):
        check_epoch_length(loader, cfg, 'c.py')
    assert check_epoch_length(DataLoader(list(range(3)), batch_size=2, drop_last=True), cfg, 'c.py') == 1


def test_train_tool_with_fewer_images_than_a_batch_says_so(repo_root, tmp_path):
    """End to end (mmengine said: "epoch_length must be a positive integer, but got 0")."""
    from PIL import Image
    root = tmp_path / 'imagenet'
    for split in ('train', 'val'):
        for i in range(3):
            (root / split / f'n0{i}').mkdir(parents=True)
            Image.new('RGB', (40, 40), (i * 80, 0, 0)).save(root / split / f'n0{i}' / f'{i}.JPEG')
    config = repo_root / 'configs/demo/pretrain_vit-nano_baseline_demo.py'
    opts = [f'{s}_dataloader.{k}' for s in ('train', 'val') for k in ('num_workers=0', 'persistent_workers=False')]
    with pytest.raises(SystemExit) as info:
        load_tool('train').main([str(config), '--work-dir', str(tmp_path / 'w'), '--data-root', str(root),
                                 '--cfg-options', 'train_dataloader.batch_size=4', *opts])
    message = str(info.value)
    assert '3 images < batch size 4 (drop_last)' in message and str(root) in message

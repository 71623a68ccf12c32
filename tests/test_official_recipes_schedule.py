"""Every official config's lr schedule = timm's ``CosineLRScheduler`` built with the official arguments and stepped
the way the official training loop steps it, at every epoch (and iteration) of a short-epoch run.

The official loops (read at Beckschen/TransMix@0e4d31e, Sense-X/TokenMix@0e17d5d, fistyee/MixPro@53a229e):
* TransMix ``train.py`` (timm 0.5.4 ``create_scheduler``): ``CosineLRScheduler(t_initial=epochs, warmup_t,
  warmup_lr_init, lr_min, cycle_limit=1, t_in_epochs=True)``; ``lr_scheduler.step(epoch + 1)`` after each epoch,
  ``step_update`` per iteration (a no-op when ``t_in_epochs``); + ``--cooldown-epochs 10`` trained at ``lr_min``.
* TokenMix ``main.py`` (timm 0.5.4 ``create_scheduler``, same arguments, 300 + 10 epochs):
  ``lr_scheduler.step(epoch)`` after epoch ``epoch`` — one epoch late.
* MixPro ``lr_scheduler.py`` (Swin's, timm 0.4.12): ``CosineLRScheduler(t_initial=EPOCHS·n_iter, t_mul=1.,
  lr_min, warmup_lr_init, warmup_t=WARMUP_EPOCHS·n_iter, cycle_limit=1, t_in_epochs=False)`` (no
  ``warmup_prefix``: False); ``main.py`` calls ``lr_scheduler.step_update(epoch·n_iter + idx)`` after iteration
  ``idx`` — one iteration late. The DeiT and the Swin configs share that code.
Ours: the config's ``param_scheduler`` built as mmengine's Runner builds it (``end`` defaults to ``max_epochs``,
``epoch_length`` = iterations per epoch) and stepped as its ``ParamSchedulerHook`` steps it.
"""
import copy
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

import pretrain.schedulers  # noqa: F401  (registers TimmCosineLR in pretrain's scope)

ROOT = Path(__file__).resolve().parents[1]
N_ITER = 3  # iterations per epoch of the replay (the schedule's shape does not depend on it)

TM, TK, MP = 'Beckschen/TransMix@0e4d31e', 'Sense-X/TokenMix@0e17d5d', 'fistyee/MixPro@53a229e'
# official arguments: lr, warmup epochs, warmup lr, min lr, cosine epochs, cooldown epochs, the loop, and sources
_TRANSMIX = dict(lr=1e-3, warmup=5, warmup_lr=1e-6, min_lr=1e-5, epochs=300, cooldown=10, loop='transmix',
                 source=f'{TM} configs/deit_b_transmix.yaml (lr, warmup_epochs, warmup_lr, min_lr), train.py '
                        f'--epochs 300 / --cooldown-epochs 10 defaults, lr_scheduler.step(epoch + 1)')
_TOKENMIX = dict(lr=1e-3, warmup=5, warmup_lr=1e-6, min_lr=1e-5, epochs=300, cooldown=10, loop='tokenmix',
                 source=f'{TK} main.py --lr 5e-4 × 1024 / 512, --warmup-epochs 5, --warmup-lr 1e-6, --min-lr 1e-5, '
                        f'--cooldown-epochs 10, exp/deit_small/run.sh --epochs 300, lr_scheduler.step(epoch)')
_MIXPRO = dict(lr=1e-3, warmup=20, warmup_lr=1e-6, min_lr=1e-5, epochs=300, cooldown=0, loop='mixpro',
               source=f'{MP} config.py TRAIN.EPOCHS 300 / WARMUP_EPOCHS 20, main.py BASE_LR 1e-3 / WARMUP_LR 1e-6 / '
                      f'MIN_LR 1e-5 constants, lr_scheduler.py, main.py step_update(epoch * num_steps + idx)')
OFFICIAL = {
    'deit-t_transmix-official_8xb32-300e_in1k.py': _TRANSMIX,
    'deit-s_transmix-official_8xb32-300e_in1k.py': dict(
        _TRANSMIX, warmup=20, source=_TRANSMIX['source'] + f'; {TM} configs/deit_s_transmix.yaml warmup_epochs 20'),
    'deit-b_transmix-official_8xb32-300e_in1k.py': _TRANSMIX,
    **{f'deit-{s}_tokenmix-official_8xb128-300e_in1k.py': _TOKENMIX for s in 'tsb'},
    **{f'deit-{s}_mixpro-official_8xb{64 if s == "b" else 128}-300e_in1k.py': _MIXPRO for s in 'tsb'},
    **{f'swin-{s}_mixpro-official_8xb128-300e_in1k.py': _MIXPRO for s in 'ts'},
}


def official_lrs(o, n_iter):
    """The lr of every training iteration of the official loop (timm's scheduler, stepped as the official code)."""
    from timm.scheduler import CosineLRScheduler
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=o['lr'])
    per_iter = o['loop'] == 'mixpro'
    k = n_iter if per_iter else 1
    sched = CosineLRScheduler(opt, t_initial=o['epochs'] * k, lr_min=o['min_lr'], warmup_lr_init=o['warmup_lr'],
                              warmup_t=o['warmup'] * k, cycle_limit=1, t_in_epochs=not per_iter)
    # timm create_scheduler: num_epochs = get_cycle_length() + cooldown_epochs (TransMix / TokenMix train them all)
    total = (sched.get_cycle_length() if not per_iter else o['epochs']) + o['cooldown']
    lrs, num_updates = [], 0
    for epoch in range(total):
        for idx in range(n_iter):
            lrs.append(opt.param_groups[0]['lr'])
            opt.step()
            num_updates += 1
            if per_iter:
                sched.step_update(epoch * n_iter + idx)  # MixPro main.py, after the iteration
            else:
                sched.step_update(num_updates=num_updates)  # timm train.py: no-op with t_in_epochs=True
        if o['loop'] == 'transmix':
            sched.step(epoch + 1)
        elif o['loop'] == 'tokenmix':
            sched.step(epoch)
    return lrs


def our_lrs(cfg, n_iter):
    """The lr of every training iteration of an mmengine run of ``cfg`` (Runner's build, ParamSchedulerHook's steps)."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    wrapper = OptimWrapper(opt)
    max_epochs = cfg.train_cfg.max_epochs
    scheds = []
    for s in copy.deepcopy(cfg.param_scheduler):
        s = dict(s)
        s.setdefault('end', max_epochs if s.get('by_epoch', True) else max_epochs * n_iter)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):  # as the Runner builds it
            scheds.append(PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=wrapper, epoch_length=n_iter)))
    lrs = []
    for _ in range(max_epochs):
        for _ in range(n_iter):
            lrs.append(opt.param_groups[0]['lr'])
            wrapper.step()
            for s in scheds:
                if not s.by_epoch:
                    s.step()
        for s in scheds:
            if s.by_epoch:
                s.step()
    return lrs


def test_every_official_config_is_listed():
    present = {p.name for p in (ROOT / 'configs/pretrain').glob('*-official_*.py')}
    assert present == set(OFFICIAL)


@pytest.mark.parametrize('name', sorted(OFFICIAL), ids=lambda n: n.split('_in1k')[0])
def test_official_lr_schedule_is_timms_as_the_official_loop_steps_it(name):
    o = OFFICIAL[name]
    cfg = Config.fromfile(str(ROOT / 'configs/pretrain' / name))
    sched, = cfg.param_scheduler
    assert sched.type == 'TimmCosineLR', f'{name}: timm cosine from step 0 ({o["source"]})'
    assert math.isclose(cfg.optim_wrapper.optimizer.lr, o['lr'], rel_tol=1e-12), o['source']
    assert cfg.train_cfg.max_epochs == o['epochs'] + o['cooldown'], o['source']
    want, got = official_lrs(o, N_ITER), our_lrs(cfg, N_ITER)
    assert len(got) == len(want)
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if not math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-15)]
    assert not bad, f'{name}: {len(bad)} iterations differ from the official schedule, first (iter, ours, official): ' \
                    f'{bad[:3]} ({o["source"]})'
    # the points that tell the shapes apart: the start, the warmup's end, mid-cosine, the cosine's end
    per = N_ITER if o['loop'] == 'mixpro' else 1
    for epoch in (0, 1, o['warmup'], o['warmup'] + 1, 150, o['epochs'] - 1):
        i = epoch * N_ITER
        assert math.isclose(got[i], want[i], rel_tol=1e-9), (name, epoch)
    assert got[0] == o['warmup_lr'] and got[-1] == pytest.approx(o['min_lr'], rel=1e-2 if per > 1 else 1e-9)


def test_tokenmix_epoch_1_still_trains_at_the_warmup_lr():
    """TokenMix's step(epoch) after the epoch: epoch e trains at timm's lr(e - 1) — epochs 0 and 1 at 1e-6."""
    cfg = Config.fromfile(str(ROOT / 'configs/pretrain/deit-s_tokenmix-official_8xb128-300e_in1k.py'))
    lrs = our_lrs(cfg, 1)
    assert lrs[0] == lrs[1] == 1e-6 and lrs[2] == pytest.approx(1e-6 + (1e-3 - 1e-6) / 5)
    assert lrs[6] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 5 / 300)))


@pytest.mark.parametrize('lag', [-1, 1.5, True, '1'])
def test_timm_cosine_lr_refuses_a_bad_lag(lag):
    from pretrain.schedulers import TimmCosineLR
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    with pytest.raises(ValueError, match='integer lag >= 0'):
        TimmCosineLR(opt, t_initial=10, warmup_t=2, lag=lag)


def test_lag_is_not_converted_with_the_epochs():
    """convert_to_iter_based scales t_initial / warmup_t by the epoch length; lag counts iterations as given."""
    from pretrain.schedulers import TimmCosineLR
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    s = TimmCosineLR.build_iter_from_epoch(opt, t_initial=10, warmup_t=2, lag=1, by_epoch=True, epoch_length=4)
    assert (s.t_initial, s.warmup_t, s.lag, s.by_epoch) == (40, 8, 1, False)

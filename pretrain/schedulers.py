"""timm's cosine learning-rate schedule as an mmengine parameter scheduler (for the official-family configs).

The official TransMix (timm 0.5.4 ``train.py``), TokenMix (``main.py``, timm 0.5.4 ``create_scheduler``) and MixPro
(Swin's ``lr_scheduler.py`` on timm 0.4.12; its DeiT and Swin configs alike) runs use
``timm.scheduler.CosineLRScheduler`` with one cycle and ``warmup_prefix=False``: a linear warmup from
``warmup_lr_init`` for ``warmup_t`` steps, then ``lr_min + ½(lr − lr_min)(1 + cos(π·t / t_initial))`` with t
counted **from 0**, not from the end of the warmup; after ``t_initial``, ``lr_min`` (timm's cooldown epochs).
mmengine's ``LinearLR`` + ``CosineAnnealingLR(begin=warmup)`` start the cosine at the end of the warmup, which
shifts it by up to 1.5 % of the peak lr for 5 warmup epochs of 300 and 6.2 % for 20 — no mmengine scheduler has
timm's phase, hence this closed form (written by hand for that reason; the formula is timm's
``CosineLRScheduler._get_lr`` with ``t_mul = 1``, ``k_decay = 1``, ``cycle_limit = 1``).

``warmup_lr_init`` and ``lr_min`` are absolute, as in timm: ``--auto-scale-lr`` (mmengine ``scale_lr``) scales the
peak lr only (DeiT's rule).

``lag``: where the official loop sets the lr late, step ``t`` trains at timm's lr of step ``max(t − lag, 0)``.
TransMix (timm ``train.py``: ``lr_scheduler.step(epoch + 1)`` after each epoch) has none; TokenMix (DeiT-style
``main.py``: ``lr_scheduler.step(epoch)`` *after* epoch ``epoch``) trains epoch ``e`` at lr(e − 1), epochs 0 and 1
both at ``warmup_lr_init``: ``lag=1`` epoch; MixPro (Swin's ``main.py``: ``lr_scheduler.step_update(epoch·n + idx)``
after iteration ``idx``) trains iteration ``k`` at lr(k − 1): ``lag=1`` iteration. mmengine steps a scheduler after
each epoch / iteration, so that step ``t`` trains at the value computed for ``t``: without ``lag`` that is timm's
lr(t).
"""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from .registry import PARAM_SCHEDULERS

__all__ = ['TimmCosineLR', 'timm_cosine_lr']


def timm_cosine_lr(t: int, base_lr: float, t_initial: int, warmup_t: int = 0, warmup_lr_init: float = 0.,
                   lr_min: float = 0.) -> float:
    """The lr of timm's ``CosineLRScheduler`` (one cycle, no warmup prefix) at step ``t``."""
    t = max(t, 0)
    if t < warmup_t:
        return warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t
    if t < t_initial:
        return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * t / t_initial))
    return lr_min


@PARAM_SCHEDULERS.register_module()
class TimmCosineLR(LRSchedulerMixin, _ParamScheduler):
    """timm ``CosineLRScheduler(t_initial, warmup_t, warmup_lr_init, lr_min)`` (see the module docstring).

    Steps are epochs with ``by_epoch=True`` (timm ``t_in_epochs=True``: TransMix) or iterations; an epoch-based
    config with ``convert_to_iter_based=True`` scales ``t_initial`` and ``warmup_t`` by the epoch length (MixPro's
    ``t_in_epochs=False`` schedule over ``epochs × iterations per epoch``). ``lag`` (see the module docstring)
    counts this scheduler's own steps — iterations after that conversion — and is never converted.
    """

    def __init__(self, optimizer, t_initial: int, warmup_t: int = 0, warmup_lr_init: float = 0.,
                 lr_min: float = 0., lag: int = 0, begin: int = 0, end: int = INF, last_step: int = -1,
                 by_epoch: bool = True, verbose: bool = False):
        if t_initial <= 0 or not 0 <= warmup_t < t_initial:
            raise ValueError(f'TimmCosineLR needs t_initial > 0 and 0 <= warmup_t < t_initial, got '
                             f't_initial={t_initial}, warmup_t={warmup_t}')
        if not isinstance(lag, int) or isinstance(lag, bool) or lag < 0:
            raise ValueError(f'TimmCosineLR needs an integer lag >= 0 (steps the official loop sets the lr late), '
                             f'got lag={lag!r}')
        self.lag = lag
        self.t_initial = int(t_initial)
        self.warmup_t = int(warmup_t)
        self.warmup_lr_init = float(warmup_lr_init)
        self.lr_min = float(lr_min)
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, t_initial, warmup_t=0, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        assert by_epoch, 'Only epoch-based kwargs whose `by_epoch=True` can be converted to iter-based.'
        assert epoch_length is not None and epoch_length > 0, f'epoch_length must be > 0, got {epoch_length}'
        return cls(*args, t_initial=int(t_initial * epoch_length), warmup_t=int(warmup_t * epoch_length),
                   begin=int(begin * epoch_length), end=end if end == INF else int(end * epoch_length),
                   by_epoch=False, **kwargs)

    def _get_value(self):
        t = self.last_step - self.lag
        return [timm_cosine_lr(t, base, self.t_initial, self.warmup_t, self.warmup_lr_init, self.lr_min)
                for base in self.base_values]

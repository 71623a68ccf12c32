"""Training curves in TensorBoard: one switch for every stage.

Every runtime (``configs/_base_/default_runtime.py``, ``seg_runtime.py``, ``det_runtime.py``; the demo runtimes
inherit them) has ``tensorboard = False``; ``tensorboard = True`` in a config, ``--cfg-options tensorboard=True``
or ``tools/train.py --tensorboard`` adds mmengine's ``TensorboardVisBackend`` to the visualizer, next to the
``LocalVisBackend`` (JSON scalars): event files then go to ``<work_dir>/<timestamp>/vis_data/``, read with
``tensorboard --logdir <work_dir>``. The switch is applied in code (a ``_base_`` expression would not see a
child config's or ``--cfg-options``' value).
"""
from __future__ import annotations

import importlib.util

BACKEND = 'TensorboardVisBackend'


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (needed by ``torch.utils.tensorboard``) is installed."""
    return importlib.util.find_spec('tensorboard') is not None


def enable_tensorboard(cfg, on: bool | None = None) -> bool:
    """Add ``TensorboardVisBackend`` to ``cfg.visualizer`` when ``on`` (default: the config's ``tensorboard``).

    Raises ``ModuleNotFoundError`` with the install command when the package is missing (mmengine would only fail
    at the first logged scalar, after the run has started). Returns whether it is on.
    """
    on = bool(cfg.get('tensorboard', False)) if on is None else bool(on)
    if not on:
        return False
    if not tensorboard_available():
        raise ModuleNotFoundError(
            'TensorBoard logging is on (tensorboard=True / --tensorboard) but the tensorboard package is not '
            'installed: pip install tensorboard (into this environment), or switch it off')
    cfg.tensorboard = True
    visualizer = dict(cfg.get('visualizer') or dict(type='Visualizer'))
    backends = [dict(b) for b in (visualizer.get('vis_backends') or cfg.get('vis_backends')
                                  or [dict(type='LocalVisBackend')])]
    if not any(b.get('type') == BACKEND for b in backends):
        backends.append(dict(type=BACKEND))
    visualizer['vis_backends'] = backends
    cfg.visualizer = visualizer
    cfg.vis_backends = backends
    return True

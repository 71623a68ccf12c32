"""What a result was trained and evaluated on: data root, dataset size and schedule, recorded with every
``results/<tag>.json`` so that the tables can tell a paper-setup run from a toy one (:mod:`mixseg.tables`).

* :class:`RunSetupHook` (added to every run by ``tools/train.py``, :func:`mixseg.run_preparation.prepare_training`)
  records the training side when the run starts — data root, number of training (and validation) images,
  ``max_iters`` / ``max_epochs``, batch per GPU, GPUs, total batch, and whether the data is the generated demo
  data — in the runner's message hub and in the ``meta`` of every checkpoint (:data:`SETUP_KEY`); stage 1's
  backbone files carry it in their metadata (:class:`pretrain.export.BackboneExportHook`).
* :func:`result_setup` (``tools/test.py``) joins that record, read from the checkpoint, with the evaluated
  data (root and images). A checkpoint of an older run has no record: the schedule and data root come from the
  config stored in it, the number of training images stays unknown (``None``), and the tables say so.
"""
from __future__ import annotations

import json
import os.path as osp
from pathlib import Path

from mmengine.hooks import Hook
from .registry import HOOKS

#: key of the training record in ``checkpoint['meta']``, the message hub and backbone-file metadata
SETUP_KEY = 'mixseg_setup'


def dataset_root(dataset_cfg) -> str | None:
    """The ``data_root`` of a dataset config, looking through wrappers (``RepeatDataset`` …: ``dataset``,
    ``ConcatDataset``: the first of ``datasets``)."""
    while isinstance(dataset_cfg, dict):
        if dataset_cfg.get('data_root'):
            return str(dataset_cfg['data_root'])
        inner = dataset_cfg.get('dataset')
        if inner is None and dataset_cfg.get('datasets'):
            inner = dataset_cfg['datasets'][0]
        dataset_cfg = inner
    return None


def demo_marker(data_root) -> dict | None:
    """``dict(dataset, size, seed)`` when ``data_root`` is generated demo data (:mod:`mixcore.demo_data` puts a
    ``.complete`` marker in the dataset's top folder, at or up to two levels above the data root), else None."""
    if not data_root:
        return None
    from .demo_data import MARKER
    root = Path(data_root).resolve()
    for top in (root, *list(root.parents)[:2]):
        try:
            marker = json.loads((top / MARKER).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(marker, dict) and (top.parent / str(marker.get('data_root', ''))).resolve() in (root, top):
            return {k: marker.get(k) for k in ('dataset', 'size', 'seed')}
    return None


def _len(loader) -> int | None:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


def _batch_size(loader) -> int | None:
    size = getattr(loader, 'batch_size', None) or getattr(getattr(loader, 'batch_sampler', None), 'batch_size', None)
    return int(size) if size else None


def training_setup(runner) -> dict:
    """The training side of a run (the loops and loaders are built: call from ``before_train`` on)."""
    from mmengine.dist import get_world_size
    from mmengine.runner import EpochBasedTrainLoop
    loop = runner.train_loop
    loader = loop.dataloader
    root = dataset_root((runner.cfg.get('train_dataloader') or {}).get('dataset'))
    batch, gpus = _batch_size(loader), get_world_size()
    by_epoch = isinstance(loop, EpochBasedTrainLoop)   # (mmengine's IterBasedTrainLoop has max_epochs = 1 too)
    val_loop = getattr(runner, '_val_loop', None)
    val_loader = getattr(val_loop, 'dataloader', None) if val_loop is not None and not isinstance(val_loop, dict) \
        else None
    return dict(data_root=root and osp.abspath(root), train_images=_len(loader),
                val_images=_len(val_loader) if val_loader is not None else None,
                max_epochs=int(loop.max_epochs) if by_epoch else None,
                max_iters=None if by_epoch else int(loop.max_iters), batch_size=batch, gpus=gpus,
                total_batch=batch * gpus if batch else None, demo=demo_marker(root), recorded='training run')


@HOOKS.register_module()
class RunSetupHook(Hook):
    """Record :func:`training_setup` when training starts: in the message hub (:data:`SETUP_KEY`, where the
    backbone export finds it) and in the ``meta`` of every checkpoint saved (where ``tools/test.py`` finds it)."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self.setup = None

    def before_train(self, runner) -> None:
        self.setup = training_setup(runner)
        runner.message_hub.update_info(SETUP_KEY, self.setup)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.setup is not None:
            checkpoint.setdefault('meta', {})[SETUP_KEY] = dict(self.setup)


def add_setup_hook(cfg) -> None:
    """Every training run records its setup (:class:`RunSetupHook`, once)."""
    hooks = [h for h in (cfg.get('custom_hooks') or []) if h.get('type') != 'mixcore.RunSetupHook']
    cfg.custom_hooks = hooks + [dict(type='mixcore.RunSetupHook')]


def _from_stored_config(stored: dict) -> dict:
    """What the config stored in a checkpoint says of the training (runs from before :class:`RunSetupHook`):
    schedule, batch per GPU and data root; the images and GPUs are unknown."""
    train_cfg = stored.get('train_cfg') or {}
    loader = stored.get('train_dataloader') or {}
    by_epoch = 'max_epochs' in train_cfg or train_cfg.get('type') == 'EpochBasedTrainLoop'
    root = dataset_root(loader.get('dataset'))
    return dict(data_root=root, train_images=None, val_images=None,
                max_epochs=train_cfg.get('max_epochs') if by_epoch else None,
                max_iters=None if by_epoch else train_cfg.get('max_iters'), batch_size=loader.get('batch_size'),
                gpus=None, total_batch=None, demo=demo_marker(root),
                recorded='the config stored in the checkpoint (older run: images and GPUs not recorded)')


def checkpoint_setup(checkpoint: str) -> dict | None:
    """The training record of the run that wrote ``checkpoint`` (:data:`SETUP_KEY` in its meta), else what its
    stored config says (:func:`_from_stored_config`), else None (a checkpoint without either: unknown)."""
    if not checkpoint or '://' in str(checkpoint) or not osp.isfile(checkpoint):
        return None
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.read import read_file
    from .stored_config import plain_config
    try:
        ckpt = read_file(checkpoint, mmap=True)
        meta = (ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
        if isinstance(meta.get(SETUP_KEY), dict):
            return dict(meta[SETUP_KEY])
        text = meta.get('cfg')
        return _from_stored_config(plain_config(text, checkpoint).to_dict()) if text else None
    except CheckpointError:
        return None


def evaluated_setup(cfg, runner) -> dict:
    """The data the test ran on: root and number of images (after ``runner.test()``)."""
    root = dataset_root((cfg.get('test_dataloader') or {}).get('dataset'))
    loop = getattr(runner, '_test_loop', None)
    loader = getattr(loop, 'dataloader', None) if loop is not None and not isinstance(loop, dict) else None
    return dict(data_root=root and osp.abspath(root), images=_len(loader) if loader is not None else None,
                demo=demo_marker(root))


def result_setup(checkpoint: str, cfg, runner) -> dict:
    """The ``setup`` entry of a results file: ``train`` (:func:`checkpoint_setup`, None: unknown) and ``test``
    (:func:`evaluated_setup`)."""
    return dict(train=checkpoint_setup(checkpoint), test=evaluated_setup(cfg, runner))

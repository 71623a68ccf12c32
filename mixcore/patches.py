"""Every patch this project applies to torch, mmengine and timm: one list, one :func:`install`.

Importing a module of ``mixseg`` or ``pretrain`` changes nothing global; the patches take effect only when
:func:`install` runs. The tools call it explicitly; configs name :mod:`mixseg.install_patches` (stage 2) or
:mod:`pretrain.install_patches` (stage 1) in ``custom_imports``, modules that install on import by design, so a
run started with mmseg's/mmdet's/mmengine's own ``tools/train.py`` gets the same safe loading.

Each :class:`Patch` says what it fixes and for which upstream version, and names the function that applies it
(``'module:function'``, imported only by :func:`install`). Stage-1 patches are listed in
:mod:`pretrain.patches`, which adds them here with :func:`register` (mixseg never imports pretrain).
:func:`install` is idempotent: every function it calls may run any number of times.
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    name: str
    fixes: str      #: what goes wrong without it
    upstream: str   #: the upstream package and version it was written against
    apply: str      #: 'module:function' that applies it (idempotent)

    def function(self):
        module, _, func = self.apply.partition(':')
        return getattr(importlib.import_module(module), func)


PATCHES: list[Patch] = [
    Patch('safe-globals', "torch's weights_only loading rejects the mmengine/numpy types in our and OpenMMLab "
          'checkpoints (message hub, history buffers, numpy scalars)', 'torch 2.14, mmengine 0.10.7',
          'mixcore.weights.safe_globals:install_safe_globals'),
    Patch('history-buffer-state', "mmengine's HistoryBuffer pickles its statistics methods (functions), which "
          'weights_only loading cannot read back on resume', 'mmengine 0.10.7',
          'mixcore.weights.safe_globals:patch_history_buffer'),
    Patch('checkpoint-schemes', "mmengine's CheckpointLoader schemes (local, http(s), modelzoo/torchvision, "
          'open-mmlab, mmcls, pavi, s3/petrel) and load_url call torch.load with weights_only=False; they are '
          'replaced by the safe reader (mixcore.weights.mmengine_schemes)', 'mmengine 0.10.7',
          'mixcore.weights.mmengine_schemes:install'),
    Patch('find-latest-checkpoint', "mmengine's find_latest_checkpoint (Runner resume=True) trusts a "
          'last_checkpoint record naming a missing or foreign file; mixcore.workdir.latest_checkpoint checks it',
          'mmengine 0.10.7', 'mixcore.workdir:install_latest_checkpoint'),
    Patch('atomic-checkpoints', "mmengine's save_checkpoint writes in place, so a run killed mid-write leaves a "
          'truncated iter_N.pth that resume picks up', 'mmengine 0.10.7',
          'mixcore.runtime:install_atomic_checkpoints'),
    Patch('pkg-resources-warning', "mmengine's Config resolves mmdet:: bases through pkg_resources, which "
          'setuptools >= 80 warns about on every import (1-4 times per tool start); only that message is '
          'silenced', 'mmengine 0.10.7, setuptools 80.9', 'mixcore.patches:silence_pkg_resources_warning'),
]


def silence_pkg_resources_warning() -> None:
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API', category=UserWarning)


def register(*patches: Patch) -> None:
    """Add patches to :data:`PATCHES` (a patch of the same name is replaced, so registering twice is harmless)."""
    for patch in patches:
        PATCHES[:] = [p for p in PATCHES if p.name != patch.name] + [patch]


_installed: set[str] = set()


def install() -> list[str]:
    """Apply every patch of :data:`PATCHES` (once each); the names of those in effect."""
    for patch in list(PATCHES):
        if patch.name not in _installed:
            patch.function()()
            _installed.add(patch.name)
    return sorted(_installed)

"""``tools/test.py CONFIG CKPT`` evaluates as the run that wrote CKPT was configured.

A training run's overrides (``--data-root``, ``--cfg-options model.decode_head.num_classes=...``) are not in the
config file; mmengine stores the run's resolved config in every checkpoint (``meta['cfg']``). The entries of that
stored config that differ from the config file, within what evaluation uses (:data:`TEST_KEYS`), are applied to
the config before the test's own ``--data-root``/``--cfg-options`` (which win), and listed in the log.

The stored config is untrusted input: it is read as data (:func:`mixcore.stored_config.plain_config`), and no
``type`` entry, weight file or init setting is taken from it (:data:`NOT_TAKEN`): nothing it names is imported,
built or loaded. Settings a tool adapts to the machine (workers, pinned memory, where results are gathered,
device-side input) are not taken either; entries whose structure differs (a pipeline of another length) are
named in the log, to be given with ``--cfg-options`` if wanted.
"""
from __future__ import annotations

from typing import Any

#: the top-level entries evaluation reads
TEST_KEYS = ('data_root', 'model', 'test_dataloader', 'test_evaluator', 'test_cfg', 'tta_model', 'tta_pipeline')
#: entries never taken from a stored config (see module doc)
NOT_TAKEN = frozenset({'type', 'checkpoint', 'pretrained', 'init_cfg', 'data_preprocessor', 'uint8', 'num_workers',
                       'persistent_workers', 'pin_memory', 'prefetch_factor', 'collect_device'})


def stored_training_config(checkpoint: str) -> dict:
    """The config stored in ``checkpoint`` as plain data (empty: none stored, a URL, or unreadable — the run
    itself reports a bad file)."""
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.read import read_file
    from .stored_config import plain_config
    if '://' in str(checkpoint):
        return {}
    try:
        ckpt = read_file(checkpoint, mmap=True)
        text = ((ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}).get('cfg')
        return plain_config(text, checkpoint).to_dict() if isinstance(text, str) and text else {}
    except CheckpointError:
        return {}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _holds_type(v: Any) -> bool:
    if isinstance(v, dict):
        return 'type' in v or any(_holds_type(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_holds_type(x) for x in v)
    return False


def _diff(file: Any, stored: Any, path: str, taken: dict, skipped: list) -> None:
    if isinstance(file, dict) and isinstance(stored, dict):
        for k, v in stored.items():
            if k in NOT_TAKEN:
                continue
            p = f'{path}.{k}'
            if k in file:
                _diff(file[k], v, p, taken, skipped)
            elif _holds_type(v):
                skipped.append(p)
            else:
                taken[p] = v
    elif isinstance(file, (list, tuple)) and isinstance(stored, (list, tuple)) and len(file) == len(stored):
        for i, (a, b) in enumerate(zip(file, stored)):
            _diff(a, b, f'{path}.{i}', taken, skipped)
    elif _plain(file) != _plain(stored):
        if _holds_type(file) or _holds_type(stored):
            skipped.append(path)
        else:
            taken[path] = stored


def training_overrides(file_cfg: dict, stored: dict) -> tuple[dict, list]:
    """``({dotted key: stored value}, [keys that differ but are not taken])`` between the config file and
    the stored training config, within :data:`TEST_KEYS`."""
    taken, skipped = {}, []
    for key in TEST_KEYS:
        if key in stored and key in file_cfg:
            _diff(file_cfg[key], stored[key], key, taken, skipped)
        elif key in stored and not _holds_type(stored[key]):
            taken[key] = stored[key]
    return taken, skipped


def apply_training_overrides(cfg, checkpoint: str, log=print) -> dict:
    """Apply the training run's overrides stored in ``checkpoint`` to ``cfg`` (the config file as read); returns
    what was applied."""
    stored = stored_training_config(checkpoint)
    if not stored:
        return {}
    taken, skipped = training_overrides(cfg.to_dict(), stored)
    if taken:
        cfg.merge_from_dict(taken)
        shown = ', '.join(f'{k}={v!r}' for k, v in taken.items())
        log(f'mixseg: from the training run stored in {checkpoint}: {shown} (give --data-root / --cfg-options '
            f'to evaluate otherwise)')
    if skipped:
        log(f'mixseg: the training run stored in {checkpoint} also differs from the config in {", ".join(skipped)}; '
            f'not taken (they name types), pass them with --cfg-options if the test needs them')
    return taken

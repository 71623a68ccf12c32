"""``--cfg-options`` that would change nothing are errors.

mmengine merges ``--cfg-options`` into the *parsed* config. A config's own variables (``data_root``,
``max_epochs``, ``crop_size``, ``pretrained`` ...) have been substituted into the entries that use them when the
file was read, so ``--cfg-options max_epochs=1`` or ``data_root=...`` sets a top-level key that nothing reads, and
the run silently uses the old values. After parsing, only the keys the Runner takes and a few the tools read
(:func:`runtime_keys`) are read at the top level; any other top-level key in ``--cfg-options`` is refused with
the key named and what to use instead (``--data-root``; the nested entries of the same name, e.g.
``train_cfg.max_epochs``).
"""
from __future__ import annotations

from typing import Iterable, Mapping

#: top-level keys read after parsing besides the Runner's arguments: mmengine's Runner (from ``cfg``), the
#: tools (mixcore.runtime, tools/test.py, mixseg.tables) and Config itself
EXTRA_RUNTIME_KEYS = frozenset({
    'model_wrapper_cfg', 'find_unused_parameters', 'compile', 'activation_checkpointing', 'efficient_conv_bn_eval',
    'runner_type', 'table_row', 'tta_model', 'tta_pipeline', 'tensorboard',
})


def runtime_keys() -> frozenset:
    """Top-level config keys something reads after the config is parsed."""
    import inspect

    from mmengine.runner import Runner
    params = set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    return frozenset(params) | EXTRA_RUNTIME_KEYS


def _paths_named(obj, name: str, prefix: str = '', out=None, limit: int = 5) -> list:
    out = [] if out is None else out
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            path = f'{prefix}.{k}' if prefix else str(k)
            if k == name and prefix:
                out.append(path)
            _paths_named(v, name, path, out, limit)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _paths_named(v, name, f'{prefix}.{i}', out, limit)
    return out[:limit]


def unread_options(cfg, options: Mapping, known: Iterable[str] | None = None) -> list[str]:
    """One message per ``--cfg-options`` key whose top-level key nothing reads (empty: all fine)."""
    known = frozenset(known) if known is not None else runtime_keys()
    data = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    problems = []
    for key, value in options.items():
        top = str(key).split('.', 1)[0]
        if top in known:
            continue
        where = ('the config defines it as a variable, substituted into the entries that use it when the file '
                 'was read' if top in data else 'the config has no such entry')
        if top == 'data_root':
            fix = 'use --data-root DIR, which points every dataloader and evaluator at DIR'
        elif top in ('max_epochs', 'max_iters'):
            fix = (f'use tools/train.py --{top[4:]} {value} (or train_cfg.{top}={value}), which rescales every lr '
                   f'scheduler, warmup and interval with the loop')
        else:
            # only entries something reads (a path inside another config variable would be refused in turn)
            paths = [p for p in _paths_named(data, top, limit=1000) if p.split('.', 1)[0] in known][:5]
            fix = (f'set the entry that uses it instead: {" / ".join(f"{p}={value}" for p in paths)}' if paths else
                   'set the entries that use it instead (or change the variable in a config file that inherits '
                   'this one with _base_)')
        if top in ('num_classes', 'classes'):
            fix += '; for classes of your own: docs/OWN_DATA.md (one `classes` line sets dataset, label check and head)'
        problems.append(f'--cfg-options {key}={value}: nothing reads the top-level key {top!r} ({where}), so it '
                        f'would change nothing; {fix}')
    return problems


def check_cfg_options(cfg, options: Mapping, config_path: str) -> None:
    """Raise ``SystemExit`` (the tools' error exit) naming every ``--cfg-options`` key that would change nothing."""
    problems = unread_options(cfg, options)
    if problems:
        raise SystemExit('error: ' + '\nerror: '.join(f'{config_path}: {p}' for p in problems))

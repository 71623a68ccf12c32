"""Building modules from a config stored in a checkpoint (untrusted input) without importing or calling
anything the file names.

``tools/export_backbone.py`` rebuilds the model from the config mmengine stores in a checkpoint
(``meta['cfg']``), read as literals by :func:`pretrain.export.plain_config`. Reading it as data is not enough:
mmengine's ``Registry.get`` falls back to importing any ``type`` it does not find registered
(``get_object_from_string``: ``type='os.system'`` becomes :func:`os.system`, and an unregistered plain name is
tried as a module to import), and the builder then calls it with the config's arguments. Hence:

* :func:`check_stored_types` refuses, naming the file and the key, a ``type`` anywhere in the stored config that
  is a dotted import path (or not a string), and a ``type`` in the part that is built that no registry of the
  scope (the project's and mmengine's/mmseg's/mmdet's, with their own modules imported) has registered;
* :func:`no_import_fallback` switches mmengine's import fallback off while the model is built, so even a name
  the check let through can only ever resolve to a registered class.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

#: the modules that register the project's types per scope (fixed here, never taken from a stored config)
PROJECT_MODULES = {
    'pretrain': ('pretrain.classifier', 'pretrain.mixers', 'pretrain.data', 'pretrain.metrics', 'pretrain.export'),
    'mmseg': ('mixseg.backbones.vit', 'mixseg.datasets'),
    'mmdet': ('mixseg.backbones.pvt', 'mixseg.datasets'),
}


def iter_types(obj: Any, prefix: str = '') -> Iterator[tuple[str, Any]]:
    """``(key path, value)`` of every ``type`` entry in nested dicts / lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f'{prefix}.{k}' if prefix else str(k)
            if k == 'type':
                yield path, v
            else:
                yield from iter_types(v, path)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from iter_types(v, f'{prefix}[{i}]')


def registered_names(scope: str) -> set[str]:
    """Every name registered in mmengine's root registries and in their children of ``scope``, after importing
    the project's modules of that scope and the registries' own ``locations``."""
    import importlib

    import mmengine.registry as root
    from mmengine.registry import Registry
    if scope in ('mmseg', 'mmdet', 'pretrain'):
        importlib.import_module(f'{scope}.registry')
    for module in PROJECT_MODULES.get(scope, ()):
        importlib.import_module(module)
    names: set[str] = set()
    for registry in {id(v): v for v in vars(root).values() if isinstance(v, Registry)}.values():
        names.update(registry._module_dict)
        child = registry._children.get(scope)
        if child is not None:
            child.import_from_location()
            names.update(child._module_dict)
    return names


class StoredConfigError(ValueError):
    """A stored config names something that is not a registered type."""


def check_stored_types(cfg: dict, source: str, scope: str, built: str = 'model') -> None:
    """Refuse a stored config whose ``type`` entries could import or call code (see module doc).

    ``cfg``: the stored config as plain data; ``built``: the dotted key of the part that will be built (every
    ``type`` there must be registered in ``scope``); ``source``: the file, named in the error.
    """
    hint = ('a config stored in a checkpoint may only name types registered in the project\'s and the '
            'OpenMMLab registries; nothing it names is imported or called. If you trust the file, pass its '
            'config with --config')
    for key, value in iter_types(cfg):
        if not isinstance(value, str):
            raise StoredConfigError(f'{source}: {key} = {value!r} is not a type name; {hint}')
        if '.' in value:
            raise StoredConfigError(f'{source}: {key} = {value!r} is a dotted import path; {hint}')
    part: Any = cfg
    for k in built.split('.'):
        part = part.get(k) if isinstance(part, dict) else None
    if not isinstance(part, dict):
        raise StoredConfigError(f'{source}: the stored config has no {built} to build')
    names = registered_names(scope)
    for key, value in iter_types(part, built):
        if value not in names:
            raise StoredConfigError(f'{source}: {key} = {value!r} is not registered in the {scope!r} scope; {hint}')


@contextlib.contextmanager
def no_import_fallback(source: str):
    """While active, a ``type`` that mmengine's registries do not hold raises instead of being imported."""
    import mmengine.registry.registry as reg_module
    original = reg_module.get_object_from_string

    def refuse(name):
        raise StoredConfigError(f'{source}: type {name!r} is not registered; it is not imported from a stored config')

    reg_module.get_object_from_string = refuse
    try:
        yield
    finally:
        reg_module.get_object_from_string = original


def plain_config(text: str, source: str):
    """The config mmengine stores in a checkpoint (``meta['cfg']``, its ``pretty_text``), read as data.

    ``Config.fromstring`` would execute the text, and a checkpoint is untrusted input; the stored text is
    only assignments of literals and ``dict(...)`` calls, which are evaluated here without running anything
    (nothing in mmengine parses a config without executing it). Anything else is refused.
    """
    import ast

    from mmengine.config import Config

    from .checkpoint import CheckpointError

    class _DictCalls(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            # dict(k=v, ...) and dict({...}) — pretty_text writes non-identifier keys the second way
            if (isinstance(node.func, ast.Name) and node.func.id == 'dict' and all(kw.arg for kw in node.keywords)
                    and (not node.args or (len(node.args) == 1 and isinstance(node.args[0], ast.Dict)))):
                inner = node.args[0] if node.args else ast.Dict(keys=[], values=[])
                return ast.Dict(keys=inner.keys + [ast.Constant(kw.arg) for kw in node.keywords],
                                values=inner.values + [kw.value for kw in node.keywords])
            return node

    cfg = {}
    try:
        for stmt in ast.parse(text).body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                raise ValueError(f'line {stmt.lineno} is not a plain assignment')
            value = _DictCalls().visit(stmt.value)
            try:
                cfg[stmt.targets[0].id] = ast.literal_eval(value)
            except ValueError as e:
                raise ValueError(f'line {stmt.lineno} ({stmt.targets[0].id} = ...) is not plain data') from e
    except (SyntaxError, ValueError) as e:
        raise CheckpointError(f'{source}: the stored config is not plain data and is not executed ({e}); '
                              f'pass the pretraining config with --config') from e
    return Config(cfg)

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

``type`` is not the only key mmengine turns into an import: ``_scope_`` in any dict it builds switches the scope and
imports ``<scope>.registry`` (``build_from_cfg`` → ``Registry.switch_scope_and_registry``; so does a
``default_scope`` the Runner is given), the optimizer wrapper's ``constructor`` and the Runner's ``runner_type`` are
registry lookups with the same fallback as ``type``, and ``custom_imports`` is imported by ``Config.fromfile``.
:func:`check_stored_types` allows only the project's scopes (:data:`PROJECT_SCOPES`) and packages
(:data:`PROJECT_PACKAGES`) there, and :func:`no_import_fallback` also refuses any import the registries would make
of a module outside those packages while the model is built.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

#: the scopes a stored config may switch to (``_scope_``, ``default_scope``); mmengine imports ``<scope>.registry``
PROJECT_SCOPES = ('pretrain', 'mmseg', 'mmdet', 'mmengine')
#: the packages whose modules a stored config may make mmengine import (``custom_imports``, registry locations)
PROJECT_PACKAGES = ('mixcore', 'pretrain', 'mixseg', 'mmseg', 'mmdet', 'mmengine', 'mmcv')
#: keys besides ``type`` whose string value mmengine resolves like a ``type`` (registry, then import fallback)
TYPE_LIKE_KEYS = ('constructor', 'runner_type')


def iter_types(obj: Any, prefix: str = '', keys: tuple = ('type',)) -> Iterator[tuple[str, Any]]:
    """``(key path, value)`` of every entry named in ``keys`` (default ``type``) in nested dicts / lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f'{prefix}.{k}' if prefix else str(k)
            if k in keys:
                yield path, v
            else:
                yield from iter_types(v, path, keys)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from iter_types(v, f'{prefix}[{i}]', keys)


def registered_names(scope: str) -> set[str]:
    """Every name registered in mmengine's root registries and in their children of ``scope``, after importing
    the registries' own ``locations``. The project's modules that register into mmseg's/mmdet's registries are
    imported by the caller (the stage-2 layer: :func:`mixseg.dense_export.export_any_checkpoint`), never by name
    from here: this foundation module knows neither stage."""
    import importlib

    import mmengine.registry as root
    from mmengine.registry import Registry
    if scope in ('mmseg', 'mmdet', 'pretrain'):
        importlib.import_module(f'{scope}.registry')
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


def _scoped_name(value: str) -> bool:
    """``'<scope>.<Name>'`` with one of our registry scopes (``'mixcore.NaNGuardHook'``): a lookup in that scope's
    child registry (mmengine imports ``mixcore.registry`` / ``mixseg.registry``), not an import path. Inside the part
    that is built, it is still refused: only names registered in the config's scope are built from a stored config."""
    scope, _, name = value.partition('.')
    return scope in ('mixcore', 'mixseg') and name.isidentifier()


def check_stored_types(cfg: dict, source: str, scope: str, built: str = 'model') -> None:
    """Refuse a stored config whose ``type`` entries could import or call code (see module doc).

    ``cfg``: the stored config as plain data; ``built``: the dotted key of the part that will be built (every
    ``type`` there must be registered in ``scope``); ``source``: the file, named in the error.
    """
    hint = ('a config stored in a checkpoint may only name types registered in the project\'s and the '
            'OpenMMLab registries; nothing it names is imported or called. If you trust the file, pass its '
            'config with --config')
    for key, value in iter_types(cfg, keys=('type', *TYPE_LIKE_KEYS)):
        if not isinstance(value, str) and (key.endswith('.type') or key == 'type'):
            raise StoredConfigError(f'{source}: {key} = {value!r} is not a type name; {hint}')
        if isinstance(value, str) and '.' in value and not _scoped_name(value):
            raise StoredConfigError(f'{source}: {key} = {value!r} is a dotted import path; {hint}')
    _check_imports(cfg, source, hint)
    part: Any = cfg
    for k in built.split('.'):
        part = part.get(k) if isinstance(part, dict) else None
    if not isinstance(part, dict):
        raise StoredConfigError(f'{source}: the stored config has no {built} to build')
    names = registered_names(scope)
    for key, value in iter_types(part, built):
        if value not in names:
            raise StoredConfigError(f'{source}: {key} = {value!r} is not registered in the {scope!r} scope; {hint}')


def _check_imports(cfg: dict, source: str, hint: str) -> None:
    """The keys mmengine turns into imports besides ``type``: every ``_scope_`` and the ``default_scope`` must be
    one of :data:`PROJECT_SCOPES`, every ``custom_imports`` module in :data:`PROJECT_PACKAGES`."""
    scopes = list(iter_types(cfg, keys=('_scope_',)))
    if 'default_scope' in cfg:
        scopes.append(('default_scope', cfg['default_scope']))
    for key, value in scopes:
        if value is not None and value not in PROJECT_SCOPES:
            raise StoredConfigError(
                f'{source}: {key} = {value!r} is not one of the project\'s scopes ({", ".join(PROJECT_SCOPES)}); '
                f'mmengine would import {value!s}.registry for it; {hint}')
    imports = cfg.get('custom_imports')
    modules = imports.get('imports') if isinstance(imports, dict) else imports
    modules = [modules] if isinstance(modules, str) else modules
    if imports is not None and not isinstance(modules, (list, tuple)):
        raise StoredConfigError(f'{source}: custom_imports = {imports!r} is not a list of modules; {hint}')
    for i, module in enumerate(modules or ()):
        if not isinstance(module, str) or module.split('.')[0] not in PROJECT_PACKAGES:
            raise StoredConfigError(
                f'{source}: custom_imports.imports[{i}] = {module!r} is not a module of the project\'s packages '
                f'({", ".join(PROJECT_PACKAGES)}); {hint}')


@contextlib.contextmanager
def no_import_fallback(source: str):
    """While active, a ``type`` that mmengine's registries do not hold raises instead of being imported, and the
    registries import no module outside :data:`PROJECT_PACKAGES` (a ``_scope_`` switch imports ``<scope>.registry``)."""
    import mmengine.registry.registry as reg_module
    original, original_import = reg_module.get_object_from_string, reg_module.import_module

    def refuse(name):
        raise StoredConfigError(f'{source}: type {name!r} is not registered; it is not imported from a stored config')

    def project_import(name, package=None):
        if str(name).split('.')[0] not in PROJECT_PACKAGES:
            raise StoredConfigError(f'{source}: building the stored config would import {name!r} (a _scope_ '
                                    f'outside the project\'s scopes?); nothing outside '
                                    f'{", ".join(PROJECT_PACKAGES)} is imported from a stored config')
        return original_import(name, package)

    reg_module.get_object_from_string, reg_module.import_module = refuse, project_import
    try:
        yield
    finally:
        reg_module.get_object_from_string, reg_module.import_module = original, original_import


def plain_config(text: str, source: str):
    """The config mmengine stores in a checkpoint (``meta['cfg']``, its ``pretty_text``), read as data.

    ``Config.fromstring`` would execute the text, and a checkpoint is untrusted input; the stored text is
    only assignments of literals and ``dict(...)`` calls, which are evaluated here without running anything
    (nothing in mmengine parses a config without executing it). Anything else is refused.
    """
    import ast

    from mmengine.config import Config

    from mixcore.weights.errors import CheckpointError

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

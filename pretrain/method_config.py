"""A mixing method's config base, as the tools read it: ``configs/_base_/methods/<method>.py`` or a file of your own.

A method base holds three top-level keys and nothing else:

* ``mixer`` (required): the ``model.mixer`` of a pretraining, ``dict(type=<the method's recipe>, ...)``;
* ``loss`` (optional): the ``model.loss`` the method trains with (TokenMix: BCE);
* ``mixer_imports`` (optional): the modules that register a method of your own (its mixer in the stage-1 ``MODELS``
  registry, its :class:`~pretrain.mix.methods.MixMethod` with :func:`~pretrain.mix.methods.register_mix_method`);
  a pretraining config loads them through ``custom_imports``.

A leaf config takes it as one of its ``_base_`` files and writes ``model = dict(mixer=_base_.mixer)``.
``tools/reproduce.py --method NAME=CONFIG``, ``tools/visualize_mix.py --method NAME=CONFIG`` and
``tools/benchmark_mix.py --method NAME=CONFIG`` read it with :func:`read_method_config`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pretrain.mix.methods import MixMethod, get_mix_method, method_of_recipe

KEYS = ('mixer', 'loss', 'mixer_imports')


@dataclass(frozen=True)
class MethodConfig:
    name: str                 #: the registered method (work dirs, table rows, the backbone file's ``method``)
    path: Path                #: the method base file
    mixer: dict               #: ``model.mixer``
    loss: Optional[dict] = None       #: ``model.loss`` (None: the pretraining config's own)
    imports: tuple = ()       #: modules loaded before the mixer is built (a config's ``custom_imports``)
    digest: str = field(default='', compare=False)   #: of the file's text: generated configs follow its changes

    @property
    def method(self) -> MixMethod:
        return get_mix_method(self.name)


def import_method_modules(imports, source) -> None:
    """Import the modules of ``mixer_imports`` (as mmengine does for ``custom_imports``); an error names ``source``."""
    from mmengine.utils import import_modules_from_strings
    try:
        import_modules_from_strings(list(imports), allow_failed_imports=False)
    except ImportError as e:
        raise ValueError(f'{source}: mixer_imports: {e} (is its folder on PYTHONPATH?)') from e


def read_method_config(path, name: Optional[str] = None) -> MethodConfig:
    """Read a method base, import its modules and check that its mixer is a registered method's recipe (``name``,
    when given, must be that method). A ValueError names the file and what is wrong."""
    from mmengine.config import Config
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'{path}: method config not found')
    try:
        cfg = Config.fromfile(str(path), import_custom_modules=False).to_dict()
    except Exception as e:  # a syntax error, a missing _base_: mmengine's own message, with the file
        raise ValueError(f'{path}: cannot read the method config: {e}') from e
    other = sorted(k for k in cfg if k not in KEYS)
    if other:
        raise ValueError(f'{path}: a method config holds only {", ".join(KEYS)}; it also sets {", ".join(other)} '
                         f'(set those in the pretraining config)')
    mixer, loss, imports = cfg.get('mixer'), cfg.get('loss'), cfg.get('mixer_imports') or ()
    if not isinstance(mixer, dict) or not isinstance(mixer.get('type'), str):
        raise ValueError(f"{path}: `mixer` must be a dict with a `type` (the method's recipe), got {mixer!r}")
    if loss is not None and not (isinstance(loss, dict) and 'type' in loss):
        raise ValueError(f'{path}: `loss` must be a dict with a `type`, got {loss!r}')
    if isinstance(imports, str) or not all(isinstance(m, str) for m in imports):
        raise ValueError(f'{path}: `mixer_imports` must be a list of module names, got {imports!r}')
    import_method_modules(imports, path)
    from .mixers import MODELS
    if MODELS.get(mixer['type']) is None:
        raise ValueError(f"{path}: mixer type {mixer['type']!r} is not registered in pretrain's MODELS (register it "
                         f"with pretrain.registry.MODELS.register_module in a module of mixer_imports)")
    method = method_of_recipe(mixer['type'])
    if method is None:
        raise ValueError(f"{path}: mixer type {mixer['type']!r} is no registered method's recipe: register "
                         f"MixMethod({name or '<name>'!r}, <title>, recipe={mixer['type']!r}) with "
                         f"pretrain.mix.methods.register_mix_method in a module of mixer_imports")
    if name is not None and method != name:
        raise ValueError(f"{path}: its mixer {mixer['type']!r} is the recipe of method {method!r}, not {name!r}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return MethodConfig(method, path.resolve(), mixer, loss, tuple(imports), digest)


def parse_method_options(items) -> dict[str, MethodConfig]:
    """``NAME=CONFIG ...`` (the tools' ``--method``) as ``{name: MethodConfig}``; a ValueError names the item."""
    out: dict[str, MethodConfig] = {}
    for item in items or ():
        name, sep, path = str(item).partition('=')
        if not sep or not name or not path:
            raise ValueError(f'--method {item!r}: expected NAME=CONFIG (a method config such as '
                             f'configs/_base_/methods/transmix.py)')
        if name in out:
            raise ValueError(f'--method {item!r}: method {name!r} given twice')
        out[name] = read_method_config(path, name)
    return out


def build_method_mixer(method: MethodConfig, num_classes: int, patch_size: int, input_unit: Optional[int] = None):
    """The mixer of ``method`` for a model with ``num_classes`` and a ``patch_size``-px token grid, built as
    :class:`pretrain.classifier.MixClassifier` builds it (for the figures and the benchmark)."""
    from .classifier import fit_mixer_to_model
    from .mixers import MODELS
    return fit_mixer_to_model(MODELS.build(dict(method.mixer, num_classes=num_classes)), patch_size, input_unit)


def pretraining_config_text(method: MethodConfig, baseline_config) -> str:
    """A pretraining config: ``baseline_config`` (a model's baseline pretraining) with ``method``'s mixer (and
    loss), its modules added to ``custom_imports``: how a table run trains a method of ``--method``."""
    from mmengine.config import Config
    baseline_config = Path(baseline_config).resolve()
    base = Config.fromfile(str(baseline_config), import_custom_modules=False)
    imports = list((base.get('custom_imports') or {}).get('imports', []))
    imports += [m for m in method.imports if m not in imports]
    model = {'mixer': dict(_delete_=True, **method.mixer), 'method': method.name}
    if method.loss is not None:
        model['loss'] = dict(_delete_=True, **method.loss)
    return (f'# Generated from the method config {method.path} (sha256 {method.digest}…): the baseline pretraining '
            f'of\n# {baseline_config.name} with the mixing method {method.name!r}. Written again by every table run; '
            f'edit the method config.\n'
            f'_base_ = [{str(baseline_config)!r}]\n'
            f'model = {model!r}\n'
            f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n')


def write_pretraining_config(method: MethodConfig, baseline_config, out_root) -> Path:
    """Write :func:`pretraining_config_text` to ``<out_root>/<method>-<digest>/<baseline name, method swapped>``
    (a new folder when the method config changes, so runs of the old one count as stale); its path."""
    from mixcore.atomic_write import atomic_write_text
    name = Path(baseline_config).name
    if '_baseline_' not in name:
        raise ValueError(f'{baseline_config}: not a baseline pretraining config (its name has no _baseline_)')
    out = Path(out_root) / f'{method.name}-{method.digest}' / name.replace('_baseline_', f'_{method.name}_', 1)
    text = pretraining_config_text(method, baseline_config)
    if not out.is_file() or out.read_text() != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    return out

"""The one place that knows the mixing methods, as timm's model registry knows models: each method's file
registers a :class:`MixMethod` next to its code (``register_mix_method``), and the classifier's stage-1 recipes, the
planner, the tables and the figures read names, titles and recipes from here (:func:`get_mix_method`,
:func:`list_mix_methods`). A user's own method registers itself the same way from its own module (loaded through
a config's ``custom_imports``). Pure python: importing this adds nothing anywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class MixMethod:
    name: str                      #: config names, work dirs, the backbone file's ``method``, table rows
    title: str                     #: what tables and figures print
    recipe: str                    #: the stage-1 ``MODELS`` type that builds its recipe: ``model.mixer=dict(type=…)``
    needs: Optional[str] = None    #: what it needs from the model besides images and labels (None: nothing)
    paper: Optional[str] = None    #: the paper that reports it (None: a method of no paper, e.g. a user's)
    rank: int = 100                #: its place in the papers' tables (baseline first); a user's comes after them


_METHODS: dict[str, MixMethod] = {}


def register_mix_method(method: MixMethod) -> MixMethod:
    """Add ``method``; registering the same record again is harmless, another record under a taken name is an
    error naming both."""
    old = _METHODS.get(method.name)
    if old is not None and old != method:
        raise ValueError(f'mixing method {method.name!r} is registered already ({old}); pick another name')
    _METHODS[method.name] = method
    return method


def get_mix_method(name: str) -> MixMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f'unknown mixing method {name!r}; registered: {", ".join(m.name for m in list_mix_methods())}'
                       f' (a method of your own registers itself with pretrain.mix.methods.register_mix_method '
                       f'in a module your config loads through custom_imports)') from None


def list_mix_methods(papers_only: bool = False) -> tuple[MixMethod, ...]:
    """The registered methods in the papers' table order, then the others in the order they registered."""
    order = list(_METHODS)
    methods = sorted(_METHODS.values(), key=lambda m: (m.rank, order.index(m.name)))
    return tuple(m for m in methods if m.paper or not papers_only)


def method_of_recipe(recipe) -> Optional[str]:
    """The method whose recipe is the ``MODELS`` type ``recipe`` (a config's ``model.mixer.type``); None for a type
    that is no method's recipe (a single mixer, e.g. ``'Mixup'``)."""
    return next((m.name for m in _METHODS.values() if m.recipe == recipe), None)


def method_title(name: str) -> str:
    """The title of method ``name``; the name itself for one that is not registered (e.g. an old result's)."""
    method = _METHODS.get(name)
    return method.title if method else name

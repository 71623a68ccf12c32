"""The backbone file: the one contract between stage 1 (pretraining) and stage 2 (transfer).

A backbone file is a ``.safetensors`` file holding the backbone weights (no classifier head) in the timm
model's key layout (our PVT v1 keeps the original PVT layout), with header metadata::

    format=mixseg-backbone, format_version, arch, img_size, patch_size, method, epochs, top1,
    source_config, mixseg_version

Safetensors holds no pickled code, so reading a backbone file can never execute anything; the file is read by
:func:`mixcore.weights.read.read_file` and its metadata checked (types, ranges, which ``timm.create_model``
arguments it may name) before anything is built from it. Stage 2 also accepts official timm/DeiT/PVT ``.pth``
files and mmengine checkpoints (:func:`mixcore.weights.state_dict.read_weights`). The file is written atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..atomic_write import atomic_write
from .errors import CheckpointError, WeightFileNotFoundError
from .read import read_file, read_header

FORMAT = 'mixseg-backbone'
FORMAT_VERSION = 1

@dataclass
class BackboneFile:
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str | None:
        return self.meta.get('arch')


def save_backbone_file(path, state_dict: Mapping[str, torch.Tensor], *, arch: str, img_size, patch_size,
                       method: str | None = None, epochs: int | None = None, top1: float | None = None,
                       source_config: str | None = None, **extra) -> Path:
    """Write a backbone file atomically. Values of the metadata are stored JSON-encoded."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to('cpu').contiguous() for k, v in state_dict.items()}
    if not tensors:
        raise CheckpointError(f'{path}: refusing to write a backbone file without weights')
    meta = dict(format=FORMAT, format_version=FORMAT_VERSION, arch=arch, img_size=img_size,
                patch_size=patch_size, method=method, epochs=epochs, top1=top1,
                source_config=source_config, mixseg_version=_project_version(), **extra)
    header = {k: json.dumps(v) for k, v in meta.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def _project_version() -> str | None:
    """The installed project's version (``pyproject.toml``), written into each backbone file."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version('mixseg')
    except PackageNotFoundError:  # run from a checkout that was never installed
        return None


def load_backbone_file(path) -> BackboneFile:
    """The weights and checked metadata of the backbone (or plain safetensors) file ``path``."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileNotFoundError(f'{path}: backbone file not found')
    meta = _parse_meta(read_header(path), path)
    return BackboneFile(read_file(path), meta)


def _decode_header(header: dict) -> dict:
    """safetensors header strings → values (JSON where they are JSON)."""
    meta = {}
    for k, v in header.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v
    return meta


#: ``format`` of plain safetensors weights (Hugging Face's convention, e.g. timm's hub files): no metadata of ours
PLAIN_FORMATS = (None, 'pt')

#: ``timm.create_model`` keyword arguments a backbone file's ``model_kwargs`` may carry: the network's shape only
#: (no file, URL or pretrained switch: ``checkpoint_path``/``pretrained_cfg`` would make timm read another file).
#: Each maps to its check: 'int' (1..MAX_INT_KWARG), 'ints' (an int or list of them), 'num' (finite, 0..1e3),
#: 'nums', 'bool', or a tuple of the allowed strings.
MODEL_KWARGS = dict(
    patch_size='ints', embed_dim='ints', embed_dims='ints', depth='int', depths='ints', num_heads='ints',
    window_size='ints', sr_ratios='ints', mlp_ratio='num', mlp_ratios='nums', init_values='num', eta='num',
    qkv_bias='bool', class_token='bool', no_embed_class='bool', fc_norm='bool', dynamic_img_size='bool',
    dynamic_img_pad='bool', linear='bool', reg_tokens='int0', in_chans='int', num_stages='int', img_size='size',
    depth_token_only='int', global_pool=('', 'token', 'avg', 'max', 'avgmax', 'map'), pos_embed=('learn', 'none', ''))
MAX_INT_KWARG = 8192
#: largest image side a backbone file may name (timm allocates the position embedding for it at once)
MAX_IMG_SIZE = 4096


def _parse_meta(header: dict, path) -> dict:
    meta = _decode_header(header)
    if meta.get('format') not in (*PLAIN_FORMATS, FORMAT):
        raise CheckpointError(f'{path}: format {meta.get("format")!r} is not {FORMAT!r} (a backbone file of this '
                              f'project) nor plain safetensors weights: refused; export the weights again with '
                              f'tools/export_backbone.py, or save them as plain safetensors')
    check_meta(meta, path)
    return meta


def check_meta(meta: Mapping, path, *, what: str = 'metadata ',
               advice: str = 'was it written by tools/export_backbone.py / a mixseg run? re-export it') -> None:
    """Refuse backbone-file metadata whose types or ranges are wrong before anything is built from it (timm would
    allocate a 60000-pixel position embedding, or read a file ``model_kwargs`` names); errors name file and key.
    (The same check guards a stored config's backbone arguments: ``what``/``advice`` word the message.)"""
    def bad(key, why):
        raise CheckpointError(f'{path}: {what}{key} = {meta_value(key)!r}: {why}; the file is refused ({advice})')

    def meta_value(key):
        node = meta
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    version = meta.get('format_version')
    if meta.get('format') == FORMAT and not (isinstance(version, int) and 1 <= version <= FORMAT_VERSION):
        bad('format_version', f'this mixseg reads format_version 1..{FORMAT_VERSION} (a newer mixseg wrote it?)')
    arch = meta.get('arch')
    if arch is not None and not (isinstance(arch, str) and _is_name(arch)):
        bad('arch', 'not a model name (a string of letters, digits, "_", "-", ".")')
    for key in ('img_size', 'patch_size'):
        if meta.get(key) is not None and _check_value('size', meta[key]) is not None:
            bad(key, _check_value('size', meta[key]))
    for key in ('epochs', 'iters', 'stage', 'num_classes'):
        v = meta.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**9):
            bad(key, 'not a count (an integer >= 0)')
    top1 = meta.get('top1')
    if top1 is not None and not (_is_number(top1) and 0 <= top1 <= 100):
        bad('top1', 'not an accuracy in 0..100')
    for key in ('method', 'source_config', 'task', 'finetuned_from', 'mixseg_version'):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(key, 'not a string')
    kwargs = meta.get('model_kwargs')
    if kwargs is None:
        return
    if not isinstance(kwargs, Mapping):
        bad('model_kwargs', 'not a mapping of timm.create_model arguments')
    for key, value in kwargs.items():
        if key not in MODEL_KWARGS:
            bad(f'model_kwargs.{key}', f'not an argument a backbone file may give timm.create_model (allowed: '
                                      f'{", ".join(sorted(MODEL_KWARGS))})')
        why = _check_value(MODEL_KWARGS[key], value)
        if why:
            bad(f'model_kwargs.{key}', why)


def _is_name(text: str) -> bool:
    import re
    return bool(re.fullmatch(r'[A-Za-z0-9_.\-]{1,200}', text))


def _is_number(v) -> bool:
    import math
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(kind, v):
    """Why ``v`` is not of ``kind`` (see :data:`MODEL_KWARGS`), or ``None``."""
    def is_int(x, low=1, high=MAX_INT_KWARG):
        return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high
    if kind == 'size':
        ok = is_int(v, 1, MAX_IMG_SIZE) or (isinstance(v, (list, tuple)) and len(v) == 2
                                            and all(is_int(x, 1, MAX_IMG_SIZE) for x in v))
        return None if ok else f'not a size (an integer or [h, w] in 1..{MAX_IMG_SIZE})'
    if kind in ('int', 'int0'):
        low = 0 if kind == 'int0' else 1
        return None if is_int(v, low) else f'not an integer in {low}..{MAX_INT_KWARG}'
    if kind == 'ints':
        ok = is_int(v) or (isinstance(v, (list, tuple)) and 0 < len(v) <= 64 and all(is_int(x) for x in v))
        return None if ok else f'not an integer (or list of integers) in 1..{MAX_INT_KWARG}'
    if kind == 'num':
        return None if v is None or (_is_number(v) and 0 <= v <= 1e3) else 'not a number in 0..1000'
    if kind == 'nums':
        ok = (_is_number(v) and 0 < v <= 1e3) or (isinstance(v, (list, tuple)) and 0 < len(v) <= 64
                                                   and all(_is_number(x) and 0 < x <= 1e3 for x in v))
        return None if ok else 'not a number (or list of numbers) in 0..1000'
    if kind == 'bool':
        return None if v is None or isinstance(v, bool) else 'not true/false'
    return None if v in kind else f'not one of {", ".join(map(repr, kind))}'


def read_backbone_meta(path) -> dict[str, Any]:
    """The metadata of a backbone file, from its header only (no tensors read); ``{}`` when ``path`` is not a
    readable local ``.safetensors`` file or its metadata is not this project's (another ``format``, wrong types or
    ranges: reading the weights then refuses the file, naming the problem). An http(s) URL is read from its cached
    copy, if there is one (:mod:`mixcore.weights.download`; nothing is downloaded here)."""
    from .download import cache_entry, cached_source, is_url
    if is_url(path):
        from urllib.parse import urlsplit
        cached = cache_entry(path) / Path(urlsplit(path).path).name
        path = cached if cached_source(cached) else None
    if not path or '://' in str(path) or not str(path).endswith('.safetensors') or not Path(path).is_file():
        return {}
    try:
        return _parse_meta(read_header(path), path)
    except CheckpointError:
        return {}



"""Weights as a state dict from any supported file: :func:`read_weights` (backbone files with their checked
metadata, timm/DeiT/PVT release files, mmengine checkpoints), unwrapped and with wrapper prefixes stripped. Every
byte is read by :mod:`mixcore.weights.read`."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from .errors import CheckpointError
from .read import read_download, read_file

# Keys under which known checkpoint formats nest the weights, in the order they are tried.
# timm/DeiT release files: 'model' (DeiT), 'state_dict' (timm train script), 'state_dict_ema';
# mmengine: 'state_dict'. PVT release files are flat.
_NESTED_KEYS = ('state_dict', 'model', 'module', 'state_dict_ema', 'model_ema')
_EMA_FIRST = ('state_dict_ema', 'model_ema', 'state_dict', 'model', 'module')
# Prefixes stripped from foreign keys: mmengine/mmseg/mmdet wrap the backbone as 'backbone.',
# DDP adds 'module.'; our stage-1 MixClassifier stores the timm model under 'model.'.
_PREFIXES = ('module.', 'backbone.', 'model.')


def read_weights(source, *, ema: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Any supported weight file (path or URL) as ``(state_dict, meta)``, wrapper prefixes removed.

    ``.safetensors``: a backbone file (its checked metadata in ``meta``,
    :func:`mixcore.weights.backbone_file.load_backbone_file`). Anything else: :func:`read_file`, unwrapped from the
    known nesting keys (``ema``: EMA weights first, as timm's reader); ``meta`` then holds mmengine's ``meta``
    entry if present.
    """
    from .backbone_file import load_backbone_file
    from .download import is_url
    if is_url(source):
        return read_download(source, lambda cached: read_weights(cached, ema=ema))
    if str(source).endswith('.safetensors') and '://' not in str(source):
        bf = load_backbone_file(source)
        return strip_prefixes(bf.state_dict), bf.meta
    obj = read_file(source)
    meta = dict(obj['meta']) if isinstance(obj, Mapping) and isinstance(obj.get('meta'), Mapping) else {}
    return strip_prefixes(_unwrap(obj, source, _EMA_FIRST if ema else _NESTED_KEYS)), meta


def strip_prefixes(state_dict: Mapping[str, torch.Tensor], prefixes: Iterable[str] = _PREFIXES):
    """Strip wrapper prefixes; keys under a known prefix win over others (mmengine checkpoints of a
    whole segmentor keep only the ``backbone.`` part)."""
    out = dict(state_dict)
    for prefix in prefixes:
        inner = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
        if inner:
            out = inner
    return out


def _unwrap(obj, path, keys=_NESTED_KEYS) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in keys:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], path, keys)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(f'{path}: no state dict found (looked for tensors at the top level and under '
                          f'{", ".join(keys)})')

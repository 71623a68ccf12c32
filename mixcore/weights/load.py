"""Loading a state dict into a model: strictly (every key and shape must fit, else nothing is loaded and the error
lists what differs), and resizing a position embedding to another token grid."""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

from .errors import CheckpointError


class CheckpointMismatchError(CheckpointError):
    """A weight file whose keys/shapes do not match the model it is loaded into."""

    def __init__(self, source, missing, unexpected, mismatched, model_name=''):
        self.source, self.missing, self.unexpected, self.mismatched = source, missing, unexpected, mismatched
        lines = [f'{source}: weights do not fit {model_name or "the model"}']
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {_short(missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {_short(unexpected)}')
        for key, got, want in mismatched:
            lines.append(f'  shape mismatch: {key}: file {tuple(got)} vs model {tuple(want)}')
        lines.append('  (is the file from another architecture or embedding size? nothing was loaded)')
        super().__init__('\n'.join(lines))


def _short(keys, n=12):
    keys = list(keys)
    return ', '.join(keys[:n]) + (f', ... (+{len(keys) - n} more)' if len(keys) > n else '')


def load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, source='state dict',
                ignore_missing: Iterable[str] = (), ignore_unexpected: Iterable[str] = ()) -> None:
    """Load ``state_dict`` into ``model`` or raise :class:`CheckpointMismatchError` and load nothing.

    ``ignore_*`` are key prefixes allowed to be missing from the file (e.g. a fresh head) or present in
    the file but not in the model (e.g. a classifier head the backbone drops).
    """
    ignore_missing, ignore_unexpected = tuple(ignore_missing), tuple(ignore_unexpected)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.startswith(ignore_missing or ('\0',))]
    unexpected = [k for k in state_dict if k not in own and not k.startswith(ignore_unexpected or ('\0',))]
    mismatched = [(k, state_dict[k].shape, own[k].shape) for k in own
                  if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(source, missing, unexpected, mismatched, type(model).__name__)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)


def resize_pos_embed(posemb: torch.Tensor, new_grid, num_prefix_tokens: int = 1, old_grid=None) -> torch.Tensor:
    """Bicubic resize of an absolute position embedding ``1×(prefix+h·w)×C`` to ``new_grid`` (timm's)."""
    from timm.layers import resample_abs_pos_embed
    return resample_abs_pos_embed(posemb, list(new_grid), old_size=list(old_grid) if old_grid else None,
                                  num_prefix_tokens=num_prefix_tokens, antialias=False)

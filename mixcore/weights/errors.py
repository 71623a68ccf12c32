"""The errors of the weight readers: each message names the file and what is wrong with it."""
from __future__ import annotations


class CheckpointError(RuntimeError):
    """A weight file that cannot be read or does not fit; the message names the file."""


class WeightFileNotFoundError(CheckpointError, FileNotFoundError):
    """A weight file that does not exist (also a :class:`FileNotFoundError`, as mmengine's loaders raise)."""

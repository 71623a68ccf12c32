"""Atomic file writes: a file is either its previous version or the complete new one, never a truncated mix.

:func:`atomic_write` (any writer: ``torch.save``, safetensors, numpy) and :func:`atomic_write_text`; a full disk is
reported as :class:`DiskFullError` naming the file, the folder and its free space.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``.

    The temporary file lives in the destination folder (rename is atomic only within one file system);
    a killed or failing write leaves the previous ``path`` untouched and removes its temporary file. The
    file gets the permissions ``open()`` would give it (``0666 & ~umask``), also when ``write`` creates the
    file itself (the safetensors writer does, with mode 0600). A full disk is reported as
    :class:`DiskFullError` naming ``path`` (torch's own message is "unexpected pos ...").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.part', dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask)  # after `write`: a writer may have replaced the file (mkstemp: 0600)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if is_disk_full(e):
            raise DiskFullError(path, e) from e
        raise
    return path


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that failed for lack of space: ``OSError(ENOSPC)`` (or a quota,
    ``EDQUOT``), or torch's zip writer's ``RuntimeError`` ("unexpected pos", "file write failed"), which
    carries no errno."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, RuntimeError):
        text = str(error)
        return any(s in text for s in ('unexpected pos', 'file write failed', 'No space left on device'))
    return False


class DiskFullError(OSError):
    """A file could not be written because its disk (or quota) is full; the previous file is intact."""

    def __init__(self, path, cause: BaseException | None = None):
        import shutil
        path = Path(path)
        try:
            free = f'{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free'
        except OSError:
            free = 'free space unknown'
        why = f'{type(cause).__name__}: {str(cause).strip().splitlines()[0]}' if cause is not None and str(cause) \
            else ''
        super().__init__(errno.ENOSPC, f'{path}: not written: the disk is full (no space left on device in '
                                       f'{path.parent}, {free}). The previous {path.name}, if any, is intact; '
                                       f'free some space and continue with --resume' + (f' [{why}]' if why else ''),
                         str(path))

    def __str__(self):
        return self.strerror


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    return atomic_write(path, write)

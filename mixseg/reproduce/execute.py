"""Running one step of a plan on this machine, its output going to its log file: inside this process (the
``main(argv)`` of ``tools/<script>.py``, or the step's Python function) or as a subprocess. The local runner
(:mod:`.runner`) runs every step so; the Slurm submit mode (:mod:`.slurm`) its instant steps."""
from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from .steps import ROOT

_TOOLS: dict = {}   # script -> the module whose main(argv) runs it (the tests put stand-ins here)


def _tool(script: str):
    """The library module of ``tools/<script>.py`` (its ``main(argv)`` runs a step inside this process)."""
    if script not in _TOOLS:
        from mixseg.cli import command
        _TOOLS[script] = command(script)
    return _TOOLS[script]


def _release_loggers(stream) -> None:
    """Detach the handlers an in-process run bound to its log file (mmengine keeps its loggers alive)."""
    try:
        from mmengine.logging import MMLogger
    except ImportError:
        return
    for logger in list(MMLogger._instance_dict.values()):
        for h in list(logger.handlers):
            if getattr(h, 'stream', None) is stream:
                logger.removeHandler(h)


def run_inprocess(script: Optional[str], argv: list, func: Optional[Callable], log: Path, shell: str) -> None:
    """Run a step inside this process, its output (and mmengine's logger) going to the log file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a', buffering=1) as f:
        f.write(f'\n===== {time.strftime("%Y-%m-%d %H:%M:%S")} {shell}\n')
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                if func is not None:
                    func()
                else:
                    _tool(script).main(list(argv))
        except SystemExit as e:
            if e.code not in (None, 0):
                raise RuntimeError(f'exited with {e.code}') from None
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            traceback.print_exc(file=f)
            raise RuntimeError(f'{type(e).__name__}: {e}') from None
        finally:
            _release_loggers(f)
            if func is None:   # after a training/test (a collection costs ~0.5 s: not after the instant steps)
                gc.collect()


def run_subprocess(command: list, env: dict, log: Path, shell: str, threads: Optional[int]) -> None:
    """Run a step's command as a subprocess (``python``: this interpreter), its output going to the log file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a', buffering=1) as f:
        f.write(f'\n===== {time.strftime("%Y-%m-%d %H:%M:%S")} {shell}\n')
        f.flush()
        cmd = [sys.executable if c == 'python' else c for c in command]
        full_env = dict(os.environ, PYTHON=sys.executable, **{k: str(v) for k, v in env.items()})
        if threads:
            full_env['OMP_NUM_THREADS'] = str(threads)
        if 'dist_' in ' '.join(command) and 'PORT' not in full_env and full_env.get('NNODES', '1') == '1':
            full_env['PORT'] = str(_free_port())   # single-node torchrun runs may run side by side (--jobs)
        rc = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f'exit status {rc}')


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def worker_init(threads: Optional[int]) -> None:
    """A process that runs steps in-process: its torch threads."""
    if threads:
        import torch
        torch.set_num_threads(threads)

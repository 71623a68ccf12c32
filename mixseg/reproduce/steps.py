"""A step of a table run: what it computes, its command with a launcher, its stamp, the run's files."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]   # the repository: configs and tools are found relative to it
STALE = 'options changed: starts over'


@dataclass
class Step:
    kind: str                      # 'data' | 'maps' | 'pretrain' | 'train' | 'test' | 'share' | 'top1' | 'figure'
    name: str                      # unique, used for the log file
    title: str                     # what the progress line says
    outputs: list                  # Paths: all present → the step is done
    deps: list = field(default_factory=list)        # indices of steps this one needs
    script: Optional[str] = None   # 'train' | 'test' | 'make_label_maps': tools/<script>.py
    argv: list = field(default_factory=list)        # arguments of tools/<script>.py
    command: list = field(default_factory=list)     # the shell command (launcher applied)
    env: dict = field(default_factory=dict)         # environment prefix of the command (slurm: GPUS)
    func: Optional[Callable] = None                 # 'data' / 'share' / 'top1' steps: done in Python
    gpus: int = 1
    batch: Optional[int] = None    # per-GPU batch of the config (for the printout)
    rows: list = field(default_factory=list)        # (table, row label) this step serves
    stamp: Optional[Path] = None   # <work dir>/<kind>.argv.json: the arguments its work dir's files belong to
    key: Optional[dict] = None     # what the stamp holds for the current arguments
    stale: bool = False            # the stamp differs (or a needed step's does): start over
    resume: bool = False
    done: bool = False
    needed: bool = True
    reason: str = ''
    blocked: str = ''               # why it cannot run at all (no config): reported, never run

    def shell(self) -> str:
        return ' '.join([f'{k}={shlex.quote(str(v))}' for k, v in self.env.items()] + [shlex.quote(str(c)) for c in
                                                                                       self.command])


def rel(p) -> str:
    """A path as printed: relative to the repository when inside it."""
    p = Path(p)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def describe(step: Step, i: int, n: int, unit: str = 'GPU') -> str:
    """The head of a step's progress line: ``[i/n] title`` and, for a launched training or test, its GPUs (or
    CPU tasks) × per-GPU batch."""
    head = f'[{i:>{len(str(n))}}/{n}] {step.title}'
    if step.script and step.command[0] != 'python':
        head += f'  ({step.gpus} {unit}{"s" if step.gpus > 1 else ""}'
        head += f' × {step.batch} = {step.gpus * step.batch})' if step.batch else ')'
    return head


def config_with_options(config: str, options: list[str]):
    """A config of the repository with ``--cfg-options`` applied, read without its custom imports (the planner
    reads its schedule and batch)."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(str(ROOT / config), import_custom_modules=False)
    if options:
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest='o')(None, ns, options)
        cfg.merge_from_dict(ns.o)
    return cfg


def final_checkpoint_name(cfg) -> str:
    """``iter_N.pth`` / ``epoch_N.pth``: the checkpoint mmengine writes at the end of the config's schedule."""
    tc = cfg.get('train_cfg') or {}
    by_epoch = tc.get('by_epoch', 'max_epochs' in tc) or 'Epoch' in str(tc.get('type', ''))
    if by_epoch and 'max_epochs' in tc:
        return f'epoch_{tc["max_epochs"]}.pth'
    if 'max_iters' in tc:
        return f'iter_{tc["max_iters"]}.pth'
    raise ValueError(f'{cfg.filename}: train_cfg has neither max_epochs nor max_iters')


def final_checkpoint(work_dir: Path, name: str) -> Optional[Path]:
    """The finished run's final checkpoint if it exists: ``last_checkpoint`` (mmengine's pointer) when it names
    the final one, else the expected file in the work dir."""
    from mixcore.workdir import WorkDirError, latest_checkpoint
    try:
        latest = latest_checkpoint(work_dir)  # relative to the work dir (old files: absolute)
    except WorkDirError:
        latest = None
    if latest and '://' not in latest:
        p = Path(latest)
        if p.name == name and p.is_file():
            return p
    p = work_dir / name
    return p if p.is_file() else None


def parse_backbones(items) -> dict:
    out = {}
    for item in items or ():
        if '=' not in item:
            raise SystemExit(f'error: --backbone {item!r}: expected METHOD=PATH or MODEL_METHOD=PATH')
        k, v = item.split('=', 1)
        out[k.strip().lower()] = Path(v).expanduser().resolve()
    return out


def stamp_argv(argv) -> list:
    """The arguments that decide what a step computes: its argv without ``--resume``, without the
    experiment names of in-process runs (``--subprocess`` does not change results) and without the TensorBoard
    switch (it adds curves, not results)."""
    return [a for a in map(str, argv)
            if a not in ('--resume', '--overwrite-work-dir')
            and not a.startswith(('experiment_name=', 'visualizer.name=', 'tensorboard='))]


def read_stamp(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}   # unreadable: matches no arguments


def launch_command(script: str, argv: list, launcher: str, gpus: int, partition: Optional[str], job: str,
            work_dir: Path) -> tuple[list, dict]:
    """The shell command of ``tools/<script>.py argv`` with a launcher."""
    config, rest = argv[0], argv[1:]
    if launcher == 'none':
        return ['python', f'tools/{script}.py', *argv], {}
    if script == 'train':
        if launcher == 'pytorch':
            return ['bash', 'tools/dist_train.sh', config, str(gpus), *rest], {}
        # slurm_train.sh takes the work dir as an argument
        i = rest.index('--work-dir')
        rest = rest[:i] + rest[i + 2:]
        return ['bash', 'tools/slurm_train.sh', partition, job, config, rel(work_dir), *rest], {'GPUS': gpus}
    checkpoint, rest = rest[0], rest[1:]
    if launcher == 'pytorch':
        return ['bash', 'tools/dist_test.sh', config, checkpoint, str(gpus), *rest], {}
    return ['bash', 'tools/slurm_test.sh', partition, job, config, checkpoint, *rest], {'GPUS': gpus}


def row_slug(table: str, label: tuple) -> str:
    """A table row as a folder name: ``C_deit-s_yes``."""
    s = '_'.join(label).lower().replace(' + ', '-').replace(' ', '-').replace('✓', 'yes').replace('✗', 'no')
    return f'{table}_{s}'


def share_fn(src: Path, dest: Path, table_row: dict):
    """The Python step that copies a shared run's results file to a row of its own (``table_row`` rewritten)."""
    def share():
        from mixcore.atomic_write import atomic_write_text
        record = json.loads(src.read_text())
        record['table_row'] = table_row
        record['shared_from'] = str(src)
        atomic_write_text(dest, json.dumps(record, indent=2) + '\n')
    return share


def _start_over(step: Step) -> None:
    """Before a stale step runs: its old results are removed and, for a training, the checkpoints of its work
    dir (the old final one, the one ``last_checkpoint`` points at) move to ``<work dir>/stale/`` (replacing
    what an earlier start-over left there), so that it trains from scratch."""
    wd = step.stamp.parent
    if step.kind == 'maps':   # label maps of another teacher or data: all of them go (the generator skips files)
        shutil.rmtree(wd, ignore_errors=True)
        return
    old = [Path(o) for o in step.outputs]   # (a stale step's outputs are in its work dir)
    if step.kind in ('pretrain', 'train'):
        old += [*sorted(wd.glob('*.pth')), wd / 'last_checkpoint']
    old = [p for p in dict.fromkeys(old) if p.is_file()]
    if step.kind in ('test', 'share'):   # not kept: a kept copy would still be collected as a result
        for p in old:
            p.unlink()
    elif old:
        aside = wd / 'stale'
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for p in old:
            os.replace(p, aside / p.name)


def begin(step: Step) -> None:
    """Before a step runs (or its job is submitted): a stale step starts over (:func:`_start_over`), and its
    stamp records the arguments it runs with."""
    if step.stale:
        _start_over(step)
    if step.stamp is not None:
        from mixcore.atomic_write import atomic_write_text
        atomic_write_text(step.stamp, json.dumps(step.key, indent=1) + '\n')

"""Reproduce a downstream table of the papers: pretrain → transfer → single-/multi-scale test → the table.

    python tools/reproduce.py TABLE [TABLE ...] [--methods baseline transmix ...] [--dry-run]
        [--launcher none|pytorch|slurm] [--gpus N] [--partition P] [--work-root work_dirs/tables]
        [--backbone METHOD=PATH | MODEL_METHOD=PATH ...] [--keep-going]
    python tools/reproduce.py A B C --demo          # the same pipeline on the tiny demo models and data

Tables (mixseg.tables.TABLES; the reference rows are quoted, not run):
  A  Pascal Context 59, DeiT-S, linear and Segmenter mask decoders × baseline / TransMix / MixPro, mIoU, +MS
  B  COCO, Mask R-CNN 1x + FPN, PVT-S × baseline / TransMix / MixPro, box and mask AP
  C  ADE20K, Segmenter mask decoder (the TokenMix paper's setting), DeiT-T/S/B × baseline / TokenMix, mIoU/mAcc, +MS

Per row: (1) pretraining ``configs/pretrain/<model>_<method>_8xb128-300e_in1k.py`` → ``backbone.safetensors``
(or a file given with ``--backbone``; one pretraining serves every row and table that needs it); (2) the row's
transfer config with ``--cfg-options model.backbone.checkpoint=<backbone file>``; (3) ``tools/test.py`` on the
final checkpoint (single scale, and with ``--tta`` for the "+MS" columns of A and C), each with
``--cfg-options table_row.table=... table_row.model=...`` so that the results land in the row's cell whatever
the config says. Finally the tables (``tables.md``, ``tables.png`` in the work root) and on the console.

GPUs as in the papers: pretraining 8 GPUs × 128, Segmenter ADE20K 8 × 1, Pascal Context 8 × 2, Mask R-CNN
8 × 2 (``--gpus`` overrides the count; the per-GPU batch stays, so the total batch changes). Launchers:
``pytorch`` → ``bash tools/dist_train.sh CFG 8 ...``, ``slurm`` → ``GPUS=8 bash tools/slurm_train.sh P JOB CFG
WORK ...``, ``none`` → ``python tools/train.py ...`` (one process).

A step is skipped when its outputs exist (backbone file; the transfer's final ``iter_N.pth`` / ``epoch_N.pth``;
``results/ss.json`` / ``results/ms.json``) or when nothing downstream still needs it, so a killed table run
continues where it stopped; a training run with checkpoints but without its final one is continued with
``--resume``. A step that starts writes its arguments to ``<its work dir>/<kind>.argv.json``; when they (or
those of a step it needs) differ from the current ones (another ``--demo-schedule``, ``--backbone``, ...) the
step starts over: not resumed, its old checkpoints moved to ``<its work dir>/stale/``, its old results
removed. (Work dirs without that file, from before it existed, count as they are.) Each step's output goes to
``<work root>/logs/<step>.log``; the console gets the command and one progress line per step.

``--demo``: the demo configs (``configs/demo/``) with their own short schedules (``--demo-schedule`` changes
them) on the generated data (``data/demo``, made if missing), every row mapped onto the tiny demo models
(DEMO_MODELS below; one pretraining per (model, method), Table C's DeiT-T/S/B rows share one run). The steps
run in 2 worker processes (``--jobs``; 1 torch thread each on 2 cores) that call ``tools/train.py`` /
``tools/test.py`` ``main(argv)``, so the OpenMMLab stack is imported once per worker, not once per step; each
run gets its own ``experiment_name`` (mmengine logger, message hub, visualizer). Printed commands show
``python``; they run with the interpreter running this script.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixseg.engine import load_tool  # noqa: E402
from mixseg.tables import TABLES, missing_cells, plot, render_tables  # noqa: E402

METHODS = ('baseline', 'transmix', 'mixpro', 'tokenmix')
DEMO_NOTE = 'toy-scale demo: tiny models, generated data'
STALE = 'options changed: starts over'

# ---------------------------------------------------------------------------------------------------------
# What each table trains: the transfer task of its rows (dataset + decoder) and the paper's GPU setting.


@dataclass(frozen=True)
class Task:
    name: str             # work-dir folder, e.g. 'pascal-context-59_mask'
    dataset: str          # demo dataset name (mixseg.demo_data): 'ade20k' | 'pascal_context' | 'coco'
    gpus: int             # the paper's GPU count
    scope: str            # 'seg' | 'det'


PRETRAIN_GPUS = 8         # DeiT recipe: 8 GPUs × 128 = 1024
TASKS = {
    ('A', 'linear'): Task('pascal-context-59_linear', 'pascal_context', 8, 'seg'),  # 8 × 2 = 16
    ('A', 'mask'): Task('pascal-context-59_mask', 'pascal_context', 8, 'seg'),
    ('B', None): Task('coco_mask-rcnn-1x', 'coco', 8, 'det'),                       # 8 × 2 = 16
    ('C', None): Task('ade20k_mask', 'ade20k', 8, 'seg'),                            # 8 × 1 = 8
}


def task_of(table: str, key: dict) -> Task:
    return TASKS[(table, key.get('decoder') if table == 'A' else None)]


def _first_existing(*candidates: str) -> str:
    for c in candidates:
        if (ROOT / c).is_file():
            return c
    return candidates[-1]   # reported as missing by the plan's check


def real_configs(table: str, key: dict) -> tuple[str, str]:
    """(pretraining config, transfer config) of a row on the real datasets (paths relative to the repo)."""
    model, method = key['model'], key['method']
    pretrain = f'configs/pretrain/{model}_{method}_8xb128-300e_in1k.py'
    if table == 'A':
        base = f'configs/segmenter/segmenter-{key["decoder"]}_{model}{{}}_8xb2-80k_pascal-context-59-480x480.py'
    elif table == 'C':   # TokenMix paper: Segmenter mask decoder on ADE20K
        base = f'configs/segmenter/segmenter-mask_{model}{{}}_8xb1-160k_ade20k-512x512.py'
    else:
        base = f'configs/mask_rcnn/mask-rcnn_{model}{{}}_fpn_8xb2-1x_coco.py'
    # the method's own config (it names the method), else the baseline one: the backbone comes from the options
    own = [] if method == 'baseline' else [base.format(f'_{method}')]
    return pretrain, _first_existing(*own, base.format(''))


# ---------------------------------------------------------------------------------------------------------
# Demo mode: every row on the tiny demo models, the generated data and shortened schedules.

@dataclass(frozen=True)
class DemoModel:
    name: str             # pretraining work-dir name prefix, e.g. 'vit-nano'
    pretrain: str         # configs/demo/pretrain_{}_<method>_demo.py pattern (method filled in)
    describe: str


DEMO_VIT = DemoModel('vit-nano', 'configs/demo/pretrain_vit-nano_{}_demo.py',
                     'demo ViT (patch 8, width 96, depth 4)')
DEMO_PVT = DemoModel('pvt-nano', 'configs/demo/pretrain_pvt-nano_{}_demo.py',
                     'demo PVT v1 (pvt_nano: depths 1-1-1-1, widths 32-256)')
# Which demo model stands in for each paper model. DeiT-T/S/B all map onto the one demo ViT, so Table C's
# three rows per method share one run (and show the same numbers).
DEMO_MODELS = {'deit-t': DEMO_VIT, 'deit-s': DEMO_VIT, 'deit-b': DEMO_VIT, 'pvt-s': DEMO_PVT}
# The demo transfer config of each task (a glob: the schedule in the name is the config's business)
DEMO_TRANSFER = {
    'pascal-context-59_linear': 'configs/demo/segmenter-linear_vit-demo_*_pascal-context-59-demo-*.py',
    'pascal-context-59_mask': 'configs/demo/segmenter-mask_vit-demo_*_pascal-context-59-demo-*.py',
    'ade20k_mask': 'configs/demo/segmenter-mask_vit-demo_*_ade20k-demo-*.py',
    'coco_mask-rcnn-1x': 'configs/demo/mask-rcnn_pvt-demo_fpn_*_coco-demo.py',
}
# Data size and schedules of the demo: None keeps the demo config's own schedule; --demo-schedule KEY=VALUE
# changes them. Validation during transfer training is switched off: the test step evaluates the final model.
DEMO_SCHEDULE = dict(data_size='small', pretrain_epochs=None, seg_iters=None, det_epochs=None)


def demo_config(pattern: str) -> str:
    found = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f'error: expected one demo config {pattern}, found {found or "none"}')
    return found[0]


def demo_note(tables) -> str:
    used = {DEMO_MODELS[dict(r.key)['model']] for t in tables for r in TABLES[t].rows if not r.reference}
    parts = [DEMO_NOTE]
    name = {'deit-t': 'DeiT-T', 'deit-s': 'DeiT-S', 'deit-b': 'DeiT-B', 'pvt-s': 'PVT-S'}
    parts += [f'{"/".join(name.get(k, k) for k, v in DEMO_MODELS.items() if v is m)} → {m.describe}'
              for m in sorted(used, key=lambda m: m.name, reverse=True)]
    if 'C' in tables and DEMO_MODELS['deit-t'] is DEMO_MODELS['deit-s'] is DEMO_MODELS['deit-b']:
        parts.append('Table C: the DeiT-T/S/B rows share one demo run per method')
    return '; '.join(parts)


def _demo_data_root(data_root: Path, dataset: str) -> list[str]:
    """``--data-root`` of tools/train.py / test.py: every dataloader (and COCO evaluator) of the config reads
    the generated copy of ``dataset``."""
    from mixseg.demo_data import DATA_ROOTS
    return ['--data-root', rel(data_root / DATA_ROOTS[dataset])]


def _demo_pretrain_options(sched: dict) -> list[str]:
    # the small demo batches are cheap to load: no loader processes (steps may run 2 at a time on 2 cores)
    opts = [f'{s}_dataloader.{k}' for s in ('train', 'val') for k in ('num_workers=0', 'persistent_workers=False')]
    e = sched['pretrain_epochs']
    if e:   # the demo schedule: 1 warmup epoch, then cosine to the end (one epoch only: constant lr)
        opts += [f'train_cfg.max_epochs={e}', f'train_cfg.val_interval={e}']
        opts += [f'param_scheduler.1.T_max={e - 1}', f'param_scheduler.1.end={e}'] if e > 1 else \
            ['param_scheduler=None']
    return opts


def _demo_schedule_options(task: Task, sched: dict) -> list[str]:
    no_val = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    if task.scope == 'det':
        e = sched['det_epochs']
        return no_val + ([f'train_cfg.max_epochs={e}', f'param_scheduler.1.end={e}',
                          f'param_scheduler.1.milestones=[{max(e - 1, 1)}]',
                          f'default_hooks.checkpoint.interval={e}'] if e else [])
    n = sched['seg_iters']
    return no_val + ([f'train_cfg.max_iters={n}', f'param_scheduler.0.end={n}',
                      f'default_hooks.checkpoint.interval={n}'] if n else [])


# ---------------------------------------------------------------------------------------------------------
# The plan: a list of steps with their outputs and dependencies.


@dataclass
class Step:
    kind: str                      # 'data' | 'pretrain' | 'train' | 'test' | 'share'
    name: str                      # unique, used for the log file
    title: str                     # what the progress line says
    outputs: list                  # Paths: all present → the step is done
    deps: list = field(default_factory=list)        # indices of steps this one needs
    script: Optional[str] = None   # 'train' | 'test': tools/<script>.py
    argv: list = field(default_factory=list)        # arguments of tools/<script>.py
    command: list = field(default_factory=list)     # the shell command (launcher applied)
    env: dict = field(default_factory=dict)         # environment prefix of the command (slurm: GPUS)
    func: Optional[Callable] = None                 # 'data' / 'share' steps: done in Python
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


def _load_config(config: str, options: list[str]):
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
    pointer = work_dir / 'last_checkpoint'
    if pointer.is_file():
        p = Path(pointer.read_text().strip())
        p = p if p.is_absolute() else ROOT / p
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


def _stamp_argv(argv) -> list:
    """The arguments that decide what a step computes: its argv without ``--resume`` and without the
    experiment names of in-process runs (``--subprocess`` does not change results)."""
    return [a for a in map(str, argv)
            if a != '--resume' and not a.startswith(('experiment_name=', 'visualizer.name='))]


def _read_stamp(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}   # unreadable: matches no arguments


def _launch(script: str, argv: list, launcher: str, gpus: int, partition: Optional[str], job: str,
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


def _slug(table: str, label: tuple) -> str:
    s = '_'.join(label).lower().replace(' + ', '-').replace(' ', '-').replace('✓', 'yes').replace('✗', 'no')
    return f'{table}_{s}'


def make_plan(tables, *, methods=None, demo=False, work_root, launcher='pytorch', gpus=None, partition=None,
              backbones=None, data_root=None, demo_schedule=None) -> list[Step]:
    """Every step the tables need, in running order, with what is done already and what still is needed."""
    work_root = Path(work_root).resolve()
    data_root = Path(data_root or ROOT / 'data/demo').resolve()
    backbones = backbones or {}
    sched = dict(DEMO_SCHEDULE, **(demo_schedule or {}))
    inproc = demo and launcher == 'none'
    steps: list[Step] = []

    def add(step: Step) -> int:
        steps.append(step)
        return len(steps) - 1

    def exp(name):   # unique experiment (logger, visualizer) names for runs inside one process
        return [f'experiment_name={name}', f'visualizer.name={name}'] if inproc else []

    def stamped(stamp: Path, argv: list, deps: list) -> dict:
        """The stamp fields of a step: what its stamp must hold (its arguments and those of the steps it needs)
        and whether its work dir holds the results of other arguments (its stamp, or a needed step, is stale)."""
        key = dict(argv=_stamp_argv(argv), after=[steps[d].key for d in deps if steps[d].key is not None])
        stale = any(steps[d].stale for d in deps) or _read_stamp(stamp) not in (None, key)
        return dict(stamp=stamp, key=key, stale=stale)

    rows = [(t, r) for t in tables for r in TABLES[t].rows if not r.reference
            and (not methods or dict(r.key)['method'] in methods)]
    if not rows:
        raise SystemExit('error: no table row to run (check --methods)')

    data_step = None
    if demo:
        datasets = ['imagenet'] + sorted({task_of(t, dict(r.key)).dataset for t, r in rows})
        from mixseg.demo_data import DATASET_DIRS, MARKER

        def make_data(datasets=tuple(datasets)):
            from mixseg.demo_data import make_demo_data
            make_demo_data(data_root, seed=0, size=sched['data_size'], only=','.join(datasets), log=print)
        data_step = add(Step('data', 'data', f'demo data ({", ".join(datasets)}) in {rel(data_root)}',
                             [data_root / DATASET_DIRS[d] / MARKER for d in datasets], func=make_data,
                             command=['python', 'tools/make_demo_data.py', '--out', rel(data_root), '--size',
                                      sched['data_size'], '--only', ','.join(datasets)]))

    pretrain_steps: dict = {}   # (model, method) -> (step index or None, backbone path)
    train_steps: dict = {}      # (task, model, method) -> (step index, work dir, config, task, final checkpoint)
    test_steps: dict = {}       # (train key, tag) -> step index
    for table, row in rows:
        key = dict(row.key)
        method = key['method']
        task = task_of(table, key)
        if demo:
            dm = DEMO_MODELS[key['model']]
            pmodel, pconfig, tconfig = dm.name, dm.pretrain.format(method), demo_config(DEMO_TRANSFER[task.name])
        else:
            pmodel = key['model']
            pconfig, tconfig = real_configs(table, key)
        for c in (pconfig, tconfig):
            if not (ROOT / c).is_file():
                raise SystemExit(f'error: config not found: {c} (table {table}, row {" ".join(row.label)})')
        label = f'{table}: {" / ".join(row.label)}'

        # (1) pretraining, shared by every row that needs this (model, method)
        pkey = (pmodel, method)
        if pkey not in pretrain_steps:
            given = backbones.get(f'{pmodel}_{method}') or backbones.get(method)
            if given is not None:
                pretrain_steps[pkey] = (None, given)
            else:
                wd = work_root / 'pretrain' / f'{pmodel}_{method}'
                opts = (_demo_pretrain_options(sched) if demo else []) + exp(f'pretrain_{pmodel}_{method}')
                backbone = wd / 'backbone.safetensors'
                argv = [pconfig, '--work-dir', rel(wd)] + (_demo_data_root(data_root, 'imagenet') if demo else []) \
                    + (['--cfg-options', *opts] if opts else [])
                deps = [data_step] if data_step is not None else []
                st = stamped(wd / 'pretrain.argv.json', argv, deps)
                # a killed run (checkpoints, no backbone file yet) continues from its latest checkpoint
                resume = not st['stale'] and (wd / 'last_checkpoint').is_file() and not backbone.is_file()
                argv[3:3] = ['--resume'] if resume else []
                cmd, env = _launch('train', argv, launcher, gpus or PRETRAIN_GPUS, partition,
                                   f'pretrain-{pmodel}-{method}', wd)
                batch = _load_config(pconfig, opts).train_dataloader.get('batch_size')
                i = add(Step('pretrain', f'pretrain_{pmodel}_{method}', f'pretrain {pmodel} {method}', [backbone],
                             deps=deps, script='train', argv=argv, command=cmd, env=env,
                             gpus=1 if launcher == 'none' else gpus or PRETRAIN_GPUS, batch=batch, resume=resume, **st))
                pretrain_steps[pkey] = (i, backbone)
        p_idx, backbone = pretrain_steps[pkey]
        if p_idx is not None:
            steps[p_idx].rows.append(label)

        # (2) transfer training, one per (task, pretrained backbone)
        tkey = (task.name, pmodel, method)
        if tkey not in train_steps:
            wd = work_root / task.name / f'{pmodel}_{method}'
            opts = [f'model.backbone.checkpoint={rel(backbone)}']
            if demo:
                opts += _demo_schedule_options(task, sched)
            opts += exp(f'{task.name}_{pmodel}_{method}')
            cfg = _load_config(tconfig, opts)
            ckpt_name = final_checkpoint_name(cfg)
            argv = [tconfig, '--work-dir', rel(wd)] + (_demo_data_root(data_root, task.dataset) if demo else []) \
                + ['--cfg-options', *opts]
            deps = [d for d in (p_idx, data_step) if d is not None]
            st = stamped(wd / 'train.argv.json', argv, deps)
            done = None if st['stale'] else final_checkpoint(wd, ckpt_name)
            resume = done is None and not st['stale'] and (wd / 'last_checkpoint').is_file()
            argv[3:3] = ['--resume'] if resume else []
            n = 1 if launcher == 'none' else gpus or task.gpus
            cmd, env = _launch('train', argv, launcher, n, partition, f'{task.name}-{pmodel}-{method}', wd)
            i = add(Step('train', f'train_{task.name}_{pmodel}_{method}', f'train {task.name} {pmodel} {method}',
                         [done or wd / ckpt_name], deps=deps, script='train', argv=argv, command=cmd, env=env,
                         gpus=n, batch=cfg.train_dataloader.get('batch_size'), resume=resume, **st))
            train_steps[tkey] = (i, wd, tconfig, task, done or wd / ckpt_name)
        t_idx, wd, tconfig, task, ckpt = train_steps[tkey]
        steps[t_idx].rows.append(label)

        # (3) tests: single scale, and multi-scale + flip for tables with "+MS" columns
        tags = sorted({c.tag for c in TABLES[table].columns}, key=['ss', 'ms'].index)
        order = ['model', 'method', 'decoder']
        row_opts = [f'table_row.table={table}'] + [
            f'table_row.{k}={v}' for k, v in sorted(row.key, key=lambda kv: (order + [kv[0]]).index(kv[0]))]
        for tag in tags:
            results = wd / 'results' / f'{tag}.json'
            if (tkey, tag) not in test_steps:
                opts = row_opts + exp(f'test_{tag}_{task.name}_{pmodel}_{method}')
                argv = [tconfig, rel(ckpt), '--work-dir', rel(wd)] + (['--tta'] if tag == 'ms' else []) \
                    + (_demo_data_root(data_root, task.dataset) if demo else []) + ['--cfg-options', *opts]
                n = 1 if launcher == 'none' else gpus or task.gpus
                cmd, env = _launch('test', argv, launcher, n, partition, f'test-{tag}-{task.name}-{pmodel}-{method}',
                                   wd)
                i = add(Step('test', f'test_{tag}_{task.name}_{pmodel}_{method}',
                             f'test {tag} {task.name} {pmodel} {method}', [results], deps=[t_idx], script='test',
                             argv=argv, command=cmd, env=env, gpus=n, rows=[label],
                             **stamped(wd / f'test-{tag}.argv.json', argv, [t_idx])))
                test_steps[(tkey, tag)] = i
            else:
                # a row sharing a run (demo: Table C's DeiT-T/S/B): the run's results, under this row's table_row
                src = test_steps[(tkey, tag)]
                dest = wd / 'rows' / _slug(table, row.label) / 'results' / f'{tag}.json'
                table_row = dict(table=table, **key)
                cmd = ['cp', rel(results), rel(dest)]   # (what it amounts to; table_row rewritten)
                add(Step('share', f'share_{tag}_{_slug(table, row.label)}', f'share {tag} → {label}', [dest],
                         deps=[src], func=_share_fn(results, dest, table_row), rows=[label], command=cmd,
                         **stamped(dest.parent.parent / f'share-{tag}.argv.json', cmd, [src])))

    # done: outputs exist, of the current arguments; needed: not done and (a final step, or something
    # downstream needs it)
    dependents = {i: [] for i in range(len(steps))}
    for i, s in enumerate(steps):
        s.done = not s.stale and all(Path(o).is_file() for o in s.outputs)
        for d in s.deps:
            dependents[d].append(i)
    for i in reversed(range(len(steps))):
        s = steps[i]
        leaf = s.kind in ('test', 'share')
        s.needed = not s.done and (leaf or any(steps[j].needed for j in dependents[i]))
        s.reason = 'done' if s.done else ('not needed: later steps are done' if not s.needed else
                                          STALE if s.stale else '')
    for s in steps:   # a given backbone file must exist when a transfer that needs it runs
        if s.kind == 'train' and s.needed:
            b = next(a.split('=', 1)[1] for a in s.argv if a.startswith('model.backbone.checkpoint='))
            if not any(steps[d].kind == 'pretrain' for d in s.deps) and not (ROOT / b).is_file():
                s.reason = f'missing backbone file {b}'
    return steps


def _share_fn(src: Path, dest: Path, table_row: dict):
    def share():
        from mixseg.checkpoint import atomic_write_text
        record = json.loads(src.read_text())
        record['table_row'] = table_row
        record['shared_from'] = str(src)
        atomic_write_text(dest, json.dumps(record, indent=2) + '\n')
    return share


# ---------------------------------------------------------------------------------------------------------
# Running the plan.

_TOOLS: dict = {}


def _tool(script: str):
    """tools/<script>.py as a module (its ``main(argv)`` runs a step inside this process)."""
    if script not in _TOOLS:
        _TOOLS[script] = load_tool(script)
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


def _run_inprocess(script: Optional[str], argv: list, func: Optional[Callable], log: Path, shell: str) -> None:
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
            gc.collect()


def _run_subprocess(command: list, env: dict, log: Path, shell: str, threads: Optional[int]) -> None:
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


def _worker_init(threads: Optional[int]) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def _start_over(step: Step) -> None:
    """Before a stale step runs: its old results are removed and, for a training, the checkpoints of its work
    dir (the old final one, the one ``last_checkpoint`` points at) move to ``<work dir>/stale/`` (replacing
    what an earlier start-over left there), so that it trains from scratch."""
    wd = step.stamp.parent
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


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}' if s >= 3600 else f'{s // 60}:{s % 60:02d}'


# Rough seconds per kind of step (demo, one core each) for the first ETA and for the order in which ready steps
# start (pretrainings first as they unblock the rest, then the longest); the ETA then follows measured times.
_GUESS = {'data': 15, 'pretrain-vit': 45, 'pretrain-pvt': 60, 'train-seg': 90, 'train-det': 100, 'test-ss-seg': 8,
          'test-ms-seg': 45, 'test-ss-det': 8, 'share': 0}
_KIND_ORDER = {'data': 0, 'pretrain': 1, 'train': 2, 'test': 3, 'share': 4}


def _group(step: 'Step') -> str:
    if step.kind in ('data', 'share'):
        return step.kind
    if step.kind == 'pretrain':
        return 'pretrain-pvt' if 'pvt' in step.name else 'pretrain-vit'
    scope = 'det' if 'coco' in step.name else 'seg'
    if step.kind == 'train':
        return f'train-{scope}'
    return f'test-{"ms" if "--tta" in step.argv else "ss"}-{scope}'


def describe(step: Step, i: int, n: int) -> str:
    head = f'[{i:>{len(str(n))}}/{n}] {step.title}'
    if step.script and step.command[0] != 'python':
        head += f'  ({step.gpus} GPU{"s" if step.gpus > 1 else ""}'
        head += f' × {step.batch} = {step.gpus * step.batch})' if step.batch else ')'
    return head


def run_plan(steps: list[Step], work_root: Path, *, dry_run: bool, inproc: bool, jobs: int = 1,
             threads: Optional[int] = None, keep_going: bool = False, out=print) -> list[Step]:
    """Print (dry run) or run the needed steps, up to ``jobs`` at a time in dependency order; returns the
    steps that failed or could not run."""
    n = len(steps)
    todo = [i for i, s in enumerate(steps) if s.needed]
    out(f'{n} steps, {len(todo)} to run, {n - len(todo)} done or not needed; work root {rel(work_root)}'
        + (f'; {jobs} at a time' if jobs > 1 and not dry_run and todo else ''))
    if dry_run or not todo:
        for i, s in enumerate(steps, 1):
            head = describe(s, i, n)
            if not s.needed:
                out(f'{head}  skip ({s.reason})')
                continue
            out(f'{head}' + (f'  [{s.reason}]' if s.reason else '') + ('  (resume)' if s.resume else ''))
            if s.kind in ('pretrain', 'train') and len(s.rows) > 1:
                out(f'    # for {"; ".join(s.rows)}')
            out(f'    $ {s.shell()}' if s.kind != 'share' else f'    = {s.shell()}  (table_row of this row)')
        return []
    for i, s in enumerate(steps, 1):
        if not s.needed:
            out(f'{describe(s, i, n)}  skip ({s.reason})')

    import concurrent.futures as cf
    t0 = time.perf_counter()
    spent: dict = {}
    failed: list[Step] = []
    finished: set = {i for i, s in enumerate(steps) if not s.needed}
    bad: set = set()
    pending = list(todo)
    running: dict = {}

    def new_pool():
        if jobs <= 1:
            return None
        if not inproc:
            return cf.ThreadPoolExecutor(jobs)
        import multiprocessing as mp
        return cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context('fork'), initializer=_worker_init,
                                      initargs=(threads,))
    pool = new_pool()
    broken = False   # a worker process died: the pool takes nothing more and fails the steps it holds
    if pool is None and inproc:
        _worker_init(threads)

    def log_of(s):
        return work_root / 'logs' / f'{s.name}.log'

    def eta():
        left = [steps[i] for i in pending] + [steps[i] for i in running.values()]
        # measured mean per group; unmeasured groups: the guess scaled by how fast measured groups went
        mean = {g: sum(v) / len(v) for g, v in spent.items()}
        known = [g for g in mean if _GUESS.get(g)]
        speed = sum(mean[g] for g in known) / sum(_GUESS[g] for g in known) if known else 1.0
        tot = sum(mean.get(_group(s), _GUESS.get(_group(s), 30) * speed) for s in left)
        return tot / max(1, min(jobs, len(left)))

    def report(i, dt, err):
        s = steps[i]
        head = describe(s, i + 1, n)
        missing = [rel(o) for o in s.outputs if not Path(o).is_file()]
        if err is None and missing:
            err = RuntimeError(f'finished without writing {", ".join(missing)}')
        if err is None:
            finished.add(i)
            spent.setdefault(_group(s), []).append(dt)
            out(f'{head}  done in {_fmt_time(dt)}  (elapsed {_fmt_time(time.perf_counter() - t0)}, '
                f'ETA {_fmt_time(eta())})')
            return
        bad.add(i)
        failed.append(s)
        out(f'{head}  FAILED after {_fmt_time(dt)}: {err}; log: {rel(log_of(s))}')
        try:
            tail = log_of(s).read_text(errors='replace').splitlines()[-15:]
            out('\n'.join('    | ' + line for line in tail))
        except OSError:
            pass

    def start(i):
        nonlocal broken
        s = steps[i]
        log = log_of(s)
        if s.stale:
            _start_over(s)
        if s.stamp is not None:
            from mixseg.checkpoint import atomic_write_text
            atomic_write_text(s.stamp, json.dumps(s.key, indent=1) + '\n')
        if s.func is None and pool is not None:
            try:
                if inproc:
                    fut = pool.submit(_run_inprocess, s.script, list(s.argv), None, log, s.shell())
                else:
                    fut = pool.submit(_run_subprocess, s.command, s.env, log, s.shell(), threads)
            except cf.BrokenExecutor:   # a worker died since the last look: the step did not start
                broken = True
                pending.append(i)
                return
            fut.t0 = time.perf_counter()
            running[fut] = i
        if s.kind != 'share':
            out(f'{describe(s, i + 1, n)}  started' + ('  (resume)' if s.resume else '')
                + (f'  [{s.reason}]' if s.stale else '') + f'\n    $ {s.shell()}')
        if s.func is not None or pool is None:   # in this process (data, share; or one step at a time)
            ts = time.perf_counter()
            try:
                if s.func is not None or inproc:
                    _run_inprocess(s.script, s.argv, s.func, log, s.shell())
                else:
                    _run_subprocess(s.command, s.env, log, s.shell(), threads)
                err = None
            except RuntimeError as e:
                err = e
            report(i, time.perf_counter() - ts, err)

    def collect_done(futures):
        nonlocal broken
        for fut in futures:
            i = running.pop(fut)
            try:
                fut.result()
                err = None
            except cf.BrokenExecutor:   # (a RuntimeError) its worker or one beside it died: the pool fails all
                broken = True
                err = RuntimeError('worker process died (killed? out of memory?) while this step ran; '
                                   'the steps running beside it stop with it')
            except RuntimeError as e:
                err = e
            except Exception as e:
                err = RuntimeError(f'{type(e).__name__}: {e}')
            report(i, time.perf_counter() - fut.t0, err)

    try:
        while pending or running:
            stop = bool(bad) and not keep_going
            while not stop and not broken and pending and len(running) < max(jobs, 1):
                ready = None
                for i in sorted(pending, key=lambda i: (_KIND_ORDER[steps[i].kind], -_GUESS.get(_group(steps[i]), 0),
                                                        i)):
                    deps = steps[i].deps
                    if any(d in bad for d in deps) or steps[i].reason.startswith('missing'):
                        pending.remove(i)
                        bad.add(i)
                        failed.append(steps[i])
                        out(f'{describe(steps[i], i + 1, n)}  not run: '
                            + (steps[i].reason or 'an earlier step failed'))
                        continue
                    if all(d in finished for d in deps):
                        ready = i
                        break
                if ready is None:
                    break
                pending.remove(ready)
                start(ready)
                stop = bool(bad) and not keep_going
            if running:
                collect_done(cf.wait(list(running), return_when=cf.FIRST_COMPLETED)[0])
            if broken:   # the other steps the pool held fail at once; then a fresh pool for what is left
                collect_done(cf.wait(list(running))[0])
                pool.shutdown(wait=True)
                pool, broken = new_pool(), False
                continue
            if not running and (stop or not pending):
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for i in pending:
        if i not in bad:
            failed.append(steps[i])
    return failed


def finish_tables(tables, work_root: Path, note: str = '', write: bool = True, out=print, plot_note: str = ''):
    # (a work root that does not exist yet, as in a first dry run, is no reason for a warning)
    col, text = render_tables([work_root] if work_root.is_dir() else [], tables, 'md', note, warn=out)
    out('\n' + text)
    missing = {t: missing_cells(TABLES[t], col) for t in tables}
    if write and work_root.is_dir():
        from mixseg.checkpoint import atomic_write_text
        atomic_write_text(work_root / 'tables.md', text + '\n')
        try:
            png = plot([TABLES[t] for t in tables], col, work_root / 'tables.png', plot_note)  # legend: short
            out(f'\ntables written to {rel(work_root / "tables.md")}, plot to {rel(png)}')
        except ImportError as e:  # matplotlib missing: the markdown is still there
            out(f'\ntables written to {rel(work_root / "tables.md")} (no plot: {e})')
    return col, missing


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('tables', nargs='+', type=str.upper, choices=sorted(TABLES) + ['ALL'], metavar='TABLE',
                   help='A, B, C (or ALL)')
    p.add_argument('--methods', nargs='+', choices=METHODS, help='only the rows of these pretraining methods')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default=None,
                   help='default: pytorch (dist_train.sh), with --demo: none (inside this process)')
    p.add_argument('--gpus', type=int, default=None, help='GPUs per run (default: the papers\' 8)')
    p.add_argument('--partition', help='Slurm partition (--launcher slurm)')
    p.add_argument('--dry-run', action='store_true', help='print the plan and the commands, run nothing')
    p.add_argument('--demo', action='store_true', help='the demo configs, models and data (a CPU, minutes)')
    p.add_argument('--work-root', default=None, help='default: work_dirs/tables (--demo: work_dirs/demo)')
    p.add_argument('--data-root', default='data/demo', help='demo data (--demo)')
    p.add_argument('--backbone', nargs='+', default=[], metavar='METHOD=PATH',
                   help='use this backbone file instead of pretraining (METHOD=PATH, or MODEL_METHOD=PATH, '
                        'e.g. deit-s_transmix=checkpoints/deit-s_transmix.safetensors)')
    p.add_argument('--keep-going', action='store_true', help='run the independent steps after a failure')
    p.add_argument('--subprocess', action='store_true', help='--demo: run each step as a subprocess')
    p.add_argument('--jobs', type=int, default=None,
                   help='steps run at the same time (default 1; --demo: 2 worker processes)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads per step (default: torch\'s; --demo with 2 jobs: 1 each)')
    p.add_argument('--demo-schedule', nargs='+', default=[], metavar='KEY=VALUE',
                   help=f'--demo: data size and schedules, default {DEMO_SCHEDULE}')
    args = p.parse_args(argv)
    if 'ALL' in args.tables:
        args.tables = sorted(TABLES)
    args.tables = list(dict.fromkeys(args.tables))
    args.launcher = args.launcher or ('none' if args.demo else 'pytorch')
    if args.launcher == 'slurm' and not args.partition:
        p.error('--launcher slurm needs --partition')
    if args.gpus is not None and args.gpus < 1:
        p.error('--gpus must be ≥ 1')
    inproc = args.demo and args.launcher == 'none' and not args.subprocess
    args.jobs = args.jobs or (2 if inproc else 1)
    if args.threads is None and inproc and args.jobs > 1:
        args.threads = max(1, (os.cpu_count() or 2) // args.jobs)
    args.work_root = Path(args.work_root or ('work_dirs/demo' if args.demo else 'work_dirs/tables')).resolve()
    args.data_root = Path(args.data_root).resolve()
    sched = {}
    for item in args.demo_schedule:
        k, _, v = item.partition('=')
        if k not in DEMO_SCHEDULE or not v:
            p.error(f'--demo-schedule {item!r}: expected KEY=VALUE with KEY in {sorted(DEMO_SCHEDULE)}')
        if k == 'data_size':
            from mixseg.demo_data import SIZES
            if v not in SIZES:
                p.error(f'--demo-schedule {item!r}: data_size is one of {", ".join(SIZES)}')
            sched[k] = v
        else:
            try:
                sched[k] = int(v)
            except ValueError:
                sched[k] = 0
            if sched[k] < 1:
                p.error(f'--demo-schedule {item!r}: {k} is a whole number ≥ 1')
    args.demo_schedule = sched
    return args


def main(argv=None, out=print) -> int:
    args = parse_args(argv)
    steps = make_plan(args.tables, methods=args.methods, demo=args.demo, work_root=args.work_root,
                      launcher=args.launcher, gpus=args.gpus, partition=args.partition,
                      backbones=parse_backbones(args.backbone), data_root=args.data_root,
                      demo_schedule=args.demo_schedule)
    if args.gpus not in (None, 8) and args.launcher != 'none' and not args.demo:
        out(f'note: {args.gpus} GPUs per run instead of the papers\' 8: the per-GPU batch of each config stays, '
            'so the total batch (and the lr it was tuned for) differs from the papers')
    inproc = args.demo and args.launcher == 'none' and not args.subprocess
    os.chdir(ROOT)   # the configs' relative paths (and the printed commands) are relative to the repository
    failed = run_plan(steps, args.work_root, dry_run=args.dry_run, inproc=inproc, jobs=args.jobs,
                      threads=args.threads, keep_going=args.keep_going, out=out)
    note = demo_note(args.tables) if args.demo else ''
    _, missing = finish_tables(args.tables, args.work_root, note, write=not args.dry_run, out=out,
                               plot_note=DEMO_NOTE if args.demo else '')
    if failed:
        out(f'\n{len(failed)} step(s) failed or not run: ' + ', '.join(s.name for s in failed))
        return 1
    if not args.dry_run:
        empty = {t: m for t, m in missing.items() if m}
        for t, m in empty.items():
            out(f'table {t}: {len(m)} cell(s) without a result: ' + ', '.join(f'{" ".join(r)}/{c}' for r, c in m))
        if empty:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

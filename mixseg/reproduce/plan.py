"""The plan of a table run: which pretrainings, transfers and tests each row needs (paper or demo setting),
with what is done already and what still is needed."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mixseg.tables.published import METHOD_TITLES, TABLE_D, TABLES, method_rows

from .steps import (ROOT, STALE, Step, config_with_options, final_checkpoint, final_checkpoint_name, launch_command,
                    read_stamp, rel, row_slug, share_fn, stamp_argv)

#: the pretraining methods a table run knows (``--methods``): the papers' (registry: pretrain.mix.methods)
METHODS = tuple(METHOD_TITLES)
DEMO_NOTE = 'toy-scale demo: tiny models, generated data'


# ---------------------------------------------------------------------------------------------------------
# What each table trains: the transfer task of its rows (dataset + decoder) and the paper's GPU setting.


@dataclass(frozen=True)
class Task:
    name: str             # work-dir folder, e.g. 'pascal-context-59_mask'
    dataset: str          # demo dataset name (mixcore.demo_data): 'ade20k' | 'pascal_context' | 'coco'
    gpus: int             # the paper's GPU count
    scope: str            # 'seg' | 'det'


PRETRAIN_GPUS = 8         # DeiT recipe: 8 GPUs × 128 = 1024
TASKS = {
    ('A', 'linear'): Task('pascal-context-59_linear', 'pascal_context', 8, 'seg'),  # 8 × 2 = 16
    ('A', 'mask'): Task('pascal-context-59_mask', 'pascal_context', 8, 'seg'),
    ('B', None): Task('coco_mask-rcnn-1x', 'coco', 8, 'det'),                       # 8 × 2 = 16
    ('C', None): Task('ade20k_mask', 'ade20k', 8, 'seg'),                            # 8 × 1 = 8
}


def task_of(table: str, key: dict) -> Optional[Task]:
    """The transfer task of a row; None for Tables D and E (ImageNet top-1, robustness: the pretraining itself)."""
    if table in ('D', 'E'):
        return None
    return TASKS[(table, key.get('decoder') if table == 'A' else None)]


# Models of Table D without a pretraining config, and why (printed by the plan)
_CA_SWIN = ('CA-Swin, Swin with class-attention layers, is not implemented: its definition is not pinned by '
            'public sources (issue 16, item 3)')
NO_CONFIG = {'ca-swin-t': _CA_SWIN, 'ca-swin-s': _CA_SWIN}


def pretrain_config(model: str, method: str) -> tuple[Optional[str], str]:
    """(the pretraining config of (model, method), its pattern): ``configs/pretrain/<model>_<method>_<gpus>xb
    <batch>-<epochs>e_in1k.py`` — each model's recipe names its own GPUs, batch and epochs. None when no
    config matches; more than one is an error."""
    pattern = f'configs/pretrain/{model}_{method}_*xb*-*e_in1k.py'
    found = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    if len(found) > 1:
        raise SystemExit(f'error: more than one pretraining config for {model} {method}: {", ".join(found)}')
    return (found[0] if found else None), pattern


def paper_gpus(config: str, default: int = 8) -> int:
    """The paper's GPU count of a config, from its name (``..._8xb128-300e_...`` → 8)."""
    m = re.search(r'_(\d+)xb(\d+)', Path(config).name)
    return int(m.group(1)) if m else default


def _first_existing(*candidates: str) -> str:
    for c in candidates:
        if (ROOT / c).is_file():
            return c
    return candidates[-1]   # reported as missing by the plan's check


def real_configs(table: str, key: dict) -> tuple[str, str]:
    """(pretraining config, transfer config) of a row on the real datasets (paths relative to the repo)."""
    model, method = key['model'], key['method']
    pretrain, pattern = pretrain_config(model, method)
    pretrain = pretrain or pattern   # reported as missing by the plan's check
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
# three rows per method share one run (and show the same numbers). Table D: the plain ViTs with a class token
# (DeiT, CaiT, XCiT) → the demo ViT, the pyramids (PVT, Swin, CA-Swin) → the demo PVT.
DEMO_MODELS = {'deit-t': DEMO_VIT, 'deit-s': DEMO_VIT, 'deit-b': DEMO_VIT, 'pvt-s': DEMO_PVT}
DEMO_MODELS.update({dict(r.key)['model']: DEMO_PVT if 'pvt' in dict(r.key)['model'] or 'swin' in dict(r.key)['model']
                    else DEMO_VIT for r in TABLE_D.rows if dict(r.key)['model'] not in DEMO_MODELS})
_NAMES = {'deit-t': 'DeiT-T', 'deit-s': 'DeiT-S', 'deit-b': 'DeiT-B', 'pvt-s': 'PVT-S'}
_NAMES.update({dict(r.key)['model']: r.label[0] for r in TABLE_D.rows if dict(r.key)['model'] not in _NAMES})
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
    models = {dict(r.key)['model'] for t in tables for r in TABLES[t].rows if not r.reference}
    used = {DEMO_MODELS[k] for k in models}
    parts = [DEMO_NOTE]
    parts += [f'{"/".join(_NAMES.get(k, k) for k, v in DEMO_MODELS.items() if v is m and k in models)} → {m.describe}'
              for m in sorted(used, key=lambda m: m.name, reverse=True)]
    if 'C' in tables and DEMO_MODELS['deit-t'] is DEMO_MODELS['deit-s'] is DEMO_MODELS['deit-b']:
        parts.append('Table C: the DeiT-T/S/B rows share one demo run per method')
    if 'D' in tables:
        parts.append('Table D: every model of a family shows its demo model\'s top-1')
    return '; '.join(parts)


def _demo_data_root(data_root: Path, dataset: str) -> list[str]:
    """``--data-root`` of tools/train.py / test.py: every dataloader (and COCO evaluator) of the config reads
    the generated copy of ``dataset``."""
    from mixcore.demo_data import DATA_ROOTS
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


def parse_demo_schedule(items) -> dict:
    """``--demo-schedule KEY=VALUE ...`` as a dict; a ValueError names the item that is wrong."""
    sched = {}
    for item in items or ():
        k, _, v = item.partition('=')
        if k not in DEMO_SCHEDULE or not v:
            raise ValueError(f'--demo-schedule {item!r}: expected KEY=VALUE with KEY in {sorted(DEMO_SCHEDULE)}')
        if k == 'data_size':
            from mixcore.demo_data import SIZES
            if v not in SIZES:
                raise ValueError(f'--demo-schedule {item!r}: data_size is one of {", ".join(SIZES)}')
            sched[k] = v
        else:
            try:
                sched[k] = int(v)
            except ValueError:
                sched[k] = 0
            if sched[k] < 1:
                raise ValueError(f'--demo-schedule {item!r}: {k} is a whole number ≥ 1')
    return sched


# ---------------------------------------------------------------------------------------------------------
# The plan: a list of steps with their outputs and dependencies.


class Planner:
    """Builds the steps of a table run in running order, one method per kind of step; a step several rows
    need is made once: a pretraining per (model, method), a transfer per (task, pretraining), a test per
    (transfer, tag). :func:`make_plan` drives it row by row."""

    def __init__(self, *, demo, work_root, launcher, gpus, partition, backbones, data_root, demo_schedule, amp,
                 tensorboard, extra_methods=None):
        self.demo, self.launcher, self.gpus, self.partition = demo, launcher, gpus, partition
        self.extra_methods = dict(extra_methods or {})   # name -> pretrain.method_config.MethodConfig (--method)
        self.work_root = Path(work_root).resolve()
        self.data_root = Path(data_root or ROOT / 'data/demo').resolve()
        self.backbones = backbones or {}
        self.sched = dict(DEMO_SCHEDULE, **(demo_schedule or {}))
        self.inproc = demo and launcher == 'none'
        self.amp_argv = [] if amp is None else ['--amp'] + ([amp] if amp else [])
        self.tensorboard = tensorboard
        self.steps: list[Step] = []
        self.data_step: Optional[int] = None   # demo: the step that generates the data
        self.pretrain_steps: dict = {}   # (model, method) -> (step index or None, backbone path)
        self.pretrain_final: dict = {}   # (model, method) -> its final training checkpoint
        self.label_maps: Optional[tuple] = None   # (step index, folder) of the demo label maps
        self.train_steps: dict = {}      # (task, model, method) -> (step index, work dir, config, task, final ckpt)
        self.test_steps: dict = {}       # (train key, tag) -> step index

    # -- shared pieces ------------------------------------------------------------------------------------

    def add(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def exp(self, name: str) -> list:
        """Unique experiment (logger, visualizer) names for runs inside one process; the TensorBoard switch."""
        return ([f'experiment_name={name}', f'visualizer.name={name}'] if self.inproc else []) + \
            (['tensorboard=True'] if self.tensorboard else [])

    def stamped(self, stamp: Path, argv: list, deps: list) -> dict:
        """The stamp fields of a step: what its stamp must hold (its arguments and those of the steps it needs)
        and whether its work dir holds the results of other arguments (its stamp, or a needed step, is stale)."""
        key = dict(argv=stamp_argv(argv), after=[self.steps[d].key for d in deps if self.steps[d].key is not None])
        stale = any(self.steps[d].stale for d in deps) or read_stamp(stamp) not in (None, key)
        return dict(stamp=stamp, key=key, stale=stale)

    def n_gpus(self, paper: int) -> int:
        return 1 if self.launcher == 'none' else self.gpus or paper

    def train_flags(self, cfg, n: int, paper: int) -> tuple[list, list]:
        """(tools/train.py flags, --cfg-options) of a real (not demo) training run on ``n`` GPUs: AMP, and
        the lr rescaled when the total batch differs from the one the config's lr belongs to."""
        if self.demo:
            return self.amp_argv, []
        per_gpu = cfg.train_dataloader.get('batch_size') or 1
        asl = cfg.get('auto_scale_lr') or {}
        base = asl.get('base_batch_size') or paper * per_gpu
        if n * per_gpu == base:
            return self.amp_argv, []
        return self.amp_argv + ['--auto-scale-lr'], ([] if asl.get('base_batch_size') else
                                                     [f'auto_scale_lr.base_batch_size={base}'])

    def given(self, pmodel: str, method: str):
        """The backbone file given with ``--backbone`` for (model, method), else for the method; or None."""
        return self.backbones.get(f'{pmodel}_{method}') or self.backbones.get(method)

    def pretrain_source(self, model: str, method: str, explain: bool = False) -> tuple:
        """(pretraining name, config or None, why it is missing) of a Table D/E row: the demo model's config,
        or ``configs/pretrain/<model>_<method>_*``; ``explain``: say why a model has no config."""
        if method in self.extra_methods:   # --method: the model's baseline recipe with the method's mixer
            pmodel, baseline, missing = self.pretrain_source(model, 'baseline', explain)
            return pmodel, baseline and self.generated_config(baseline, method), missing
        if self.demo:
            dm = DEMO_MODELS[model]
            return dm.name, dm.pretrain.format(method), ''
        pconfig, pattern = pretrain_config(model, method)
        missing = f'missing config: no {pattern}'
        if explain:
            missing += f' ({NO_CONFIG[model]})' if model in NO_CONFIG else ' (not written yet)'
        return model, pconfig, missing

    def generated_config(self, baseline_config: str, method: str) -> str:
        """The pretraining config of a ``--method`` method: ``baseline_config`` with that method's mixer, written
        into ``<work root>/configs/`` (:func:`pretrain.method_config.write_pretraining_config`)."""
        from pretrain.method_config import write_pretraining_config
        return rel(write_pretraining_config(self.extra_methods[method], ROOT / baseline_config,
                                            self.work_root / 'configs'))

    # -- the steps ----------------------------------------------------------------------------------------

    def demo_data(self, rows: list) -> None:
        """Demo: the step that generates the datasets the rows read (ImageNet always; Table E: A, R, O)."""
        datasets = ['imagenet'] + sorted({task_of(t, dict(r.key)).dataset for t, r in rows if t not in ('D', 'E')})
        datasets += ['robustness'] if any(t == 'E' for t, _ in rows) else []   # Table E: generated A, R, O
        from mixcore.demo_data import DATASET_DIRS, MARKER
        data_root, size = self.data_root, self.sched['data_size']

        def make_data(datasets=tuple(datasets)):
            from mixcore.demo_data import make_demo_data
            make_demo_data(data_root, seed=0, size=size, only=','.join(datasets), log=print)
        self.data_step = self.add(Step('data', 'data', f'demo data ({", ".join(datasets)}) in {rel(data_root)}',
                                       [data_root / DATASET_DIRS[d] / MARKER for d in datasets], func=make_data,
                                       command=['python', 'tools/make_demo_data.py', '--out', rel(data_root),
                                                '--size', size, '--only', ','.join(datasets)]))

    def maps_for(self, pmodel: str, method: str) -> Optional[tuple]:
        """The label maps a demo TokenMix pretraining reads, made first with the demo baseline as teacher (the
        paper's label source); None for other pretrainings and for a given backbone file."""
        if self.demo and method == 'tokenmix' and self.given(pmodel, method) is None:
            return self.label_maps_step()
        return None

    def label_maps_step(self) -> tuple:
        """Demo: label maps of the demo ImageNet training images, the demo baseline ViT as teacher (its final
        training checkpoint, head included), made once; (step index, folder)."""
        if self.label_maps is not None:
            return self.label_maps
        teacher_cfg = DEMO_VIT.pretrain.format('baseline')
        t_idx, _ = self.pretraining(DEMO_VIT.name, 'baseline', teacher_cfg, '', None)
        ckpt = self.pretrain_final.get((DEMO_VIT.name, 'baseline'))
        out = self.work_root / 'label_maps' / f'{DEMO_VIT.name}_baseline'
        if t_idx is None or ckpt is None:
            raise SystemExit('error: the demo TokenMix pretraining makes its label maps with the demo baseline '
                             'ViT as teacher; a given baseline backbone file has no classifier head to do it')
        from mixcore.demo_data import DATA_ROOTS
        argv = [rel(self.data_root / DATA_ROOTS['imagenet'] / 'train'), rel(out), '--config', teacher_cfg,
                '--checkpoint', rel(ckpt), '--workers', '0', '--no-progress', '--device', 'cpu']
        deps = [d for d in (self.data_step, t_idx) if d is not None]
        st = self.stamped(out / 'maps.argv.json', argv, deps)
        if st['stale']:  # a retrained teacher: its maps replace the old ones (make_label_maps refuses to mix them)
            argv.append('--overwrite')
        i = self.add(Step('maps', f'label-maps_{DEMO_VIT.name}_baseline', f'label maps ({DEMO_VIT.name} baseline '
                          f'as teacher)', [out / 'report.json'], deps=deps, script='make_label_maps', argv=argv,
                          command=['python', 'tools/make_label_maps.py', *argv], **st))
        self.label_maps = (i, out)
        return self.label_maps

    def pretraining(self, pmodel: str, method: str, pconfig: Optional[str], missing: str, label: Optional[str],
                    maps: Optional[tuple] = None) -> tuple:
        """(step index or None for a given file, backbone file) of the pretraining (pmodel, method), shared
        by every row that needs it; ``pconfig`` None: no config (``missing`` says why), reported, not run;
        ``maps``: (label-map step, folder) a TokenMix pretraining reads; ``label`` None: needed by no row."""
        pkey = (pmodel, method)
        if pkey not in self.pretrain_steps:
            given = self.given(pmodel, method)
            wd = self.work_root / 'pretrain' / f'{pmodel}_{method}'
            backbone = wd / 'backbone.safetensors'
            if given is not None:
                self.pretrain_steps[pkey] = (None, given)
            elif pconfig is None:
                i = self.add(Step('pretrain', f'pretrain_{pmodel}_{method}', f'pretrain {pmodel} {method}',
                                  [backbone], blocked=missing))
                self.pretrain_steps[pkey] = (i, backbone)
            else:
                self.pretrain_steps[pkey] = (self.pretrain_step(pmodel, method, pconfig, wd, maps), backbone)
        p_idx, backbone = self.pretrain_steps[pkey]
        if p_idx is not None and label is not None:
            self.steps[p_idx].rows.append(label)
        return p_idx, backbone

    def pretrain_step(self, pmodel: str, method: str, pconfig: str, wd: Path, maps: Optional[tuple]) -> int:
        """The training step of a pretraining config into ``wd``; its index."""
        opts = (_demo_pretrain_options(self.sched) if self.demo else []) + self.exp(f'pretrain_{pmodel}_{method}')
        if maps is not None:
            opts.append(f'train_dataloader.dataset.label_map_root={rel(maps[1])}')
        paper = paper_gpus(pconfig, PRETRAIN_GPUS)
        n = self.n_gpus(paper)
        cfg = config_with_options(pconfig, opts)
        flags, extra = self.train_flags(cfg, n, paper)
        opts += extra
        argv = [pconfig, '--work-dir', rel(wd)] + (_demo_data_root(self.data_root, 'imagenet') if self.demo else []) \
            + flags + (['--cfg-options', *opts] if opts else [])
        deps = [d for d in (self.data_step, maps[0] if maps else None) if d is not None]
        st = self.stamped(wd / 'pretrain.argv.json', argv, deps)
        # a killed run (checkpoints, no backbone file yet) continues from its latest checkpoint
        backbone = wd / 'backbone.safetensors'
        resume = not st['stale'] and (wd / 'last_checkpoint').is_file() and not backbone.is_file()
        argv[3:3] = ['--resume'] if resume else (['--overwrite-work-dir'] if st['stale'] else [])
        cmd, env = launch_command('train', argv, self.launcher, n, self.partition, f'pretrain-{pmodel}-{method}', wd)
        self.pretrain_final[(pmodel, method)] = wd / final_checkpoint_name(cfg)
        return self.add(Step('pretrain', f'pretrain_{pmodel}_{method}', f'pretrain {pmodel} {method}', [backbone],
                             deps=deps, script='train', argv=argv, command=cmd, env=env, gpus=n,
                             batch=cfg.train_dataloader.get('batch_size'), resume=resume, **st))

    def robustness(self, key: dict, label: str) -> None:
        """Table E: the benchmarks on the pretraining's final classifier checkpoint."""
        from .robustness import data_dirs, robustness_steps
        method = key['method']
        pmodel, pconfig, missing = self.pretrain_source(key['model'], method)
        p_idx, _ = self.pretraining(pmodel, method, pconfig, missing, label, self.maps_for(pmodel, method))
        ckpt = self.pretrain_final.get((pmodel, method))
        blocked = '' if ckpt else ('a given backbone file has no classifier head: Table E needs the pretraining\'s '
                                   'training checkpoint' if p_idx is None else missing)
        deps = [d for d in (p_idx, self.data_step) if d is not None]
        for s in robustness_steps(key['model'], pmodel, method, label, ckpt, deps, self.work_root,
                                  data_dirs(self.demo, self.data_root), self.demo, self.stamped, blocked):
            self.add(s)

    def top1(self, table: str, key: dict, label: str) -> None:
        """Table D: the pretraining, then its top-1 (the backbone file's metadata) into the row's results."""
        method = key['method']
        pmodel, pconfig, missing = self.pretrain_source(key['model'], method, explain=True)
        p_idx, backbone = self.pretraining(pmodel, method, pconfig, missing, label)
        dest = self.work_root / 'imagenet-1k' / row_slug(table, (key['model'], method)) / 'results' / 'ss.json'
        cmd = ['top-1', 'of', rel(backbone), 'into', rel(dest)]   # (what it amounts to)
        self.add(Step('top1', f'top1_{key["model"]}_{method}', f'top-1 {label}', [dest],
                      deps=[p_idx] if p_idx is not None else [], rows=[label], command=cmd,
                      func=_top1_fn(backbone, dest, dict(table=table, **key)),
                      **self.stamped(dest.parent.parent / 'top1.argv.json', cmd, [p_idx] if p_idx is not None else [])))

    def transfer(self, table: str, row, label: str) -> None:
        """Tables A-C: (1) the pretraining, (2) the transfer training, (3) the tests of a row."""
        key = dict(row.key)
        method, task = key['method'], task_of(table, key)
        pmodel, pconfig, _ = self.pretrain_source(key['model'], method)
        if self.demo:
            tconfig = demo_config(DEMO_TRANSFER[task.name])
        else:
            _, tconfig = real_configs(table, key)
            pconfig = pconfig or pretrain_config(key['model'], method)[1]   # reported as missing below
        for c in (pconfig, tconfig):
            if not (ROOT / c).is_file():
                raise SystemExit(f'error: config not found: {c} (table {table}, row {" ".join(row.label)})')
        # (1) pretraining, shared by every row that needs this (model, method); a demo TokenMix pretraining
        # first makes its label maps with the demo baseline as teacher (the paper's label source)
        p_idx, backbone = self.pretraining(pmodel, method, pconfig, '', label, self.maps_for(pmodel, method))
        # (2) transfer training, one per (task, pretrained backbone)
        tkey = (task.name, pmodel, method)
        if tkey not in self.train_steps:
            self.train_steps[tkey] = self.transfer_training(task, pmodel, method, tconfig, p_idx, backbone)
        self.steps[self.train_steps[tkey][0]].rows.append(label)
        # (3) tests: single scale, and multi-scale + flip for tables with "+MS" columns
        self.tests(table, row, label, tkey)

    def transfer_training(self, task: Task, pmodel: str, method: str, tconfig: str, p_idx: Optional[int],
                          backbone) -> tuple:
        """The transfer training of a pretraining on a task: (step index, work dir, config, task, final ckpt)."""
        wd = self.work_root / task.name / f'{pmodel}_{method}'
        opts = [f'model.backbone.checkpoint={rel(backbone)}']
        if self.demo:
            opts += _demo_schedule_options(task, self.sched)
        opts += self.exp(f'{task.name}_{pmodel}_{method}')
        cfg = config_with_options(tconfig, opts)
        n = self.n_gpus(task.gpus)
        flags, extra = self.train_flags(cfg, n, task.gpus)
        opts += extra
        ckpt_name = final_checkpoint_name(cfg)
        argv = [tconfig, '--work-dir', rel(wd)] + (_demo_data_root(self.data_root, task.dataset) if self.demo else
                                                   []) + flags + ['--cfg-options', *opts]
        deps = [d for d in (p_idx, self.data_step) if d is not None]
        st = self.stamped(wd / 'train.argv.json', argv, deps)
        done = None if st['stale'] else final_checkpoint(wd, ckpt_name)
        resume = done is None and not st['stale'] and (wd / 'last_checkpoint').is_file()
        argv[3:3] = ['--resume'] if resume else (['--overwrite-work-dir'] if st['stale'] else [])
        cmd, env = launch_command('train', argv, self.launcher, n, self.partition, f'{task.name}-{pmodel}-{method}', wd)
        i = self.add(Step('train', f'train_{task.name}_{pmodel}_{method}', f'train {task.name} {pmodel} {method}',
                          [done or wd / ckpt_name], deps=deps, script='train', argv=argv, command=cmd, env=env,
                          gpus=n, batch=cfg.train_dataloader.get('batch_size'), resume=resume, **st))
        return i, wd, tconfig, task, done or wd / ckpt_name

    def tests(self, table: str, row, label: str, tkey: tuple) -> None:
        """The row's tests on its transfer's final checkpoint, one per results tag of its table; a row sharing
        a transfer with an earlier row (demo: Table C's DeiT-T/S/B) gets that row's results under its own
        ``table_row``."""
        t_idx, wd, tconfig, task, ckpt = self.train_steps[tkey]
        _, pmodel, method = tkey
        tags = sorted({c.tag for c in TABLES[table].columns}, key=['ss', 'ms'].index)
        order = ['model', 'method', 'decoder']
        row_opts = [f'table_row.table={table}'] + [
            f'table_row.{k}={v}' for k, v in sorted(row.key, key=lambda kv: (order + [kv[0]]).index(kv[0]))]
        for tag in tags:
            results = wd / 'results' / f'{tag}.json'
            if (tkey, tag) not in self.test_steps:
                opts = row_opts + self.exp(f'test_{tag}_{task.name}_{pmodel}_{method}')
                argv = [tconfig, rel(ckpt), '--work-dir', rel(wd)] + (['--tta'] if tag == 'ms' else []) \
                    + (_demo_data_root(self.data_root, task.dataset) if self.demo else []) + ['--cfg-options', *opts]
                n = self.n_gpus(task.gpus)
                cmd, env = launch_command('test', argv, self.launcher, n, self.partition,
                                   f'test-{tag}-{task.name}-{pmodel}-{method}', wd)
                self.test_steps[(tkey, tag)] = self.add(Step(
                    'test', f'test_{tag}_{task.name}_{pmodel}_{method}', f'test {tag} {task.name} {pmodel} {method}',
                    [results], deps=[t_idx], script='test', argv=argv, command=cmd, env=env, gpus=n, rows=[label],
                    **self.stamped(wd / f'test-{tag}.argv.json', argv, [t_idx])))
                continue
            # a row sharing a run: the run's results, under this row's table_row
            src = self.test_steps[(tkey, tag)]
            dest = wd / 'rows' / row_slug(table, row.label) / 'results' / f'{tag}.json'
            cmd = ['cp', rel(results), rel(dest)]   # (what it amounts to; table_row rewritten)
            self.add(Step('share', f'share_{tag}_{row_slug(table, row.label)}', f'share {tag} → {label}', [dest],
                          deps=[src], func=share_fn(results, dest, dict(table=table, **dict(row.key))), rows=[label],
                          command=cmd, **self.stamped(dest.parent.parent / f'share-{tag}.argv.json', cmd, [src])))

    def figures(self) -> None:
        """Demo: the papers' figures of every pretrained demo model."""
        from mixcore.demo_data import DATA_ROOTS

        from .figures import figure_steps
        pretrains: dict = {}
        for (pmodel, method), (i, backbone) in self.pretrain_steps.items():
            pretrains.setdefault(pmodel, {})[method] = (i, backbone, self.pretrain_final.get((pmodel, method)))
        methods = {name: mc.path for name, mc in self.extra_methods.items()}
        for s in figure_steps(pretrains, self.work_root, self.data_root / DATA_ROOTS['imagenet'] / 'val',
                              self.stamped, [self.data_step], methods=methods):
            self.add(s)


def mark_needed(steps: list[Step]) -> None:
    """done: outputs exist, of the current arguments; needed: not done and (a final step, or something
    downstream needs it); a given backbone file must exist when a transfer (or a top-1 reading) that needs it
    runs."""
    dependents = {i: [] for i in range(len(steps))}
    for i, s in enumerate(steps):
        s.done = not s.stale and all(Path(o).is_file() for o in s.outputs)
        for d in s.deps:
            dependents[d].append(i)
    for i in reversed(range(len(steps))):
        s = steps[i]
        leaf = s.kind in ('test', 'share', 'top1', 'figure')
        s.needed = not s.done and (leaf or any(steps[j].needed for j in dependents[i]))
        s.reason = 'done' if s.done else ('not needed: later steps are done' if not s.needed else
                                          s.blocked or (STALE if s.stale else ''))
    for s in steps:
        if s.kind in ('train', 'top1') and s.needed:
            b = next(a.split('=', 1)[1] for a in s.argv if a.startswith('model.backbone.checkpoint=')) \
                if s.kind == 'train' else s.command[2]
            if not any(steps[d].kind == 'pretrain' for d in s.deps) and not (ROOT / b).is_file():
                s.reason = f'missing backbone file {b}'


def make_plan(tables, *, methods=None, demo=False, work_root, launcher='pytorch', gpus=None, partition=None,
              backbones=None, data_root=None, demo_schedule=None, amp=None, figures=False,
              tensorboard=False, extra_methods=None) -> list[Step]:
    """Every step the tables need, in running order, with what is done already and what still is needed.

    ``gpus``: GPUs per run (default: each config's paper setting); a training whose total batch then differs
    from the one its lr was tuned for (the config's ``auto_scale_lr.base_batch_size``, else the paper's GPUs ×
    the config's per-GPU batch) gets ``--auto-scale-lr`` (never with ``demo``). ``amp``: None (fp32), ''
    (``--amp``: the best the GPU has), 'fp16' or 'bf16', passed to every training. ``figures`` (demo): also the
    figure steps of every pretrained demo model (:mod:`.figures`); ``tensorboard``: every training writes
    TensorBoard curves too (``tensorboard=True``, not part of the stamps). ``extra_methods``: ``{name:
    pretrain.method_config.MethodConfig}`` of methods the papers do not have (``--method NAME=CONFIG``): each gets
    a row next to every baseline row of the tables (:func:`mixseg.tables.published.method_rows`), pretrained with
    the baseline recipe of the row's model and the method's mixer."""
    extra_methods = dict(extra_methods or {})
    plan = Planner(demo=demo, work_root=work_root, launcher=launcher, gpus=gpus, partition=partition,
                   backbones=backbones, data_root=data_root, demo_schedule=demo_schedule, amp=amp,
                   tensorboard=tensorboard, extra_methods=extra_methods)
    rows = [(t, r) for t in tables for r in TABLES[t].rows if not r.reference
            and (not methods or dict(r.key)['method'] in methods)]
    rows += [(t, r) for name in extra_methods for t in tables for r in method_rows(TABLES[t], name)]
    if not rows:
        raise SystemExit('error: no table row to run (check --methods)')
    if demo:
        plan.demo_data(rows)
    for table, row in rows:
        label = f'{table}: {" / ".join(row.label)}'
        if table == 'E':   # robustness: the benchmarks on the pretraining's final classifier checkpoint
            plan.robustness(dict(row.key), label)
        elif table == 'D':   # ImageNet top-1: the pretraining, then its top-1 into the row's results
            plan.top1(table, dict(row.key), label)
        else:
            plan.transfer(table, row, label)
    if demo and figures:   # the papers' figures of every pretrained demo model
        plan.figures()
    mark_needed(plan.steps)
    return plan.steps


def _top1_fn(backbone: Path, dest: Path, table_row: dict):
    def top1():
        from mixseg.tables.results import write_top1_result
        write_top1_result(backbone, dest, table_row)
    return top1

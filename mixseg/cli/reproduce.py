"""Reproduce a downstream table of the papers: pretrain → transfer → single-/multi-scale test → the table.

    python tools/reproduce.py TABLE [TABLE ...] [--methods baseline transmix ...] [--dry-run]
        [--launcher none|pytorch|slurm] [--gpus N] [--partition P] [--amp [fp16|bf16|off]]
        [--work-root work_dirs/tables] [--backbone METHOD=PATH | MODEL_METHOD=PATH ...] [--keep-going]
    python tools/reproduce.py A B C D --demo        # the same pipeline on the tiny demo models and data
    python tools/reproduce.py A --submit [--partition P]   # Slurm: one sbatch job per step, then return
    python tools/reproduce.py A --status                   # their states; the tables once results exist
    python tools/reproduce.py A --demo --methods baseline --submit --partition cpu   # the chain on CPU jobs
    python tools/reproduce.py A B C D --method mymix=my_methods/mymix_config.py   # a method of your own: extra rows

Tables (mixseg.tables.published.TABLES; the reference rows are quoted, not run):
  A  Pascal Context 59, DeiT-S, linear and Segmenter mask decoders × baseline / TransMix / MixPro, mIoU, +MS
  B  COCO, Mask R-CNN 1x + FPN, PVT-S × baseline / TransMix / MixPro, box and mask AP
  C  ADE20K, Segmenter mask decoder (the TokenMix paper's setting), DeiT-T/S/B × baseline / TokenMix, mIoU/mAcc, +MS
  D  ImageNet-1k top-1 of the pretrainings: DeiT, PVT, XCiT, CaiT, (CA-)Swin × baseline / TransMix / MixPro
     (MixPro paper) and baseline / TokenMix (TokenMix paper); a row is its pretraining and the top-1 that the
     backbone file carries (the pretraining's last validation). Rows without a config are listed, not run.
  E  robustness of the DeiT-S pretrainings (baseline / TransMix / MixPro / TokenMix): tools/robustness.py on each
     pretraining's final training checkpoint — ImageNet-A/-R top-1, ImageNet-O AUPR/AUROC, occlusion, patch
     shuffling (data/imagenet-{a,r,o}, data/imagenet/val; --demo: generated folders); curves in tables_E_curves.png.

A method of your own (``--method NAME=CONFIG``, CONFIG a method config as ``configs/_base_/methods/*.py``, whose
``mixer_imports`` register the method): every table gets one more row per baseline row (published cells empty),
pretrained with the baseline recipe of the row's model and the method's mixer (a config generated into
``<work root>/configs/<name>-<hash>/``), then transferred and tested as the other rows; with ``--figures`` it is
drawn beside the papers' mixers. Its modules must be importable where the steps run (PYTHONPATH).

Per row: (1) pretraining ``configs/pretrain/<model>_<method>_<G>xb<B>-<E>e_in1k.py`` → ``backbone.safetensors``
(or a file given with ``--backbone``; one pretraining serves every row and table that needs it); (2) the row's
transfer config with ``--cfg-options model.backbone.checkpoint=<backbone file>``; (3) ``tools/test.py`` on the
final checkpoint (single scale, and with ``--tta`` for the "+MS" columns of A and C), each with
``--cfg-options table_row.table=... table_row.model=...`` so that the results land in the row's cell whatever
the config says. Finally the tables (``tables.md``, ``tables.png`` in the work root) and on the console.

GPUs as in the papers: pretraining as its config's name says (DeiT/PVT 8 GPUs × 128), Segmenter ADE20K 8 × 1,
Pascal Context 8 × 2, Mask R-CNN 8 × 2. ``--gpus`` overrides the count; the per-GPU batch stays, so where the
total batch then differs from the one the config's lr belongs to, the training runs with ``--auto-scale-lr``
(mmengine's linear rule from ``auto_scale_lr.base_batch_size``). GPU launchers train with ``--amp`` (the best
the GPU has; ``--amp fp16|bf16|off`` chooses). Launchers:
``pytorch`` → ``bash tools/dist_train.sh CFG 8 ...``, ``slurm`` → ``GPUS=8 bash tools/slurm_train.sh P JOB CFG
WORK ...``, ``none`` → ``python tools/train.py ...`` (one process). ``--submit``: every step an sbatch job
(``srun ... --launcher slurm``, ``MASTER_PORT`` from the job id, the interpreter running this script or
``--python``) chained with ``--dependency=afterok``, job ids printed, the driver returns; running it again (or
``--status``) reports each step from its work dir, squeue/sacct and the job's log, resubmits what failed (a
training continues from its checkpoint: ``--resume-if-any``) and writes the tables; a job whose state is
unknown (squeue failing; no accounting and no exit line in its log) is never resubmitted
(``mixseg.reproduce.slurm``). ``--submit --demo``: the demo as CPU jobs (``--gpus 0``), e.g. on the
single-node Slurm of ``tools/local_slurm.sh``.

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
(``mixseg.reproduce.plan.DEMO_MODELS``; one pretraining per (model, method), Table C's DeiT-T/S/B rows share
one run; Table D's ViT family shows the demo ViT, its pyramids the demo PVT). The steps
run in 2 worker processes (``--jobs``; 1 torch thread each on 2 cores) that call ``tools/train.py`` /
``tools/test.py`` ``main(argv)``, so the OpenMMLab stack is imported once per worker, not once per step; each
run gets its own ``experiment_name`` (mmengine logger, message hub, visualizer). Printed commands show
``python``; they run with the interpreter running this script.
"""
import argparse
import os
import sys
from pathlib import Path


from mixseg.reproduce import DEMO_SCHEDULE, METHODS, parse_demo_schedule, reproduce
from mixseg.reproduce.slurm import CPUS_PER_CPU_TASK, CPUS_PER_GPU
from mixseg.tables.published import TABLES


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('tables', nargs='+', type=str.upper, choices=sorted(TABLES) + ['ALL'], metavar='TABLE',
                   help=f'{", ".join(sorted(TABLES))} (or ALL)')
    p.add_argument('--methods', nargs='+', choices=METHODS, help='only the rows of these pretraining methods')
    p.add_argument('--method', action='append', default=[], metavar='NAME=CONFIG',
                   help='a mixing method the papers do not have, from its method config (like configs/_base_/methods/'
                        '*.py; README "Your own mixing method"): one more row per baseline row of every table, '
                        'pretrained with that model\'s baseline recipe and this mixer (and in the figures); '
                        'repeatable')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default=None,
                   help='default: pytorch (dist_train.sh), with --demo: none (inside this process)')
    p.add_argument('--gpus', type=int, default=None,
                   help='GPUs per run (default: the papers\' 8); --submit --gpus 0: CPU jobs (no gres, one task per '
                        'run; the default of --submit --demo)')
    p.add_argument('--partition', help='Slurm partition (--launcher slurm)')
    p.add_argument('--amp', nargs='?', const='auto', choices=['auto', 'fp16', 'bf16', 'off'], default=None,
                   help='mixed precision of the trainings (tools/train.py --amp); default: auto (the best the GPU '
                        'has) for GPU launchers, off with --demo or --launcher none')
    p.add_argument('--dry-run', action='store_true', help='print the plan and the commands, run nothing')
    p.add_argument('--submit', action='store_true',
                   help='Slurm: submit every step as an sbatch job (chained with --dependency=afterok) and return; '
                        'run again (or --status) for the states and the tables')
    p.add_argument('--status', action='store_true', help='Slurm: report the states of the submitted steps, write '
                                                         'the tables; submit nothing')
    p.add_argument('--gpus-per-node', type=int, default=8, help='--submit: GPUs of a node (default 8)')
    p.add_argument('--cpus-per-task', type=int, default=None,
                   help=f'--submit: CPUs per task (default {CPUS_PER_GPU} per GPU task, one per loader worker: '
                        f'tools/slurm_defaults.sh; CPU jobs {CPUS_PER_CPU_TASK})')
    p.add_argument('--python', default=sys.executable, metavar='PATH',
                   help='--submit: the Python the jobs run on the nodes (default: this one, %(default)s; '
                        'MIXSEG_PYTHON on a node overrides it)')
    p.add_argument('--sbatch-args', nargs='+', default=[], metavar='ARG',
                   help='--submit: more sbatch options for every job, e.g. --sbatch-args=--time=72:00:00 '
                        '--account=me')
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
    p.add_argument('--figures', action='store_true',
                   help='--demo: also draw the figures of the pretrained demo models (per-layer attention, occlusion, '
                        'mixed images) into <work root>/figures/')
    p.add_argument('--tensorboard', action='store_true',
                   help='every training also writes TensorBoard curves (needs the tensorboard package)')
    p.add_argument('--demo-schedule', nargs='+', default=[], metavar='KEY=VALUE',
                   help=f'--demo: data size and schedules, default {DEMO_SCHEDULE}')
    args = p.parse_args(argv)
    if 'ALL' in args.tables:
        args.tables = sorted(TABLES)
    args.tables = list(dict.fromkeys(args.tables))
    if args.submit or args.status:
        if args.launcher not in (None, 'slurm'):
            p.error('--submit/--status submit Slurm jobs: not with another --launcher')
        args.launcher = 'slurm'
        if args.demo and args.gpus is None:   # the demo on a CPU partition: CPU jobs
            args.gpus = 0
    args.launcher = args.launcher or ('none' if args.demo else 'pytorch')
    if args.launcher == 'slurm' and not args.partition and not (args.submit or args.status):
        p.error('--launcher slurm needs --partition')
    if args.gpus is not None and args.gpus < (0 if args.submit or args.status else 1):
        p.error('--gpus must be ≥ 1 (0, CPU jobs: only with --submit)')
    inproc = args.demo and args.launcher == 'none' and not args.subprocess
    args.jobs = args.jobs or (2 if inproc else 1)
    if args.threads is None and inproc and args.jobs > 1:
        args.threads = max(1, (os.cpu_count() or 2) // args.jobs)
    args.work_root = Path(args.work_root or ('work_dirs/demo' if args.demo else 'work_dirs/tables')).resolve()
    args.data_root = Path(args.data_root).resolve()
    if args.tensorboard:
        from mixcore.training_curves import tensorboard_available
        if not tensorboard_available():
            p.error('--tensorboard needs the tensorboard package: pip install tensorboard')
    try:
        args.demo_schedule = parse_demo_schedule(args.demo_schedule)
        from pretrain.method_config import parse_method_options
        args.extra_methods = parse_method_options(args.method)   # imports their modules: titles in the tables
    except ValueError as e:
        p.error(str(e))
    clash = sorted(set(args.extra_methods) & set(METHODS))
    if clash:
        p.error(f'--method {clash[0]}=...: the papers\' methods have their own configs (use --methods {clash[0]})')
    return args


def main(argv=None, out=print) -> int:
    return reproduce(parse_args(argv), out=out)


if __name__ == '__main__':
    sys.exit(main())

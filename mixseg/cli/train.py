"""Train any mixseg config: stage-1 pretraining, mmseg (Segmenter/linear) or mmdet (Mask R-CNN).

    python tools/train.py CONFIG [--work-dir DIR] [--data-root DIR] [--resume [CKPT]] [--amp [{fp16,bf16}]]
        [--compile] [--auto-scale-lr] [--tensorboard] [--overwrite-work-dir] [--allow-partial-load]
        [--epochs N | --iters N] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [args]        # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [args]

Without a GPU set CUDA_VISIBLE_DEVICES=-1; multi-process CPU runs use gloo (see mixcore.runtime). On GPUs see
mixcore.gpu (TF32, fused AdamW, --amp, --deterministic, --compile).
A work dir holding another run is refused (``--resume`` continues it, ``--overwrite-work-dir`` replaces it);
``--resume`` with nothing to resume is an error (``--resume-if-any``: resume when there is a checkpoint, else
start); ``load_from`` must fit the model (``--allow-partial-load``).
See mixseg.run_preparation. ``--epochs N`` / ``--iters N`` set the length of the run and rescale every scheduler, warmup
and interval with it; a loop that disagrees with its schedulers is an error (mixcore.schedule).
"""
import argparse
import contextlib


from mmengine.config import DictAction

from mixcore.patches import install as install_patches
from mixcore.atomic_write import DiskFullError
from mixcore.weights.errors import CheckpointError
from mixcore.runtime import (add_default_hooks, enable_amp, install_atomic_checkpoints,
                           end_distributed, load_config, make_reproducible,
                           setup_cpu_distributed)
from mixseg.data_roots import check_data_roots
from mixseg.run_preparation import claim_run_work_dir, prepare_training
from mixcore.schedule import ScheduleLength, prepare_runner
from mixcore.workdir import exit_on_sigterm
from mixcore import gpu


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a mixseg config (pretrain / mmseg / mmdet)')
    p.add_argument('config', help='config file')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default ./work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from CKPT, or with no value from the latest checkpoint in the work dir (an error if '
                   'there is none)')
    p.add_argument('--resume-if-any', action='store_true',
                   help='resume from the work dir\'s last_checkpoint if it has one, else start from scratch (the '
                   'Slurm jobs of reproduce.py --submit, which may be requeued or resubmitted)')
    p.add_argument('--overwrite-work-dir', action='store_true',
                   help='replace the run the work dir holds (its checkpoints, backbone files and results are deleted)')
    p.add_argument('--allow-partial-load', action='store_true',
                   help='load_from: load the weights that fit the model and skip the rest (default: refuse a '
                   'checkpoint that does not fit)')
    p.add_argument('--data-root', help='read the dataset from this folder (all dataloaders and evaluators)')
    p.add_argument('--amp', nargs='?', const='auto', choices=['fp16', 'bf16', 'auto'], metavar='{fp16,bf16}',
                   help='mixed precision (GPU; the default for GPU runs): bf16 (no loss scaling; GPUs with native '
                        'bf16, sm_80+) or fp16 (dynamic loss scaling); without a value the best the GPU has')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the networks in place (hooks and state-dict keys unchanged)')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help="scale the lr linearly by (GPUs x batch per GPU) / the config's auto_scale_lr.base_batch_size")
    p.add_argument('--tensorboard', action='store_true',
                   help='also write TensorBoard curves to <work_dir>/<timestamp>/vis_data (needs the tensorboard '
                        'package; same as --cfg-options tensorboard=True)')
    length = p.add_mutually_exclusive_group()
    length.add_argument('--epochs', type=int, metavar='N',
                        help='train N epochs (epoch-based configs): every lr scheduler (warmup, cosine, milestones), '
                        'the validation/checkpoint intervals and epoch-tied hooks are rescaled by N / the config\'s '
                        'epochs; --cfg-options train_cfg.max_epochs=N does the same')
    length.add_argument('--iters', type=int, metavar='N',
                        help='train N iterations (iteration-based configs, e.g. Segmenter), rescaled as --epochs')
    p.add_argument('--seed', type=int, default=None, help='random seed (overrides the config)')
    p.add_argument('--deterministic', action='store_true', help='deterministic algorithms')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.backbone.checkpoint=x.safetensors')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if args.resume_if_any and args.resume is not None:
        p.error('--resume-if-any and --resume: give one of them')
    gpu.set_launcher_env(args.launcher, args.local_rank)
    if args.deterministic:
        gpu.deterministic_env()  # before CUDA starts
    try:
        gpu.resolve_amp(args.amp)  # a GPU, with bf16 if asked for
    except ValueError as e:
        p.error(str(e))
    return args


def enable_auto_scale_lr(cfg, config_path):
    """mmengine's auto_scale_lr (Runner.scale_lr: every param group's lr × real total batch / base_batch_size)."""
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    if not base:
        raise SystemExit(f'error: {config_path} has no auto_scale_lr.base_batch_size (the total batch its lr '
                         'belongs to): --auto-scale-lr cannot scale')
    cfg.auto_scale_lr = dict(cfg.auto_scale_lr, enable=True)


def resolve_resume_if_any(cfg, args) -> None:
    """``--resume-if-any`` → ``--resume`` when the work dir has a ``last_checkpoint`` or a checkpoint (the
    checks of ``--resume`` then apply), else a fresh start; the option itself is dropped (it is no part of
    what the run computes)."""
    from pathlib import Path
    wd = Path(cfg.work_dir)
    found = (wd / 'last_checkpoint').exists() or any(wd.glob('*.pth'))
    args.resume, args.resume_if_any = ('auto' if found else None), False
    print('mixseg: --resume-if-any: ' + (f'resuming from the checkpoint in {wd}' if found else
                                        f'no checkpoint in {wd}: training from scratch'), flush=True)


def build_cfg(args):
    schedule = ScheduleLength(args.config, getattr(args, 'epochs', None), getattr(args, 'iters', None),
                              args.cfg_options)
    cfg = load_config(args, before_options=schedule.apply)  # --epochs/--iters before --cfg-options
    schedule.check(cfg)  # loop vs scheduler ends
    if args.resume_if_any:
        resolve_resume_if_any(cfg, args)
    if args.amp:
        enable_amp(cfg, gpu.amp_for_config(args.amp, cfg, args.config))
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg, args.config)
    from mixcore.training_curves import enable_tensorboard
    try:
        enable_tensorboard(cfg, True if args.tensorboard else None)
    except ModuleNotFoundError as e:
        raise SystemExit(f'error: {e}') from e
    prepare_training(cfg, args)  # --resume target, fit check, checkpoint hook, table row (mixseg.run_preparation)
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        if args.deterministic:
            randomness['deterministic'] = True
        cfg.randomness = randomness
    for change in make_reproducible(cfg):
        print(f'mixseg: {change}', flush=True)
    add_default_hooks(cfg)
    for change in gpu.prepare_cuda_run(cfg, args.launcher):
        print(f'mixseg: {change}', flush=True)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    # the work-dir lock (claim_run_work_dir) is released when the run ends, also on SIGTERM (scancel, time limit)
    with exit_on_sigterm(), contextlib.ExitStack() as held:
        _main(argv, held)


def _main(argv, held):
    args = parse_args(argv)
    cfg = build_cfg(args)
    try:
        check_data_roots(cfg, args.config, splits=('train', 'val'))
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    held.enter_context(claim_run_work_dir(cfg, args))  # refuses a work dir in use or holding another run
    gpu.check_mmcv_ops(cfg, args.config)
    install_atomic_checkpoints()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    prepare_runner(runner, args.config)  # an empty epoch named; fractional-epoch schedulers in whole iterations
    if args.deterministic:
        gpu.relax_determinism()  # mmengine switched strict mode on
    if args.compile:
        print(f'mixseg: compiled {", ".join(gpu.compile_model(runner.model))} in place', flush=True)
    try:
        runner.train()
    except (CheckpointError, DiskFullError) as e:  # a weight file refused or not fitting, a full disk (file named)
        raise SystemExit(f'error: {e}') from e
    end_distributed()  # every rank done before any leaves (else gloo aborts a rank at exit)


if __name__ == '__main__':
    main()

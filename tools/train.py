"""Train any mixseg config: stage-1 pretraining, mmseg (Segmenter/linear) or mmdet (Mask R-CNN).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [args]        # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [args]

Without a GPU set CUDA_VISIBLE_DEVICES=-1; multi-process CPU runs use gloo (see mixseg.engine).
"""
import argparse
import os
import os.path as osp
import pickle
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without install

from mmengine.config import DictAction  # noqa: E402

import mixseg  # noqa: E402,F401  (safe-loading allow-list for --resume)
from mixseg.engine import (add_default_hooks, check_data_roots, default_work_dir, enable_amp, override_data_root,  # noqa: E402
                           install_atomic_checkpoints, make_reproducible, refused_checkpoint_message,
                           setup_cpu_distributed)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a mixseg config (pretrain / mmseg / mmdet)')
    p.add_argument('config', help='config file')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default ./work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from CKPT, or with no value from the latest checkpoint in the work dir')
    p.add_argument('--data-root', help='read the dataset from this folder (all dataloaders and evaluators)')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--seed', type=int, default=None, help='random seed (overrides the config)')
    p.add_argument('--deterministic', action='store_true', help='deterministic algorithms')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.backbone.checkpoint=x.safetensors')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args):
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        override_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
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
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    try:
        check_data_roots(cfg, args.config, splits=('train', 'val'))
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    install_atomic_checkpoints()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    try:
        runner.train()
    except pickle.UnpicklingError as e:  # load_from / --resume of a file carrying code
        raise SystemExit(refused_checkpoint_message(cfg, e)) from e


if __name__ == '__main__':
    main()

"""Evaluate a checkpoint with any mixseg config and record the metrics for the tables tool.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--tta] [--tag ss|ms|...] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]

The metrics land in ``<work_dir>/results/<tag>.json`` (tag ``ss``, or ``ms`` with ``--tta``: multi-scale
+ flip as the config's ``tta_model``/``tta_pipeline`` define it).
"""
import argparse
import os
import os.path as osp
import pickle
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import mixseg  # noqa: E402,F401
from mixseg.engine import (check_data_roots, default_work_dir, enable_tta, override_data_root,  # noqa: E402
                           refused_checkpoint_message, setup_cpu_distributed, write_results)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test a checkpoint with a mixseg config (pretrain / mmseg / mmdet)')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--work-dir', help='where results go (default ./work_dirs/<config name>)')
    p.add_argument('--data-root', help='read the dataset from this folder (all dataloaders and evaluators)')
    p.add_argument('--tta', action='store_true', help='multi-scale + flip test (the papers\' "+MS" columns)')
    p.add_argument('--tag', default=None, help='name of the results file (default: ss, or ms with --tta)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.dist import get_rank
    from mmengine.runner import Runner
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise SystemExit(f'error: file not found: {path}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        override_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    try:
        check_data_roots(cfg, args.config, splits=('test',))
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    table_row = dict(cfg.table_row) if cfg.get('table_row') else None
    if args.tta:
        enable_tta(cfg, args.config)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    try:
        metrics = runner.test()
    except pickle.UnpicklingError as e:  # a checkpoint carrying code
        raise SystemExit(refused_checkpoint_message(cfg, e)) from e
    if get_rank() == 0:
        tag = args.tag or ('ms' if args.tta else 'ss')
        out = write_results(cfg.work_dir, tag, config=args.config, checkpoint=args.checkpoint, tta=args.tta,
                            metrics=metrics, table_row=table_row)
        print(f'results written to {out}')
    return metrics


if __name__ == '__main__':
    main()

"""Evaluate a checkpoint with any mixseg config and record the metrics for the tables tool.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--tta] [--tag ss|ms|...] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]

The metrics land in ``<work_dir>/results/<tag>.json`` (tag ``ss``, or ``ms`` with ``--tta``: multi-scale
+ flip as the config's ``tta_model``/``tta_pipeline`` define it), with the table row of the run: the config's
``table_row`` with method and model of the backbone the checkpoint was trained from (``--cfg-options
table_row.<field>=...`` contradicting that backbone is an error). A checkpoint whose weights do not fit the model
is refused (missing/unexpected keys and shapes listed, nothing written); ``--allow-partial-load`` evaluates
what fits. The checkpoint may be a local file or an ``http(s)://`` URL (read safely, see mixcore.weights.read).
The training run's own overrides (``--data-root``, ``--cfg-options`` of the model and test data, e.g. num_classes)
are read from the config stored in a local checkpoint and applied first; this command's options win over them
(mixcore.training_overrides).
"""
import argparse
import os.path as osp


from mmengine.config import DictAction

from mixcore.patches import install as install_patches
from mixcore.weights.errors import CheckpointError
from mixcore import gpu
from mixcore.runtime import enable_tta, end_distributed, load_config, setup_cpu_distributed, write_results
from mixseg.data_roots import check_data_roots
from mixcore.provenance import result_setup
from mixseg.run_preparation import prepare_testing
from mixcore.training_overrides import apply_training_overrides


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test a checkpoint with a mixseg config (pretrain / mmseg / mmdet)')
    p.add_argument('config', help='the config the model was trained with (stage-1 pretraining, mmseg or mmdet)')
    p.add_argument('checkpoint', help='its checkpoint (work_dirs/<config>/epoch_N.pth or iter_N.pth)')
    p.add_argument('--work-dir', help='where results go (default ./work_dirs/<config name>)')
    p.add_argument('--data-root', help='read the dataset from this folder (all dataloaders and evaluators)')
    p.add_argument('--tta', action='store_true', help='multi-scale + flip test (the papers\' "+MS" columns)')
    p.add_argument('--tag', default=None, help='name of the results file (default: ss, or ms with --tta)')
    p.add_argument('--allow-partial-load', action='store_true',
                   help='evaluate a checkpoint that fits the model only partly (the missing weights stay random)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. test_dataloader.batch_size=1')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                   help='job launcher (tools/dist_test.sh sets pytorch)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0, help='set by the launcher')
    args = p.parse_args(argv)
    gpu.set_launcher_env(args.launcher, args.local_rank)
    return args


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    args = parse_args(argv)
    from mmengine.dist import get_rank
    from mmengine.runner import Runner
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    # the training run's overrides stored in the checkpoint, then this command's options
    cfg = load_config(args, before_options=lambda c: apply_training_overrides(c, args.checkpoint))
    cfg.load_from = args.checkpoint
    try:
        check_data_roots(cfg, args.config, splits=('test',))
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    table_row = prepare_testing(cfg, args)  # fit check; the row of the backbone it was trained from
    if args.tta:
        enable_tta(cfg, args.config)
    gpu.check_mmcv_ops(cfg, args.config)
    for change in gpu.prepare_cuda_run(cfg, args.launcher, train=False):
        print(f'mixseg: {change}', flush=True)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    try:
        metrics = runner.test()
    except CheckpointError as e:  # a checkpoint refused by safe loading (named in the message)
        raise SystemExit(f'error: {e}') from e
    if get_rank() == 0:
        tag = args.tag or ('ms' if args.tta else 'ss')
        out = write_results(cfg.work_dir, tag, config=args.config, checkpoint=args.checkpoint, tta=args.tta,
                            metrics=metrics, table_row=table_row, setup=result_setup(args.checkpoint, cfg, runner))
        print(f'results written to {out}')
    end_distributed()  # every rank done before any leaves (else gloo aborts a rank at exit)
    return metrics


if __name__ == '__main__':
    main()

"""Export the backbone file (``.safetensors`` + metadata) from an mmengine checkpoint of stage 1 (pretraining) or
stage 2 (a segmentor with ``MixsegViT``, a detector with ``MixsegPVT``; the fine-tuned backbone).

    python tools/export_backbone.py work_dirs/deit-s_transmix_8xb128-300e_in1k/epoch_300.pth deit-s_transmix.safetensors
    python tools/export_backbone.py CKPT OUT [--config CFG] [--no-ema] [--top1 80.7]

The model (stage 2: its backbone) is rebuilt from the config stored in the checkpoint (or ``--config``) and the
weights are loaded strictly before the classifier head is dropped. The stored config is read as data and may only
name registered types (a dotted import path such as ``os.system`` is refused, naming the file and the key);
other checkpoints are refused with a message saying what is accepted. Training with ``BackboneExportHook`` (the
default runtime) already writes ``<work_dir>/backbone.safetensors``; this tool is for intermediate or foreign
checkpoints and for the fine-tuned backbones of stage 2.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without install
from mixcore.patches import install as install_patches  # noqa: E402
install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export the backbone file from a stage-1 or stage-2 checkpoint')
    p.add_argument('checkpoint', help='mmengine checkpoint of a pretraining run (epoch_N.pth, best_*.pth) or of a '
                   'MixsegViT segmentor / MixsegPVT detector (iter_N.pth, epoch_N.pth)')
    p.add_argument('out', help='output backbone file (.safetensors)')
    p.add_argument('--config', help='pretraining config (default: the config stored in the checkpoint)')
    p.add_argument('--no-ema', action='store_true',
                   help='export the raw weights instead of the EMA weights (runs trained with EMAHook)')
    p.add_argument('--top1', type=float, default=None, help='top-1 accuracy to record in the metadata')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.out.endswith('.safetensors'):
        raise SystemExit(f'error: {args.out}: the backbone file must end with .safetensors')
    from mixcore.weights.errors import CheckpointError
    from mixseg.dense_export import export_any_checkpoint
    try:
        path = export_any_checkpoint(args.checkpoint, args.out, config=args.config, use_ema=not args.no_ema,
                                     top1=args.top1)
    except (CheckpointError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {path}')


if __name__ == '__main__':
    main()

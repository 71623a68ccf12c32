"""Robustness of a stage-1 classifier (Table E): one benchmark per call, its numbers into
``<work_dir>/results/<benchmark>.json`` (the layout tools/tables.py reads).

    python tools/robustness.py occlusion  --checkpoint CKPT --images data/imagenet/val --work-dir WD
    python tools/robustness.py shuffle    --checkpoint CKPT --images data/imagenet/val --work-dir WD
    python tools/robustness.py imagenet-a --checkpoint CKPT --images data/imagenet-a --work-dir WD
    python tools/robustness.py imagenet-r --checkpoint CKPT --images data/imagenet-r --work-dir WD
    python tools/robustness.py imagenet-o --checkpoint CKPT --images data/imagenet-o \\
        --val data/imagenet/val --work-dir WD

occlusion: top-1 and true-class confidence as a share (0 .. 0.9) of the token-grid patches is dropped (the
definition of tools/occlusion_robustness.py). shuffle: top-1 with the image cut into g×g cells, shuffled (g = 1,
2, 4, 8, 14). imagenet-a / imagenet-r: top-1 on their 200 classes (logits restricted to them). imagenet-o: AUPR
(ImageNet-O = positive) and AUROC of the anomaly score −max softmax, against ImageNet val. Folders in their
released layout DIR/<wnid>/<image>; a folder of other names, or a model whose classes are not ImageNet-1k's, is
refused (--any-classes: a model trained on other named classes, e.g. the demo models, its recorded class names
being the label space). CKPT: a training checkpoint (<work_dir>/epoch_N.pth) or an official timm/DeiT/PVT .pth
with its head (--arch).
"""
import argparse


BENCHMARKS = ('occlusion', 'shuffle', 'imagenet-a', 'imagenet-r', 'imagenet-o')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('benchmark', choices=BENCHMARKS)
    p.add_argument('--checkpoint', required=True, metavar='FILE', help='classifier with its head (.pth)')
    p.add_argument('--images', required=True, metavar='DIR',
                   help='the benchmark folder DIR/<wnid>/<image> (occlusion, shuffle: ImageNet val)')
    p.add_argument('--val', metavar='DIR', help='imagenet-o: the in-distribution images (ImageNet val)')
    p.add_argument('--work-dir', required=True, metavar='DIR', help='results go to DIR/results/<benchmark>.json')
    p.add_argument('--model', help='Table E row: the model key (default: from the architecture, e.g. deit-s)')
    p.add_argument('--any-classes', action='store_true',
                   help='admit a model of other (recorded) class names than ImageNet-1k\'s (the demo models)')
    p.add_argument('--arch', help='timm model name, for .pth files without metadata (official DeiT/PVT weights)')
    p.add_argument('--img-size', type=int, help='input size (default: the one the file records; else 224)')
    p.add_argument('--max-images', type=int, default=None, help='evaluate this many images, spread evenly')
    p.add_argument('--ratios', type=float, nargs='+', help='occlusion: shares dropped (default 0 0.1 ... 0.9)')
    p.add_argument('--grids', type=int, nargs='+', help='shuffle: grid sides (default 1 2 4 8 14)')
    p.add_argument('--patch', type=int, help='occlusion: cell size in pixels (default: the token stride)')
    p.add_argument('--softmax-over-ood-classes', action='store_true',
                   help='imagenet-o: softmax over ImageNet-O\'s 200 classes only (default: all classes)')
    p.add_argument('--seed', type=int, default=0, help='seed of the dropped / shuffled cells (default 0)')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--crop-pct', type=float, default=0.875, help='centre-crop share (timm eval)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                   help='accepted for the table runs\' Slurm jobs; a benchmark runs in one process')
    return p.parse_args(argv)


def options(args) -> dict:
    kw = dict(images=args.images, max_images=args.max_images, any_classes=args.any_classes,
              batch_size=args.batch_size, workers=args.workers, crop_pct=args.crop_pct,
              progress=not args.no_progress)
    if args.benchmark in ('occlusion', 'shuffle'):
        kw['seed'] = args.seed
    if args.benchmark == 'occlusion':
        kw.update(patch=args.patch, **({'ratios': tuple(args.ratios)} if args.ratios else {}))
    if args.benchmark == 'shuffle' and args.grids:
        kw['grids'] = tuple(args.grids)
    if args.benchmark == 'imagenet-o':
        if not args.val:
            raise SystemExit('error: imagenet-o needs --val DIR (ImageNet val, the in-distribution images)')
        kw.update(val=args.val, restrict_to_ood_classes=args.softmax_over_ood_classes)
    return kw


def main(argv=None):
    args = parse_args(argv)
    from mixcore.weights.errors import CheckpointError
    from pretrain.viz.models import load_model
    from pretrain.robustness.evaluate import run
    from mixseg.tables.rows import robustness_row
    from pretrain.robustness.results import write_robustness_result
    kw = options(args)   # argument errors before the model is read
    try:
        loaded = load_model(args.checkpoint, arch=args.arch, img_size=args.img_size, need_head=True)
        record = run(args.benchmark, loaded, **kw)
        row = robustness_row(loaded.arch, loaded.model_kwargs, loaded.method, model=args.model)
        path = write_robustness_result(args.work_dir, record, loaded, row)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {path}')
    return path


if __name__ == '__main__':
    main()

"""Robustness to occlusion (the TokenMix paper's Fig. 4, TransMix's occlusion study): top-1 accuracy and the mean
confidence of the true class as a growing share of the patches (0 to 0.9) is dropped, several models on one plot.

    python tools/occlusion_robustness.py \\
        --checkpoint work_dirs/demo/pretrain/vit-nano_{baseline,transmix}/epoch_12.pth \\
        --images data/demo/imagenet/val --out work_dirs/occlusion
    python tools/occlusion_robustness.py --checkpoint deit_small_patch16_224-cd65a155.pth \\
        --arch deit_small_patch16_224 --images data/imagenet/val --max-images 5000 --out work_dirs/occlusion

Writes <out>/occlusion.json (the numbers) and <out>/occlusion.png. Dropping needs the classifier: pass training
checkpoints (<work_dir>/epoch_N.pth) or official timm/DeiT/PVT .pth files with their head (and --arch). A backbone
file (.safetensors) holds no head and is refused with that reason. A dropped patch is one cell of the model's token
grid (ViT: its patch; PVT v1: 32 px, its stage-4 grid; --patch to use one size for all) set to the mean colour;
the cells are drawn from (seed, ratio, image index), the same for every model. Labels are the positions of the
sorted class folders: their names must be the classes a training checkpoint records (mmengine's dataset_meta),
their count the head's; images are read as training reads them (EXIF orientation, 16-bit grey).
"""
import argparse

from mixcore.patches import install as install_patches
from mixseg.cli.model_options import add_model_options, load_models


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', nargs='+', required=True, metavar='FILE',
                   help='training checkpoints (.pth) or timm/DeiT/PVT .pth files with a classifier head')
    p.add_argument('--images', required=True, metavar='DIR',
                   help='validation images in the ImageNet layout DIR/<class>/<image> (sorted class folders = labels)')
    p.add_argument('--out', required=True, metavar='DIR', help='where occlusion.json and occlusion.png go')
    p.add_argument('--ratios', type=float, nargs='+', default=None,
                   help='shares of patches dropped (default 0 0.1 ... 0.9)')
    p.add_argument('--seed', type=int, default=0, help='seed of the dropped cells (default 0)')
    p.add_argument('--patch', type=int, default=None,
                   help='cell size in pixels (default: each model\'s token stride)')
    p.add_argument('--max-images', type=int, default=None, help='evaluate this many images, spread evenly')
    p.add_argument('--batch-size', type=int, default=32, help='images per forward pass (default 32)')
    p.add_argument('--workers', type=int, default=0, help='data-loading processes (default 0: in the main one)')
    add_model_options(p)
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p.parse_args(argv)


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    args = parse_args(argv)
    from mixcore.weights.errors import CheckpointError
    from pretrain.viz.occlusion import RATIOS, occlusion_robustness
    ratios = tuple(args.ratios) if args.ratios else RATIOS
    if any(not 0 <= r < 1 for r in ratios):
        raise SystemExit(f'error: --ratios must lie in [0, 1), got {list(ratios)}')
    try:
        models = load_models(args, need_head=True)
        json_path, png = occlusion_robustness(
            models, args.images, args.out, ratios=ratios, seed=args.seed, patch=args.patch,
            batch_size=args.batch_size, workers=args.workers, max_images=args.max_images, crop_pct=args.crop_pct,
            progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {json_path}\nwrote {png}')
    return json_path, png


if __name__ == '__main__':
    main()

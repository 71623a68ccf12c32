"""Draw the class token's attention over the patches at every layer (the TokenMix paper's Fig. 3), for one or
several models side by side on the same images: one PNG per image.

    python tools/visualize_attention.py \\
        --checkpoint work_dirs/demo/pretrain/vit-nano_{baseline,tokenmix}/backbone.safetensors \\
        --images data/demo/imagenet/val --out work_dirs/attention
    python tools/visualize_attention.py --checkpoint deit_small_patch16_224-cd65a155.pth \\
        --arch deit_small_patch16_224 --images data/imagenet/val --num-images 8 --out work_dirs/attention

Models: timm ViT/DeiT (every block) and PVT v1 (the blocks of stage 4, where its class token is). Each file's
architecture, image size and model arguments come from its metadata (backbone file) or from the config stored in it
(training checkpoint, read as data, never executed); an official timm/DeiT/PVT .pth needs --arch. Each map is the
head-mean softmax row of the class token's query over the patch tokens, computed from the q/k projections of the
one forward pass.
"""
import argparse

from mixcore.patches import install as install_patches
from mixseg.cli.model_options import add_model_options, load_models


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', nargs='+', required=True, metavar='FILE',
                   help='backbone files (.safetensors) or training checkpoints (.pth), one row each')
    p.add_argument('--images', required=True, metavar='DIR',
                   help='folder of images, plain or in class sub-folders (ImageNet layout)')
    p.add_argument('--out', required=True, metavar='DIR', help='where the PNGs go (one per image)')
    p.add_argument('--num-images', type=int, default=4, help='images drawn, taking the classes in turn (default 4)')
    add_model_options(p)
    return p.parse_args(argv)


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    args = parse_args(argv)
    from mixcore.weights.errors import CheckpointError
    from pretrain.viz.attention import visualize_attention
    try:
        models = load_models(args)
        written = visualize_attention(models, args.images, args.out, args.num_images, args.crop_pct)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        raise SystemExit(f'error: {e}')
    for path in written:
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()

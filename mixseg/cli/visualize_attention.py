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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', nargs='+', required=True, metavar='FILE',
                   help='backbone files (.safetensors) or training checkpoints (.pth), one row each')
    p.add_argument('--images', required=True, metavar='DIR',
                   help='folder of images, plain or in class sub-folders (ImageNet layout)')
    p.add_argument('--out', required=True, metavar='DIR', help='where the PNGs go (one per image)')
    p.add_argument('--num-images', type=int, default=4, help='images drawn, taking the classes in turn (default 4)')
    p.add_argument('--arch', help='timm model name, for .pth files without metadata (official DeiT/PVT weights)')
    p.add_argument('--img-size', type=int, help='input size (default: the one each file records; else 224)')
    p.add_argument('--crop-pct', type=float, default=0.875, help='centre-crop share of the resized image (timm eval)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    return p.parse_args(argv)


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    args = parse_args(argv)
    import torch

    from mixcore.weights.errors import CheckpointError
    from pretrain.viz.attention import visualize_attention
    from pretrain.viz.models import load_model
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = [load_model(f, arch=args.arch, img_size=args.img_size) for f in args.checkpoint]
        written = visualize_attention(models, args.images, args.out, args.num_images, args.crop_pct)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        raise SystemExit(f'error: {e}')
    for path in written:
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()

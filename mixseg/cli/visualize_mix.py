"""Draw what each mixing method does: one PNG per method.

Each row is one mixed sample: the image (A), its partner (B, from another class), the mixed image with the pasted
token region outlined, and the attention the label is built from (class attention of the mixed image; for
TokenMix the clean-image maps of the tokens each image keeps), with that sample's λ and label weights.

    python tools/visualize_mix.py --checkpoint work_dirs/demo/pretrain/vit-nano_transmix/backbone.safetensors \\
        --images data/demo/imagenet/val --out work_dirs/visualize_mix
    python tools/visualize_mix.py --checkpoint deit_small_patch16_224-cd65a155.pth --model deit_small_patch16_224
    python tools/visualize_mix.py                      # generated images, random-init DeiT-Tiny, no downloads

With --checkpoint the architecture, model arguments and image size come from the file (backbone file metadata, or
the config stored in a training checkpoint, read as data); --model/--img-size override them. Without a checkpoint
the model is random-init and every figure says that its attention is meaningless (regions, masks and the
bookkeeping of the label weights are still right). ``--method NAME=CONFIG`` also draws a method of your own.
"""
import argparse

from mixcore.patches import install as install_patches

from pretrain.mix_figure import METHODS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--images', default=None, metavar='DIR',
                   help='folder of images; class sub-folders give the labels and pairs join different classes '
                        '(default: generated images)')
    p.add_argument('--out', default='work_dirs/visualize_mix', metavar='DIR',
                   help='where <method>.png go (default work_dirs/visualize_mix)')
    p.add_argument('--checkpoint', default=None, metavar='FILE',
                   help='backbone file (.safetensors), training checkpoint or timm/DeiT/PVT .pth whose class '
                        'attention labels the mixes (default: a random-init model, said in the figures)')
    p.add_argument('--model', default=None,
                   help='timm model name (default: from the checkpoint; deit_tiny_patch16_224 without one)')
    p.add_argument('--img-size', type=int, default=None,
                   help='input size (default: from the checkpoint; 224 without one)')
    p.add_argument('--rows', type=int, default=3, help='mixed samples shown per method (default 3)')
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS, help='methods drawn (default all)')
    p.add_argument('--method', action='append', default=[], metavar='NAME=CONFIG',
                   help='also draw a mixing method of your own from its method config (configs/_base_/methods/ has '
                        'the papers\'; README "Your own mixing method"), as <NAME>.png; repeatable')
    p.add_argument('--per-batch', action='store_true',
                   help='draw one λ (TokenMix: one mask) for the whole batch as the recipes do; default: per sample, '
                        'so that each row shows its own draw')
    p.add_argument('--seed', type=int, default=0, help='seed of the image choice and the mixing draws (default 0)')
    return p.parse_args(argv)


def main(argv=None):
    install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py
    args = parse_args(argv)
    from mixcore.weights.errors import CheckpointError
    from pretrain.viz.models import build_untrained, load_model
    from pretrain.mix_figure import visualize_mix
    try:
        if args.checkpoint:
            loaded = load_model(args.checkpoint, arch=args.model, img_size=args.img_size)
        else:
            loaded = build_untrained(args.model or 'deit_tiny_patch16_224', args.img_size or 224, num_classes=0)
        from pretrain.method_config import parse_method_options
        own = parse_method_options(args.method)
        return visualize_mix(loaded, args.out, images_dir=args.images, rows=args.rows, methods=args.methods,
                             seed=args.seed, per_sample=not args.per_batch, extra_methods=own)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as e:
        raise SystemExit(f'error: {e}')


if __name__ == '__main__':
    main()

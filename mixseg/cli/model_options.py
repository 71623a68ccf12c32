"""The model options the figure commands share (visualize_attention, occlusion_robustness): how a checkpoint
without metadata is read, the input size and crop, torch's thread count; and the models they load."""
from __future__ import annotations


def add_model_options(p) -> None:
    p.add_argument('--arch', help='timm model name, for .pth files without metadata (official DeiT/PVT weights)')
    p.add_argument('--img-size', type=int, help='input size (default: the one each file records; else 224)')
    p.add_argument('--crop-pct', type=float, default=0.875, help='centre-crop share of the resized image (timm eval)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')


def load_models(args, need_head: bool = False) -> list:
    """``args.checkpoint``'s models (pretrain.viz.models.load_model), after setting ``--threads``."""
    import torch

    from pretrain.viz.models import load_model
    if args.threads:
        torch.set_num_threads(args.threads)
    return [load_model(f, arch=args.arch, img_size=args.img_size, need_head=need_head) for f in args.checkpoint]

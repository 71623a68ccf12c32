"""Stage-2 backbone speed: our registered backbone vs the host library's own implementation of the same network
(the requirement: ours must not be slower). Forward + backward of one training step on the same weights and input,
the two implementations interleaved (alternating order) so that machine load hits both alike; medians.

    python tools/benchmark_backbone.py --task det                 # MixsegPVT vs mmdet PVT, PVT-S, 1x3x800x1216
    python tools/benchmark_backbone.py --task det --arch tiny --size 512 512 --reps 10 --json out.json
    python tools/benchmark_backbone.py --task seg                 # MixsegViT vs mmseg ViT, DeiT-S, 1x3x512x512
    python tools/benchmark_backbone.py --task seg --arch base --reps 7

Prints one line per implementation and the ratio ours / theirs (≤ 1.00: ours is not slower).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without install

import torch  # noqa: E402

from mixcore.atomic_write import atomic_write_text  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', choices=['det', 'seg'], required=True)
    p.add_argument('--arch', default='small', help='det: tiny|small|medium|large; seg: tiny|small|base (DeiT) '
                   'or a timm ViT name (default small)')
    p.add_argument('--size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default det: 800 1216, a 1333x800 COCO image padded to 32; '
                   'seg: 512 512, the ADE20K crop)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--reps', type=int, default=5, help='timed repetitions per implementation')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help='bf16/fp16 autocast (GPU)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    p.add_argument('--json', help='also write the results here')
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------- det
def build_det(arch: str):
    """(ours, theirs): MixsegPVT and mmdet's PyramidVisionTransformer with identical weights (ours converted
    through mmdet's own pvt_convert), both at the Mask R-CNN recipe's drop path 0.1, in training mode."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformer, pvt_convert

    from mixseg.backbones.pvt import MixsegPVT
    from pretrain.models.pvt import PVT_ARCHS
    # the paper's variants: only their depths differ, mmdet's widths are theirs (not the demo's 'nano')
    depths = {name: a['depths'] for name, a in PVT_ARCHS.items() if set(a) == {'depths'}}
    if arch not in depths:
        raise SystemExit(f'--arch must be one of {sorted(depths)} for --task det')
    torch.manual_seed(0)
    ours = MixsegPVT(arch=arch, drop_path_rate=0.1)
    theirs = PyramidVisionTransformer(num_layers=list(depths[arch]), drop_path_rate=0.1)
    theirs.load_state_dict(pvt_convert(ours.state_dict()), strict=True)
    return ours, theirs


# --------------------------------------------------------------------------------------------- seg
_SEG_ARCHS = {'tiny': 'deit_tiny_patch16_224', 'small': 'deit_small_patch16_224', 'base': 'deit_base_patch16_224'}


def build_seg(arch: str, size=(512, 512)):
    """(ours, theirs): MixsegViT and mmseg's VisionTransformer with identical weights (ours converted through
    mmseg's own vit2mmseg mapping), both with Segmenter's settings (class token, final norm, patch bias,
    drop path 0.1, position embedding sized for the input), in training mode."""
    from mmseg.models.backbones import VisionTransformer

    from mixseg.backbones.vit import MixsegViT, mmseg_vit_converter
    name = _SEG_ARCHS.get(arch, arch)
    torch.manual_seed(0)
    ours = MixsegViT(arch=name, img_size=tuple(size), drop_path_rate=0.1)
    if ours.num_prefix_tokens != 1 or ours.no_embed_class:
        raise SystemExit(f'--task seg: mmseg\'s VisionTransformer has exactly one class token; {name} does not fit')
    blk = ours.blocks[0]
    theirs = VisionTransformer(
        img_size=tuple(size), patch_size=ours.patch_size[0], embed_dims=ours.embed_dim, num_layers=len(ours.blocks),
        num_heads=blk.attn.num_heads, mlp_ratio=blk.mlp.fc1.out_features // ours.embed_dim, qkv_bias=True,
        patch_bias=True, drop_path_rate=0.1, with_cls_token=True, final_norm=True,
        norm_cfg=dict(type='LN', eps=1e-6), interpolate_mode='bicubic')
    theirs.load_state_dict(mmseg_vit_converter()(ours.state_dict()), strict=True)
    return ours, theirs


# --------------------------------------------------------------------------------------------- timing
def _step(model, x, amp: bool):
    dtype = torch.bfloat16 if x.device.type == 'cpu' else torch.float16
    with torch.autocast(x.device.type, dtype=dtype, enabled=amp):
        outs = model(x)
    loss = sum(o.float().mean() for o in outs)
    loss.backward()


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_pair(ours, theirs, x, reps: int, warmup: int, amp: bool = False) -> dict:
    device = x.device
    models = {'ours': ours.to(device), 'theirs': theirs.to(device)}
    for model in models.values():
        model.train()  # (not chained: mmseg's VisionTransformer.train() returns None)
    times = {k: [] for k in models}
    for r in range(warmup + reps):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            model = models[name]
            model.zero_grad(set_to_none=True)
            _sync(device)
            t0 = time.perf_counter()
            _step(model, x, amp)
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(times=times, median=med, ratio=med['ours'] / med['theirs'])


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.size is None:
        args.size = [800, 1216] if args.task == 'det' else [512, 512]
    if args.task == 'det':
        ours, theirs = build_det(args.arch)
        names = (f'MixsegPVT({args.arch})', f'mmdet PyramidVisionTransformer({args.arch})')
    else:
        ours, theirs = build_seg(args.arch, args.size)
        names = (f'MixsegViT({_SEG_ARCHS.get(args.arch, args.arch)})', 'mmseg VisionTransformer')
    x = torch.randn(args.batch, 3, *args.size, device=device)
    res = time_pair(ours, theirs, x, args.reps, args.warmup, args.amp)
    where = f'{device.type}' + (f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else
                                f' ({torch.cuda.get_device_name(device)})')
    print(f'forward+backward, input {args.batch}x3x{args.size[0]}x{args.size[1]}, {where}, '
          f'median of {args.reps} (interleaved, {args.warmup} warm-up)')
    for key, name in zip(('ours', 'theirs'), names):
        ts = ', '.join(f'{t:.3f}' for t in res['times'][key])
        print(f'  {name:<48s} {res["median"][key]:8.3f} s   [{ts}]')
    print(f'  ratio ours/theirs: {res["ratio"]:.3f}  ({"not slower" if res["ratio"] <= 1.0 else "SLOWER"})')
    if args.json:
        record = dict(task=args.task, arch=args.arch, size=args.size, batch=args.batch, device=where,
                      amp=args.amp, names=dict(zip(('ours', 'theirs'), names)), **res)
        atomic_write_text(args.json, json.dumps(record, indent=2))
    return res


if __name__ == '__main__':
    main()

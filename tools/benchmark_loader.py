#!/usr/bin/env python
"""Images/s of the stage-1 data loader alone (no model), per worker count: what a GPU node's CPUs deliver.

    python tools/benchmark_loader.py [CONFIG] [--data-root DIR | --fake-imagenet N] [--workers 1 2] [--batch 32]

CONFIG defaults to the DeiT recipe (configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py: RandAugment,
random-resized crop 224, random erasing). ``--data-root data/demo/imagenet`` measures the demo tree (96² images:
little to decode); ``--fake-imagenet 256`` writes ImageNet-sized JPEGs (500×375) to a temporary folder first,
for a per-core rate close to real ImageNet. ``--uint8`` measures the GPU-run form (normalisation and erasing
moved to the GPU). ``--workers 0`` also reports images per CPU-second (the loading runs in this process: its
CPU time, robust on a busy machine). Divide a GPU's training images/s by that rate for the cores it needs.
"""
import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pretrain.patches import install as install_patches  # noqa: E402
install_patches()  # every patch of both stages (timm's posterize, ...): see mixcore/patches.py

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from pretrain.loader_benchmark import build_train_dataset, measure, write_fake_imagenet  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / 'configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', nargs='?', default=str(DEFAULT))
    p.add_argument('--data-root', help='ImageNet-style tree (default: the config\'s)')
    p.add_argument('--fake-imagenet', type=int, default=0, metavar='N',
                   help='write N ImageNet-sized JPEGs to a temporary folder and measure on them')
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--batches', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--uint8', action='store_true', help='uint8 batches (normalise/erase on the GPU)')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if args.fake_imagenet:
            root = str(write_fake_imagenet(tmp, args.fake_imagenet))
        dataset = build_train_dataset(cfg, root, uint8=args.uint8)
        print(f'config={Path(args.config).name} data={root or cfg.train_dataloader.dataset.data_root} '
              f'images={len(dataset)} batch={args.batch} uint8={args.uint8}')
        print(f'| {"workers":>7} | {"images/s":>9} | {"per worker":>10} | {"per CPU-s":>9} | {"batch MB":>8} '
              f'| dtype   |')
        print(f'|{"-" * 9}|{"-" * 11}|{"-" * 12}|{"-" * 11}|{"-" * 10}|---------|')
        rows = []
        for w in args.workers:
            r = measure(dataset, args.batch, w, args.batches, args.warmup)
            rows.append(r)
            cpu = f'{r["images_per_cpu_s"]:.1f}' if r['images_per_cpu_s'] else '-'
            print(f'| {w:>7} | {r["images_per_s"]:>9.1f} | {r["per_worker"]:>10.1f} | {cpu:>9} | '
                  f'{r["batch_mb"]:>8.2f} | {r["dtype"]:<7} |', flush=True)
    return rows


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Write the generated demo datasets (ImageNet tree, ADE20K, Pascal Context 59, COCO) under --out.

    python tools/make_demo_data.py --out data/demo [--seed 0] [--size small|tiny] [--only imagenet,coco] [--force]

Deterministic from the seed; existing datasets are skipped unless --force. See mixcore/demo_data.py.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixcore.demo_data import DATASETS, SIZES, make_demo_data  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='data/demo', help='output directory (default: data/demo)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--size', choices=sorted(SIZES), default='small')
    p.add_argument('--only', default=None, help=f'comma-separated subset of: {",".join(DATASETS)}')
    p.add_argument('--force', action='store_true', help='regenerate datasets that already exist')
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        roots = make_demo_data(args.out, seed=args.seed, size=args.size, only=args.only, force=args.force,
                               log=None if args.quiet else print)
    except ValueError as e:
        p.error(str(e))
    if not args.quiet:
        for name, root in roots.items():
            print(f'{name:15s} {root}')
        print(f'done in {time.perf_counter() - t0:.2f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())

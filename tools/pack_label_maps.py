#!/usr/bin/env python
"""Pack a folder of TokenLabeling label maps into memory-mapped arrays (fewer files for large runs).

    python tools/pack_label_maps.py data/imagenet/label_top5_train_nfnet data/imagenet/label_top5_train_nfnet_pack

SRC holds ``<class>/<image stem>.pt`` (2×k×H×W, as published or written by tools/make_label_maps.py); DST receives
scores.npy (float16), indices.npy (int16) and label_maps_pack.json, which carries SRC's settings record
(label_maps.json of tools/make_label_maps.py: teacher, classes, map shape), so training checks the pack against its
dataset as it checks the folder. Training reads either: point ``train_dataloader.dataset.label_map_root`` at DST.
Why: pretrain/label_maps/ ("Packed variant").
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', help='folder of <class>/<stem>.pt label maps')
    p.add_argument('dst', help='output folder of the pack')
    p.add_argument('--num-classes', type=int, default=None,
                   help='check every class index against this (default: the teacher\'s, from SRC/label_maps.json)')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    from pretrain.label_maps.map_file import LabelMapError
    from pretrain.label_maps.pack import pack_label_maps
    try:
        meta = pack_label_maps(args.src, args.dst, num_classes=args.num_classes, progress=not args.no_progress)
    except (LabelMapError, OSError) as e:
        raise SystemExit(f'pack_label_maps: {e}')
    print(f"{len(meta['keys'])} maps of shape {tuple(meta['shape'])} -> {args.dst}")
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python
"""Make Pascal Context 59 (mmseg's PascalContextDataset59 layout) from the official downloads only.

    # VOC2010 images + splits: http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar
    tar xf VOCtrainval_03-May-2010.tar -C data/                  # -> data/VOCdevkit/VOC2010
    # Pascal Context annotations: https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz
    tar xzf trainval.tar.gz -C data/VOCdevkit/VOC2010/           # -> data/VOCdevkit/VOC2010/trainval/*.mat
    python tools/convert_pascal_context.py data/VOCdevkit/VOC2010

writes data/VOCdevkit/VOC2010/SegmentationClassContext/<id>.png (0 = background, 1..59 = the classes) and
ImageSets/SegmentationContext/{train,val}.txt (mixseg/datasets/pascal_context.py says how). No
trainval_merged.json and no `detail` package are needed.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('voc2010', help='the VOC2010 folder of VOCtrainval_03-May-2010.tar (data/VOCdevkit/VOC2010)')
    p.add_argument('--context', default=None,
                   help='folder of the <image id>.mat files of trainval.tar.gz (default: VOC2010/trainval)')
    args = p.parse_args(argv)
    from mixseg.datasets.pascal_context import convert_pascal_context
    try:
        counts = convert_pascal_context(args.voc2010, args.context)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {args.voc2010}/SegmentationClassContext and ImageSets/SegmentationContext: '
          + ', '.join(f'{k} {v} images' for k, v in counts.items()))
    return counts


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Check a COCO instance annotation file (your own, e.g. a labelme export) by evaluating it against itself:

    python tools/check_coco_annotations.py data/my_coco/annotations/instances_val.json [--metrics bbox segm]

The ground truth is fed back as predictions (score 1) through the project's COCO metric (mmdet's CocoMetric,
mixseg.datasets.CheckedCocoMetric); box and mask AP must come out 1.0. Otherwise the report names what in the
file causes it (duplicate or zero annotation ids, images with more than 100 annotations, categories below 1)
or what makes the file unusable (broken polygons, boxes outside the image, unknown images or categories).
Exit status: 0 all AP 1.0, 1 some AP below 1, 2 the file is refused.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('ann_file', help='COCO instances JSON file')
    p.add_argument('--metrics', nargs='+', choices=('bbox', 'segm'), default=['bbox', 'segm'])
    args = p.parse_args(argv)
    if not Path(args.ann_file).is_file():
        raise SystemExit(f'error: {args.ann_file}: no such file')
    from mixseg.datasets.coco import coco_self_check
    report = coco_self_check(args.ann_file, args.metrics)
    for e in report['errors']:
        print(f'error: {e}')
    for name, value in report['metrics'].items():
        print(f'{name} = {value} {"(ok)" if value == 1.0 else "(expected 1.0)"}')
    for metric, cats in report['per_category'].items():
        if cats:
            print(f'{metric}: categories with AP below 1: ' + ', '.join(f'{k} {v}' for k, v in cats.items()))
    for n in report['notes']:
        print(f'note: {n}')
    print(f'{args.ann_file}: ' + ('ground truth scores AP 1.0 against itself' if report['ok'] else
                                  'refused' if report['errors'] else 'ground truth scores below AP 1.0'))
    code = 0 if report['ok'] else 2 if report['errors'] else 1
    if argv is None:
        sys.exit(code)
    return report


if __name__ == '__main__':
    main()

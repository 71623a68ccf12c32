"""Print the papers' downstream tables with our results beside the published numbers.

    python tools/tables.py WORK_DIR [WORK_DIR ...] [--tables A B C] [--format md|csv|json] [--plot out.png]
        [--out FILE] [--note "toy-scale demo"] [--include-nonstandard]

Each cell: published / ours / difference; "not run" where no result was found. Runs are found through the
``results/*.json`` files that tools/test.py writes (see mixseg/tables/results.py). A result whose row the paper's table
has not is an extra row without published numbers (and listed: "not in any table"). A result trained or tested
on other data or another schedule than the paper's (the setup recorded with it) is left out with a note, or with
--include-nonstandard shown marked *; demo runs (generated data) show marked †, results of unknown setup (files
of older runs) marked ?. Table E (robustness, tools/robustness.py) also gets its occlusion and shuffling curves
next to --plot: <plot>_E_curves.png.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mixcore.atomic_write import atomic_write_text  # noqa: E402
from mixseg.tables.plots import curves_path, plot  # noqa: E402
from mixseg.tables.published import TABLES  # noqa: E402
from mixseg.tables.render import missing_cells, render_tables  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('work_dirs', nargs='+')
    p.add_argument('--tables', nargs='+', default=sorted(TABLES), choices=sorted(TABLES))
    p.add_argument('--format', choices=['md', 'csv', 'json'], default='md')
    p.add_argument('--plot', help='write a bar plot per table to this PNG')
    p.add_argument('--out', help='also write the tables to this file')
    p.add_argument('--note', default='', help='label for our numbers, e.g. "toy-scale demo"')
    p.add_argument('--include-nonstandard', action='store_true',
                   help="also show results of other data or another schedule than the paper's (marked *)")
    args = p.parse_args(argv)

    col, text = render_tables(args.work_dirs, args.tables, args.format, args.note,   # warnings on stderr
                              include_nonstandard=args.include_nonstandard)
    print(text)
    for t in args.tables:
        missing = missing_cells(TABLES[t], col)
        if missing:
            print(f'table {t}: {len(missing)} cell(s) not run', file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, text + '\n')
    if args.plot:
        print(f'plot written to {plot([TABLES[t] for t in args.tables], col, args.plot, args.note)}', file=sys.stderr)
        if 'E' in args.tables and osp.isfile(curves_path(args.plot)):   # (plot draws them with Table E)
            print(f'Table E curves (occlusion, shuffling) written to {curves_path(args.plot)}', file=sys.stderr)
    return col


if __name__ == '__main__':
    main()

"""Reproduce a downstream table of the papers: pretrain → transfer → single-/multi-scale test → the table.

The command line of :mod:`mixseg.cli.reproduce` (``python tools/reproduce.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixcore.patches import install as install_patches  # noqa: E402
install_patches()  # before the OpenMMLab stack is imported (its pkg_resources warning): see mixcore/patches.py
from mixseg.cli.reproduce import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

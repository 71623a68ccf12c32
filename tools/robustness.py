"""Robustness of a stage-1 classifier (Table E): one benchmark per call, its numbers into

The command line of :mod:`mixseg.cli.robustness` (``python tools/robustness.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.robustness import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

"""Evaluate a checkpoint with any mixseg config and record the metrics for the tables tool.

The command line of :mod:`mixseg.cli.test` (``python tools/test.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.test import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

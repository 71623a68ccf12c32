"""Draw what each mixing method does: one PNG per method.

The command line of :mod:`mixseg.cli.visualize_mix` (``python tools/visualize_mix.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.visualize_mix import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

"""Draw the class token's attention over the patches at every layer (the TokenMix paper's Fig. 3), for one or

The command line of :mod:`mixseg.cli.visualize_attention` (``python tools/visualize_attention.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.visualize_attention import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

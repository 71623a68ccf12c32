"""Robustness to occlusion (the TokenMix paper's Fig. 4, TransMix's occlusion study): top-1 accuracy and the mean

The command line of :mod:`mixseg.cli.occlusion_robustness` (``python tools/occlusion_robustness.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.occlusion_robustness import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

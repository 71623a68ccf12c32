"""Train any mixseg config: stage-1 pretraining, mmseg (Segmenter/linear) or mmdet (Mask R-CNN).

The command line of :mod:`mixseg.cli.train` (``python tools/train.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.train import main  # noqa: E402

if __name__ == '__main__':
    main()   # errors exit through SystemExit; the return value is for in-process callers

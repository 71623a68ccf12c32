"""Write TokenMix/TokenLabeling label maps for an ImageNet-style folder with a local teacher.

The command line of :mod:`mixseg.cli.make_label_maps` (``python tools/make_label_maps.py --help``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from mixseg.cli.make_label_maps import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

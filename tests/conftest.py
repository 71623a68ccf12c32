import os
import sys
from pathlib import Path

os.environ['CUDA_VISIBLE_DEVICES'] = '-1'  # the suite runs on CPU; mmengine picks the device from this

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the tests run the library as the tools do: with every patch of mixcore/patches.py (and pretrain's) installed;
# tests/test_import_side_effects.py checks in fresh interpreters that importing alone installs nothing
import pretrain.install_patches  # noqa: E402,F401


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> Path:
    """Tiny demo data in all four real layouts, generated once per test session."""
    from mixcore.demo_data import make_demo_data
    out = tmp_path_factory.mktemp('demo_data')
    make_demo_data(out, seed=0, size='tiny')
    return out


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Tests that call mmengine's ``init_default_scope('mmseg'|'mmdet')`` must not leave that scope as the
    process-wide default for later tests (registry look-ups go through the current default scope)."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        del DefaultScope._instance_dict[name]


@pytest.fixture(scope='module')
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures('one_thread')``): on a shared
    2-core machine two OpenMP threads per process spin against each other and run several times slower;
    restored afterwards."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

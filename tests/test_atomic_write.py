"""Files the project writes are written to a temporary name and renamed: a killed write leaves the
previous file intact."""
import os
import signal
import subprocess
import sys
import pytest
import torch

from mixcore.atomic_write import atomic_write
from mixcore.weights.backbone_file import load_backbone_file, save_backbone_file

KILLED_WRITER = '''
import sys, time
from mixcore.atomic_write import atomic_write

def write(tmp):
    with open(tmp, 'wb') as f:
        f.write(b'half-written')
        f.flush()
        print('writing', flush=True)
        time.sleep(60)
        f.write(b'never')

atomic_write(sys.argv[1], write)
'''


def test_sigkill_during_write_keeps_previous_file(tmp_path, repo_root):
    target = tmp_path / 'backbone.safetensors'
    save_backbone_file(target, {'w': torch.arange(4.0)}, arch='deit_tiny_patch16_224', img_size=224,
                       patch_size=16, method='transmix', epochs=1)
    before = target.read_bytes()
    p = subprocess.Popen([sys.executable, '-c', KILLED_WRITER, str(target)], stdout=subprocess.PIPE,
                         env=dict(os.environ, PYTHONPATH=str(repo_root)), text=True)
    assert p.stdout.readline().strip() == 'writing'
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert target.read_bytes() == before
    bf = load_backbone_file(target)
    assert torch.equal(bf.state_dict['w'], torch.arange(4.0)) and bf.meta['method'] == 'transmix'


def test_failed_write_removes_temp_file(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')

    def boom(tmp):
        with open(tmp, 'w') as f:
            f.write('partial')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(target, boom)
    assert target.read_text() == 'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.txt']


def test_mmengine_checkpoints_are_atomic(tmp_path):
    """tools/train.py routes mmengine's checkpoint writer through atomic_write."""
    import mmengine.runner.runner as mm_runner

    from mixcore.runtime import install_atomic_checkpoints
    install_atomic_checkpoints()
    calls = []
    real = torch.save

    def spy(obj, f, *a, **k):
        calls.append(str(f))
        return real(obj, f, *a, **k)

    torch.save = spy
    stale = tmp_path / '.iter_0.pth.k3j2.part'  # left by a run killed while saving
    stale.write_bytes(b'half')
    try:
        mm_runner.save_checkpoint({'meta': {'iter': 1}}, str(tmp_path / 'iter_1.pth'))
    finally:
        torch.save = real
    assert len(calls) == 1 and calls[0].endswith('.part') and '.iter_1.pth.' in calls[0]
    assert torch.load(tmp_path / 'iter_1.pth', weights_only=True) == {'meta': {'iter': 1}}
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']


def test_written_file_gets_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / 'a.txt', lambda tmp: open(tmp, 'w').write('x'))
    finally:
        os.umask(old)
    assert (tmp_path / 'a.txt').stat().st_mode & 0o777 == 0o644

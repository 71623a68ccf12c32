"""Every weight and pickle read goes through one reader, :func:`mixcore.weights.read.read_file` (issue 23 item 3)."""
import ast
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mixcore.weights.errors import CheckpointError, WeightFileNotFoundError
from mixcore.weights.read import read_file
from mixcore.weights.state_dict import read_weights

ROOT = Path(__file__).resolve().parents[1]
READER = ROOT / 'mixcore' / 'weights' / 'read.py'
PACKAGES = ('mixcore', 'pretrain', 'mixseg', 'tools')

# calls that read a weight/pickle file (module alias resolved through the file's imports)
READ_CALLS = {'torch.load', 'torch.hub.load_state_dict_from_url', 'numpy.load', 'pickle.load', 'pickle.loads',
              'pickle.Unpickler', 'safetensors.safe_open', 'safetensors.torch.load', 'safetensors.torch.load_file',
              'timm.models.load_state_dict', 'timm.models.load_checkpoint', 'mmengine.runner.CheckpointLoader'
              '.load_checkpoint', 'torch.serialization.load'}


def _direct_reads(path: Path) -> list[str]:
    """``'file:line: call'`` for each read call in ``path`` (names resolved through its imports, lazy ones too)."""
    tree = ast.parse(path.read_text())
    alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name.split('.')[0]] = a.name if a.asname else a.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                alias[a.asname or a.name] = f'{node.module}.{a.name}'
    alias.setdefault('np', 'numpy')

    def dotted(node):
        if isinstance(node, ast.Name):
            return alias.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            inner = dotted(node.value)
            return f'{inner}.{node.attr}' if inner else None
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name in READ_CALLS or (name or '').replace('timm.models._helpers', 'timm.models') in READ_CALLS:
                found.append(f'{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno}: {name}')
    return found


def test_no_weight_or_pickle_read_outside_the_reader():
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob('*.py'))]
    assert len(files) > 50
    found = [hit for p in files if p != READER for hit in _direct_reads(p)]
    assert not found, ('read weights/pickles through mixcore.weights.read.read_file, not directly:\n'
                       + '\n'.join(found))
    # the one place: torch.load, safetensors' load_file and safe_open (header only), np.load
    assert sorted(h.split(': ')[1] for h in _direct_reads(READER)) == ['numpy.load', 'safetensors.safe_open',
                                                                       'safetensors.torch.load_file', 'torch.load']


def test_the_check_finds_each_kind_of_direct_read(tmp_path):
    """The grep above can fail: each way of writing a direct read is found."""
    source = tmp_path / 'reads.py'
    source.write_text('import torch\nimport numpy as np\nimport pickle as pk\nfrom safetensors.torch import load_file\n'
                      'def f(p):\n    from timm.models import load_state_dict\n    torch.load(p)\n    np.load(p)\n'
                      '    pk.loads(p)\n    load_file(p)\n    load_state_dict(p)\n    "torch.load(p) in a string"\n')
    hits = _direct_reads(source)
    assert [h.split(': ')[1] for h in hits] == ['torch.load', 'numpy.load', 'pickle.loads',
                                                 'safetensors.torch.load_file', 'timm.models.load_state_dict']


def test_reader_kinds_and_errors_name_the_file(tmp_path):
    torch.save({'state_dict': {'backbone.w': torch.ones(2)}, 'meta': {'epoch': 3}}, tmp_path / 'a.pth')
    assert torch.equal(read_file(tmp_path / 'a.pth')['state_dict']['backbone.w'], torch.ones(2))
    sd, meta = read_weights(tmp_path / 'a.pth')
    assert list(sd) == ['w'] and meta == {'epoch': 3}
    # .npy: never a pickle; memory-mapped on request
    np.save(tmp_path / 'a.npy', np.arange(4, dtype=np.int16))
    mapped = read_file(tmp_path / 'a.npy', mmap=True)
    assert isinstance(mapped, np.memmap) and mapped.tolist() == [0, 1, 2, 3]
    np.save(tmp_path / 'o.npy', np.array([{'x': 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r'o\.npy: not a readable \.npy array without pickles'):
        read_file(tmp_path / 'o.npy')
    # a legacy (non-zip) torch file cannot be memory-mapped: read whole
    torch.save(torch.arange(3), tmp_path / 'legacy.pt', _use_new_zipfile_serialization=False)
    assert read_file(tmp_path / 'legacy.pt', mmap=True).tolist() == [0, 1, 2]
    # a plain pickle is refused, named
    (tmp_path / 'p.pkl').write_bytes(pickle.dumps({'w': [1, 2]}))
    with pytest.raises(CheckpointError, match=r'p\.pkl: cannot be loaded safely') as info:
        read_file(tmp_path / 'p.pkl')
    assert 'weights_only=False' not in str(info.value)
    with pytest.raises(WeightFileNotFoundError, match='missing.pth: weight file not found'):
        read_file(tmp_path / 'missing.pth')
    with pytest.raises(CheckpointError, match='only local files and http'):
        read_file('ftp://host/a.pth')
    buffer = io.BytesIO()
    torch.save(torch.ones(1), buffer)
    buffer.seek(0)
    assert read_file(buffer, name='bytes of s3://b/a.pth').tolist() == [1.0]


def test_reader_applies_the_allow_list_and_leaves_torch_list_as_it_was(tmp_path):
    """An mmengine checkpoint (numpy scalars, HistoryBuffer) reads without the global patch, and a read neither
    adds to nor takes from torch's global allow-list."""
    from mmengine.logging.history_buffer import HistoryBuffer

    from mixcore.weights.safe_globals import install_safe_globals, patch_history_buffer
    patch_history_buffer()  # (how our runs write it: see mixcore.weights.safe_globals)
    buf = HistoryBuffer()
    buf.update(1.5)
    torch.save({'message_hub': {'loss': buf, 'lr': np.float64(0.1)}}, tmp_path / 'run.pth')
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        assert read_file(tmp_path / 'run.pth')['message_hub']['lr'] == 0.1
        assert torch.serialization.get_safe_globals() == []
        install_safe_globals()
        before = list(torch.serialization.get_safe_globals())
        read_file(tmp_path / 'run.pth')
        assert torch.serialization.get_safe_globals() == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def test_read_weights_takes_ema_weights_first_on_request(tmp_path):
    """The TokenMix teacher reads EMA weights first (as timm's reader did); everything else the raw ones."""
    torch.save({'state_dict': {'module.w': torch.zeros(1)}, 'state_dict_ema': {'module.w': torch.ones(1)}},
               tmp_path / 't.pth')
    assert read_weights(tmp_path / 't.pth')[0]['w'].item() == 0
    assert read_weights(tmp_path / 't.pth', ema=True)[0]['w'].item() == 1

"""Smoke runs of tools/visualize_mix.py and tools/benchmark_mix.py on tiny settings."""
from _tools import load_tool


def test_visualize_mix_writes_one_png_per_method(tmp_path):
    tool = load_tool('visualize_mix')
    written = tool.main(['--out', str(tmp_path), '--model', 'test_vit', '--img-size', '128', '--rows', '1'])
    assert [p.name for p in written] == [f'{m}.png' for m in tool.METHODS]
    for p in written:
        assert p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and p.stat().st_size > 5_000


def test_benchmark_mix_times_every_configuration():
    tool = load_tool('benchmark_mix')
    times = tool.main(['--model', 'test_vit', '--batch', '2', '--img-size', '128', '--rounds', '1',
                       '--warmup', '0', '--num-classes', '10'])
    assert list(times) == ['none', 'cutmix', 'cutmix+probe', 'transmix', 'mixpro', 'tokenmix', 'tokenmix-attn']
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())

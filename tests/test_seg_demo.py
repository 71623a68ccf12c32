"""End to end on the generated demo data, one run per decoder: tools/train.py trains a demo config for a few
iterations and validates, tools/test.py evaluates the checkpoint single-scale and multi-scale + flip, and
the metrics (aAcc, mIoU, mAcc of mmseg's IoUMetric) land in <work_dir>/results/{ss,ms}.json."""
import json
from pathlib import Path

import pytest
import torch

from _tools import load_tool

pytest.importorskip('mmseg')

ROOT = Path(__file__).resolve().parents[1]
ITERS = 20
RUNS = {  # decoder: (config, demo dataset) — the two decoders on the two datasets
    'mask': ('configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py', 'ade20k'),
    'linear': ('configs/demo/segmenter-linear_vit-demo_1xb4-200i_pascal-context-59-demo-128x128.py',
               'pascal_context'),
}


pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest


@pytest.fixture
def backbone_inputs(monkeypatch):
    """Records the input shape of every backbone call (to see what the test modes really run)."""
    from mixseg.backbones.vit import MixsegViT
    shapes = []
    forward = MixsegViT.forward

    def recording(self, inputs):
        shapes.append(tuple(inputs.shape))
        return forward(self, inputs)

    monkeypatch.setattr(MixsegViT, 'forward', recording)
    return shapes


@pytest.mark.slow
@pytest.mark.parametrize('decoder', sorted(RUNS))
def test_demo_train_then_test_ss_and_ms(decoder, demo_data, tmp_path, backbone_inputs):
    from mixcore.demo_data import DATA_ROOTS
    config, dataset = RUNS[decoder]
    root = Path(demo_data) / DATA_ROOTS[dataset]
    work = tmp_path / decoder
    opts = [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                 'test_dataloader')]
    opts += [f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}', f'param_scheduler.0.end={ITERS}',
             f'default_hooks.checkpoint.interval={ITERS}', 'default_hooks.logger.interval=5',
             f'visualizer.name=vis_{decoder}_train']
    torch.manual_seed(0)
    load_tool('train').main([config, '--work-dir', str(work), '--cfg-options', *opts])

    ckpt = work / f'iter_{ITERS}.pth'
    assert ckpt.is_file()
    train_shapes = [s for s in backbone_inputs if s[0] == 4]
    assert len(train_shapes) == ITERS and set(train_shapes) == {(4, 3, 128, 128)}  # batch 4 of 128² crops
    # it learned something: the training loss went down
    scalars = [json.loads(line) for line in next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) >= 4 and losses[-1] < losses[0], losses

    test = load_tool('test')
    n_val = len(list((root / ('images/validation' if dataset == 'ade20k' else 'JPEGImages')).glob('*.jpg')))
    if dataset == 'pascal_context':
        n_val = len((root / 'ImageSets/SegmentationContext/val.txt').read_text().split())
    results = {}
    for tag, extra in (('ss', []), ('ms', ['--tta'])):
        backbone_inputs.clear()
        metrics = test.main([config, str(ckpt), '--work-dir', str(work), *extra, '--cfg-options',
                             *opts[:3], f'visualizer.name=vis_{decoder}_{tag}'])
        record = json.loads((work / 'results' / f'{tag}.json').read_text())
        assert record['tta'] == (tag == 'ms') and record['checkpoint'] == str(ckpt)
        assert set(record['metrics']) >= {'aAcc', 'mIoU', 'mAcc'}
        assert record['metrics']['mIoU'] == pytest.approx(metrics['mIoU'])
        assert 0 < record['metrics']['mIoU'] <= 100 and 0 < record['metrics']['mAcc'] <= 100
        results[tag] = (record['metrics'], list(backbone_inputs))
    # single scale: sliding 128² windows (smaller only where the resized image is smaller), one per window
    ss_shapes = results['ss'][1]
    assert len(ss_shapes) >= n_val and all(h <= 128 and w <= 128 for _, _, h, w in ss_shapes)
    # multi-scale + flip: 6 scales x 2 flips per image, the scales up to 1.75x need more windows
    ms_shapes = results['ms'][1]
    assert len(ms_shapes) >= 12 * n_val and len(ms_shapes) > 12 * len(ss_shapes) / 2
    assert len({s[2:] for s in ms_shapes}) > len({s[2:] for s in ss_shapes})

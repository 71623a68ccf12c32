"""End to end on the generated demo COCO: the demo Mask R-CNN + PVT config trains (one short epoch) with
tools/train.py, evaluates with tools/test.py, and reports bbox and segm AP (mmdet CocoMetric, pycocotools)
in ``<work_dir>/results/ss.json``; the detector checkpoint then serves as backbone weights for MixsegPVT."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet')

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs' / 'demo' / 'mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py'
AP_KEYS = [f'coco/{kind}_mAP{s}' for kind in ('bbox', 'segm') for s in ('', '_50', '_75', '_s', '_m', '_l')]


def _run(tool, *args, timeout=300):
    # one OpenMP thread: on a shared 2-core machine two threads per op wait on each other (≈ 5x slower)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', PYTHONPATH=str(ROOT),
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / tool), *map(str, args)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    return r.stdout + r.stderr


@pytest.mark.slow
def test_demo_trains_evaluates_and_reports_box_and_mask_ap(demo_data, tmp_path):
    root = f'{demo_data / "coco"}/'
    ann = root + 'annotations/instances_val2017.json'
    data = [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]
    data += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    work = tmp_path / 'work'
    log = _run('train.py', CONFIG, '--work-dir', work, '--cfg-options', *data,
               'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'randomness.seed=0')
    assert 'Epoch(train) [1][6/6]' in log  # 12 tiny training images, batch 2
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log  # validation after the epoch
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()

    log = _run('test.py', CONFIG, ckpt, '--work-dir', work, '--cfg-options', *data[2:])
    record = json.loads((work / 'results' / 'ss.json').read_text())
    metrics = record['metrics']
    assert set(AP_KEYS) <= set(metrics), sorted(metrics)
    for k in AP_KEYS:  # COCO AP in [0, 1]; -1 where an area range has no ground truth
        assert isinstance(metrics[k], float) and (0 <= metrics[k] <= 1 or metrics[k] == -1), (k, metrics[k])
    assert math.isfinite(metrics['coco/bbox_mAP']) and metrics['coco/bbox_mAP'] >= 0
    assert metrics['coco/segm_mAP'] >= 0
    assert record['tag'] == 'ss' and record['tta'] is False

    # the detector checkpoint (mmengine, 'backbone.' prefix, original PVT layout) loads as backbone weights
    from mixseg.backbones.pvt import MixsegPVT
    sd = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert 'backbone.patch_embed1.proj.weight' in sd and 'backbone.block4.0.attn.kv.weight' in sd
    backbone = MixsegPVT(arch='nano', checkpoint=str(ckpt), pretrain_img_size=128)  # as the demo config
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, sd[f'backbone.{k}']), k

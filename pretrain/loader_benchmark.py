"""Images per second of the stage-1 data loader alone (decode → RandAugment → crop → batch), no model.

Used by ``tools/benchmark_loader.py``. The loader is the config's train dataset and transform in a plain torch
``DataLoader`` (random order, the config's batch size unless given, pinned memory), so the number is what
the workers deliver; ``uint8=True`` measures the GPU-run form (``TimmTransform(uint8=True)``: no float
conversion, normalisation or erasing in the workers). :func:`write_fake_imagenet` writes ImageNet-sized JPEGs
(default 500×375, the most common ImageNet size) for a decode cost close to the real data's.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch


def write_fake_imagenet(root, num_images: int = 256, size=(500, 375), num_classes: int = 8, seed: int = 0,
                        quality: int = 90) -> Path:
    """``<root>/train/<class>/*.JPEG``: smooth random colour fields with edges and a little noise (JPEG files
    of roughly ImageNet's size per pixel, ~100 kB at 500×375)."""
    from PIL import Image
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(num_images):
        folder = root / 'train' / f'c{i % num_classes:03d}'
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (h // 25 + 2, w // 25 + 2, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        arr = np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, (h, w, 3))
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(folder / f'{i:06d}.JPEG', quality=quality)
    return root


def build_train_dataset(cfg, data_root: Optional[str] = None, uint8: bool = False):
    """The config's train dataset (``ImageNetFolder`` with its ``TimmTransform``), optionally re-rooted and in
    the uint8 (GPU-run) form."""
    import copy

    import pretrain.data  # noqa: F401  (registers the dataset and transform)
    from pretrain.registry import DATASETS
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if data_root:
        ds_cfg['data_root'] = data_root
    if uint8:
        for t in ds_cfg['pipeline']:
            if t.get('type') == 'TimmTransform':
                t['uint8'] = True
    return DATASETS.build(ds_cfg)


def measure(dataset, batch_size: int, workers: int, batches: int = 20, warmup: int = 3, seed: int = 0) -> dict:
    """Wall-clock images/s of ``batches`` batches after ``warmup`` (worker start-up excluded)."""
    from torch.utils.data import DataLoader, RandomSampler
    g = torch.Generator().manual_seed(seed)
    n = (warmup + batches) * batch_size
    sampler = RandomSampler(dataset, replacement=len(dataset) < n, num_samples=n, generator=g)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                        pin_memory=torch.cuda.is_available(), persistent_workers=False,
                        prefetch_factor=4 if workers else None)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0, c0 = time.perf_counter(), time.process_time()
    nbytes, dtype = 0, None
    for _ in range(batches):
        batch = next(it)
        nbytes = batch['inputs'].numel() * batch['inputs'].element_size()
        dtype = str(batch['inputs'].dtype).replace('torch.', '')
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    del it
    n = batches * batch_size
    ips = n / dt
    # workers=0: the loading runs in this process, so its CPU time per image is the cost on one core, whatever
    # else the machine runs (wall-clock rates on a busy machine say little)
    return dict(workers=workers, batch=batch_size, images_per_s=ips, per_worker=ips / max(workers, 1),
                images_per_cpu_s=n / cpu if workers == 0 and cpu > 0 else None,
                batch_mb=nbytes / 2**20, dtype=dtype, seconds=dt)

"""Top-k accuracy for stage-1 evaluation (mmengine ``BaseMetric``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from mmengine.evaluator import BaseMetric

from .registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy in percent, reported as ``accuracy/top1``, ``accuracy/top5``.

    Consumes the per-sample predictions of :meth:`pretrain.classifier.MixClassifier.predict`:
    ``dict(gt_label=int, topk=[k best classes, best first])``. One result is kept per sample (a pair of
    booleans), so mmengine's distributed collection can drop the padding of the last batch exactly.
    With fewer classes than k, top-k counts every sample as correct (the k best cover all classes).
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or min(self.topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if sample.get('gt_label') is None:
                raise ValueError('Accuracy needs ground-truth labels (gt_label) in the predictions')
            gt = int(sample['gt_label'])
            ranked = [int(c) for c in sample['topk']]
            num_classes = sample.get('num_classes')
            self.results.append(tuple(gt in ranked[:k] or (num_classes is not None and num_classes <= k)
                                      for k in self.topk))

    def compute_metrics(self, results: list) -> dict:
        n = len(results)
        if n == 0:
            raise ValueError('Accuracy: no predictions were collected (empty validation set?)')
        return {f'top{k}': 100.0 * sum(r[i] for r in results) / n for i, k in enumerate(self.topk)}

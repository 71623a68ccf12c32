"""Top-k accuracy for stage-1 evaluation (mmengine ``BaseMetric``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from mmengine.evaluator import BaseMetric

from .registry import METRICS

#: the value of a top-k with no more classes than k (every prediction would count as right)
NOT_APPLICABLE = 'n/a'


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy in percent, reported as ``accuracy/top1``, ``accuracy/top5``.

    Consumes the per-sample predictions of :meth:`pretrain.classifier.MixClassifier.predict`:
    ``dict(gt_label=int, topk=[k best classes, best first])``. One result is kept per sample (a pair of
    booleans), so mmengine's distributed collection can drop the padding of the last batch exactly.
    With no more classes than k, the k best cover every class and top-k says nothing: it is reported as
    ``'n/a'`` (not a number; mmengine logs it as text, and ``results/*.json`` and the tables show n/a).
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
            # None: top-k is undefined for this model (n/a), kept per sample so the rank merge stays exact
            self.results.append(tuple(None if num_classes is not None and num_classes <= k else gt in ranked[:k]
                                      for k in self.topk))

    def compute_metrics(self, results: list) -> dict:
        n = len(results)
        if n == 0:
            raise ValueError('Accuracy: no predictions were collected (empty validation set?)')
        return {f'top{k}': NOT_APPLICABLE if any(r[i] is None for r in results)
                else 100.0 * sum(r[i] for r in results) / n for i, k in enumerate(self.topk)}

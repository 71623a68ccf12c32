"""The metrics of the robustness benchmarks, written once, vectorised (torch, no per-sample loop).

Written by hand because none of the installed libraries has them: scikit-learn (``roc_auc_score``,
``average_precision_score``) is not a dependency of this project, and timm/torch have no ranking metrics. The
definitions follow scikit-learn's, so numbers compare with the papers' (Hendrycks et al.'s ImageNet-O evaluation
uses scikit-learn's ``average_precision_score``, ImageNet-O images as the positive class):

* :func:`auroc` — the probability that a random positive scores above a random negative, ties counting one half
  (Mann–Whitney U / (n_pos · n_neg)); equals the area under the ROC curve;
* :func:`aupr` — average precision ``Σ_k (R_k − R_{k−1}) · P_k`` over the distinct score thresholds, highest
  first (a step-wise area under the precision–recall curve, no interpolation);
* :func:`msp_anomaly_score` — the negative maximum softmax probability, the anomaly score of the ImageNet-O
  evaluation (Hendrycks et al. 2021, "Natural adversarial examples": the maximum-softmax-probability baseline),
  the OOD-detection benchmark of TransMix's robustness study;
* :func:`restricted_top1` — top-1 with the logits restricted to a subset of the classes (ImageNet-A/-R: the
  dataset's 200 classes).
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ['auroc', 'aupr', 'msp_anomaly_score', 'restricted_top1']


def _check(scores, positive) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    p = torch.as_tensor(positive).flatten().bool()
    if s.numel() != p.numel():
        raise ValueError(f'{s.numel()} scores but {p.numel()} labels')
    if not torch.isfinite(s).all():
        raise ValueError('non-finite anomaly scores (NaN/inf logits?)')
    n_pos = int(p.sum())
    if n_pos == 0 or n_pos == p.numel():
        raise ValueError(f'need both positives and negatives (got {n_pos} positives of {p.numel()})')
    return s, p


def auroc(scores, positive) -> float:
    """Area under the ROC curve of ``scores`` (higher = more positive) for the bool labels ``positive``."""
    s, p = _check(scores, positive)
    order = torch.argsort(s)
    sorted_s = s[order]
    # average rank (1-based) of each group of tied scores
    _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg_rank = (ends - (counts.double() - 1) / 2)[inverse]
    ranks = torch.empty_like(s)
    ranks[order] = avg_rank
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    u = ranks[p].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def aupr(scores, positive) -> float:
    """Average precision of ``scores`` (higher = more positive) for the bool labels ``positive``."""
    s, p = _check(scores, positive)
    order = torch.argsort(s, descending=True, stable=True)
    s, p = s[order], p[order].double()
    tps = torch.cumsum(p, 0)
    # one threshold per distinct score: the last position of each tie group
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]
    tps, rank = tps[last], torch.nonzero(last).flatten().double() + 1
    precision = tps / rank
    recall = tps / tps[-1]
    gain = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gain * precision).sum())


def msp_anomaly_score(logits: torch.Tensor) -> torch.Tensor:
    """Negative maximum softmax probability per row of ``logits`` (N×C): higher = more anomalous."""
    return -logits.float().softmax(-1).amax(-1)


def restricted_top1(logits: torch.Tensor, targets: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Bool per sample: is ``targets`` (positions in ``classes``) the argmax of ``logits[:, classes]``?"""
    idx = torch.as_tensor(list(classes), dtype=torch.long, device=logits.device)
    return logits.index_select(-1, idx).argmax(-1) == targets.to(logits.device)

"""Candidate verification: real shingle similarity, and numbers that agree."""

from __future__ import annotations

import numpy as np

from corpus.dedup.params import DedupConfig


def _overlap(a: np.ndarray, b: np.ndarray) -> int:
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 0
    pos = np.searchsorted(b, a)
    pos[pos == len(b)] = 0
    return int(np.count_nonzero(b[pos] == a))


def similarity(a: np.ndarray, b: np.ndarray, metric: str = "jaccard") -> float:
    """Jaccard ``|A∩B|/|A∪B|`` or containment ``|A∩B|/min(|A|,|B|)`` of two sorted unique arrays."""
    if not len(a) or not len(b):
        return 0.0
    inter = _overlap(a, b)
    if metric == "containment":
        return inter / min(len(a), len(b))
    return inter / (len(a) + len(b) - inter)


def numbers_agree(a: np.ndarray, b: np.ndarray, threshold: float) -> bool:
    """True when the number sets differ by at most one number or their Jaccard is >= ``threshold``.

    ``x+5=12`` and ``x+5=13`` share almost every shingle of a short problem but are different problems.
    """
    if threshold <= 0:
        return True
    inter = _overlap(a, b)
    union = len(a) + len(b) - inter
    return union - inter <= 1 or inter / union >= threshold


def is_duplicate(sh_a: np.ndarray, sh_b: np.ndarray, num_a: np.ndarray, num_b: np.ndarray,
                 cfg: DedupConfig) -> tuple[bool, float]:
    """Verify one candidate pair; returns ``(duplicate, similarity)``."""
    sim = similarity(sh_a, sh_b, cfg.metric)
    return (sim >= cfg.verify_threshold and numbers_agree(num_a, num_b, cfg.number_threshold)), sim

"""Candidate verification: real shingle similarity, and math symbols (numbers, variables, TeX) that agree."""

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


def symbols_agree(a: np.ndarray, b: np.ndarray, tolerance: float, size: float = 0.0) -> bool:
    """True when the math-symbol multisets differ by at most ``max(1, tolerance * max(symbols, size / 10))``.

    ``x+5=12`` vs ``x+5=13`` or "find angle A" vs "find angle B" share almost every shingle of a short
    problem but are different problems, while a lightly edited long copy loses a few of its many symbols.
    ``size`` (mean shingle count) lets long prose, whose few numbers are incidental, differ a little more.
    A negative ``tolerance`` disables the check.
    """
    if tolerance < 0:
        return True
    inter = _overlap(a, b)
    allowed = max(1.0, tolerance * max((len(a) + len(b)) / 2, size / 10))
    return len(a) + len(b) - 2 * inter <= allowed


def is_duplicate(sh_a: np.ndarray, sh_b: np.ndarray, sym_a: np.ndarray, sym_b: np.ndarray,
                 cfg: DedupConfig) -> tuple[bool, float]:
    """Verify one candidate pair; returns ``(duplicate, similarity)``."""
    sim = similarity(sh_a, sh_b, cfg.metric)
    size = (len(sh_a) + len(sh_b)) / 2
    return (sim >= cfg.verify_threshold and symbols_agree(sym_a, sym_b, cfg.symbol_tolerance, size)), sim

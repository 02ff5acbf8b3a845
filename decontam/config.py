"""Decontamination thresholds (the Qwen2.5-Math rule, all configurable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DecontamConfig:
    """A document is contaminated by an eval item part when

    * it shares a normalized ``ngram``-gram with the part (candidate), and
    * in the document window aligned with that hit (the part's span, widened by ``window_slack`` x its
      length on each side), the longest common token subsequence with the part satisfies
      ``|LCS| >= min_lcs`` and ``|LCS| >= lcs_ratio * min(len(window), len(part))``.

    Parts shorter than ``ngram`` tokens use the *short rule*: a question part with at least
    ``min_short_tokens`` tokens matches only as an exact contiguous occurrence of its whole normalized token
    sequence; shorter question parts, and short answer parts (final answers such as ``27`` or
    ``\\cos^2 x - \\sin^2 x``, which any textbook contains), are not checked unless
    ``short_exact_answers`` is set. Every unchecked part is counted as skipped in the report.
    """

    ngram: int = 13
    lcs_ratio: float = 0.6
    min_lcs: int = 13
    window_slack: float = 0.1
    min_short_tokens: int = 8
    short_exact_answers: bool = False
    max_candidates: int = 64  # parts LCS-checked per document at most (those with the most n-gram hits)

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.min_short_tokens < 1 or self.min_lcs < 0:
            raise ValueError("ngram and min_short_tokens must be >= 1, min_lcs >= 0")
        if not 0.0 <= self.lcs_ratio <= 1.0:
            raise ValueError(f"lcs_ratio must be in [0, 1], got {self.lcs_ratio}")
        if self.window_slack < 0:
            raise ValueError("window_slack must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

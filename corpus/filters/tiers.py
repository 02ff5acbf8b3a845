"""Quality tiers 0..5 (``quality_tier``), so a mix can take "tier >= 3" like FineMath's 3+/4+ subsets.

The score (0..1) combines two parts:

* **math**: the recall model's ``math_score`` (fastText P(math)) when the document has one; otherwise a
  markup proxy: ``min(1, math_density / 0.15)`` where ``math_density`` is the share of tokens that are TeX
  commands or math operators (numbers, dates and prices do not count; 15 % of the tokens math gets 1);
* **quality**: a second model's P(high quality) when one is given (e.g. a fastText model trained with the
  classify area's ``classifiers`` API on FineMath-style labels), else heuristics: the mean of a length
  factor ``min(1, log10(tokens) / 3)`` (1000+ tokens -> 1) and a prose factor
  ``min(1, prose_units / (0.3 * tokens))`` (explanations, not bare formula dumps).

``score = math_weight * math + (1 - math_weight) * quality``; the tier is the number of ``thresholds``
the score reaches (defaults 0.2 / 0.35 / 0.5 / 0.65 / 0.8 -> tiers 1..5; tier 0 below 0.2).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corpus.filters.textstats import TextStats


class TierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: list[float] = Field(
        default_factory=lambda: [0.2, 0.35, 0.5, 0.65, 0.8],
        description="score cut points for tiers 1..5 (ascending, 5 values)")
    math_weight: float = Field(0.7, ge=0, le=1, description="weight of the math part of the score")

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, v: list[float]) -> list[float]:
        if len(v) != 5 or any(b < a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("must be 5 ascending numbers (cut points of tiers 1..5)")
        return v


def heuristic_quality(st: TextStats) -> float:
    """Length and prose factors, 0..1 (see module docstring)."""
    n = len(st.tokens)
    if not n:
        return 0.0
    length = min(1.0, math.log10(n) / 3)
    prose = min(1.0, st.n_prose_units / (0.3 * n))
    return (length + prose) / 2


def math_proxy(st: TextStats) -> float:
    return min(1.0, st.math_density / 0.15)


def quality_score(st: TextStats, math_score: float | None = None, model_quality: float | None = None,
                  cfg: TierConfig | None = None) -> float:
    cfg = cfg or TierConfig()
    m = float(math_score) if math_score is not None else math_proxy(st)
    q = float(model_quality) if model_quality is not None else heuristic_quality(st)
    return cfg.math_weight * m + (1 - cfg.math_weight) * q


def score_to_tier(score: float, cfg: TierConfig | None = None) -> int:
    cfg = cfg or TierConfig()
    return sum(1 for t in cfg.thresholds if score >= t)


def quality_tier(text: str, math_score: float | None = None, model_quality: float | None = None,
                 cfg: TierConfig | None = None, stats: TextStats | None = None) -> int:
    """Integer tier 0..5 of one document."""
    return score_to_tier(quality_score(stats or TextStats(text), math_score, model_quality, cfg), cfg)

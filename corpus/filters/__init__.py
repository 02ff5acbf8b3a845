"""Math-aware quality filters and quality tiers (pure functions; the pipeline stages are thin shells).

* :mod:`corpus.filters.markup` - where formulas and code are; :func:`strip_markup` leaves the prose.
* :mod:`corpus.filters.textstats` - one lazy pass of statistics per document (:class:`TextStats`).
* :mod:`corpus.filters.heuristics` - length, boilerplate, character/word ratios, repetition; each returns a
  :class:`Verdict` (keep, reason, measured value, threshold); :func:`check_text` runs them all.
* :mod:`corpus.filters.tiers` - integer quality tiers 0..5 from ``math_score`` (or a markup proxy) and
  heuristic (or model) quality.
"""

from corpus.filters.heuristics import HeuristicsConfig, Verdict, check_text, strip_boilerplate_lines
from corpus.filters.textstats import TextStats
from corpus.filters.tiers import TierConfig, quality_tier

__all__ = ["HeuristicsConfig", "TextStats", "TierConfig", "Verdict", "check_text", "quality_tier",
           "strip_boilerplate_lines"]

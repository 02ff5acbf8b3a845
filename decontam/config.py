"""Decontamination settings (the Qwen2.5-Math rule plus the spacing, short-item and reworded tiers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from decontam.normalize import RULES


@dataclass(frozen=True)
class DecontamConfig:
    """A document is contaminated by an eval item part when

    * it shares a normalized ``ngram``-gram with the part (candidate), and
    * in the document window aligned with that hit (the part's span, widened by ``window_slack`` x its
      length on each side), the longest common token subsequence with the part satisfies
      ``|LCS| >= min_lcs`` and ``|LCS| >= lcs_ratio * min(len(window), len(part))``.

    Tokens are :func:`decontam.normalize.decontam_tokens` with the spacing rules in ``normalize``.

    Short items: with ``qa_pairs`` a question under ``ngram`` tokens is also indexed joined with each of its
    answer parts (one item, same n-gram + LCS rule). A question of ``min_short_tokens`` to ``ngram - 1`` tokens
    matches as an exact contiguous occurrence (``short_exact``); one of ``min_line_tokens`` or more matches when
    it is a whole line or paragraph of the document (``short_line``) or is followed by one of its short answers
    within a few tokens (``qa_pair``). Shorter questions, and short answer parts on their own (final answers such
    as ``27``, which any textbook contains), are not checked unless ``short_exact_answers`` is set; every
    unchecked part is counted as skipped in the report.

    Reworded items (``reworded``): a question with at least ``reword_min_numbers`` distinct numbers (digits,
    number words, Chinese numerals) is a candidate where all its numbers occur within ``reword_span`` x its
    length; it is a match when its content words are found there with containment >= ``reword_similarity``
    (``reword_similarity_answer`` when the item's final answer is found there too).
    """

    ngram: int = 13
    lcs_ratio: float = 0.6
    min_lcs: int = 13
    window_slack: float = 0.1
    min_short_tokens: int = 8
    short_exact_answers: bool = False
    max_candidates: int = 64  # parts LCS-checked per document at most (those with the most n-gram hits)
    normalize: tuple[str, ...] = RULES
    qa_pairs: bool = True
    min_line_tokens: int = 4
    reworded: bool = True
    reword_min_numbers: int = 2
    reword_similarity: float = 0.8  # both chosen on the dev split of bench/bench_decontam.py
    reword_similarity_answer: float = 0.8
    reword_span: float = 3.0
    near_miss_ratio: float = 0.3  # n-gram hits rejected by LCS (and reworded candidates) above this are listed

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.min_short_tokens < 1 or self.min_lcs < 0 or self.min_line_tokens < 1:
            raise ValueError("ngram, min_short_tokens and min_line_tokens must be >= 1, min_lcs >= 0")
        for name in ("lcs_ratio", "reword_similarity", "reword_similarity_answer", "near_miss_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.window_slack < 0 or self.reword_span < 1:
            raise ValueError("window_slack must be >= 0 and reword_span >= 1")
        object.__setattr__(self, "normalize", tuple(self.normalize))
        unknown = set(self.normalize) - set(RULES)
        if unknown:
            raise ValueError(f"unknown normalize rule(s) {', '.join(sorted(unknown))} (known: {', '.join(RULES)})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"normalize": list(self.normalize)}

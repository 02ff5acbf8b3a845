"""Dedup parameters: shingle size, permutations, LSH bands x rows, verification thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """``(bands, rows)`` minimizing weighted false positive + negative mass (datasketch's optimizer)."""
    from datasketch.lsh import _optimal_param

    return tuple(_optimal_param(threshold, num_perm, fp_weight, fn_weight))


@dataclass(frozen=True)
class DedupConfig:
    """Everything that decides which documents are duplicates (saved in an index, checked on reuse).

    The verification defaults were chosen on the dev split of ``bench/bench_dedup.py --only sweep`` and are
    reported on its test split (docs/benchmarks.md).

    ``lsh_threshold`` only chooses bands x rows (recall of candidates); ``verify_threshold`` on the real
    similarity, then the token diff (``edit_rate``, ``exact_tokens``, ``symbol_change_rate``,
    ``symbol_exact_tokens``, ``frames``, see :mod:`corpus.dedup.verify`) decide.
    Set ``bands``/``rows`` to bypass the optimizer.
    """

    shingle_size: int = 3
    num_perm: int = 128
    lsh_threshold: float = 0.4
    bands: int | None = None
    rows: int | None = None
    verify_threshold: float = 0.5
    metric: Literal["jaccard", "containment"] = "jaccard"
    edit_rate: float = 0.25  # differing tokens allowed per text token beyond exact_tokens; < 0: no token diff
    exact_tokens: int = 40  # texts this short (tokens outside figures) must match token for token
    symbol_change_rate: float = 0.01  # math symbols replaced by others, per text token beyond symbol_exact_tokens
    symbol_exact_tokens: int = 200  # texts this short may not replace any math symbol
    frames: bool = True  # text only one side has at the very start/end, without math symbols, is not an edit
    max_bucket_pairs: int = 8  # buckets larger than this emit star + chain pairs (linear) instead of all pairs
    seed: int = 42
    fn_weight: float = 0.9  # optimizer weights: favour recall, verification restores precision

    def __post_init__(self) -> None:
        if self.shingle_size < 1:
            raise ValueError("shingle_size must be >= 1")
        if not 0 < self.lsh_threshold < 1 or not 0 < self.verify_threshold <= 1:
            raise ValueError("lsh_threshold must be in (0, 1) and verify_threshold in (0, 1]")
        if self.exact_tokens < 0 or self.symbol_exact_tokens < 0:
            raise ValueError("exact_tokens and symbol_exact_tokens must be >= 0")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        b, r = self.band_shape
        if b * r > self.num_perm:
            raise ValueError(f"bands x rows = {b * r} exceeds num_perm = {self.num_perm}")

    @property
    def band_shape(self) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return optimal_bands(self.lsh_threshold, self.num_perm, 1 - self.fn_weight, self.fn_weight)

    def signature_fields(self) -> dict[str, Any]:
        """What must match between a saved index and a new batch."""
        b, r = self.band_shape
        return {"shingle_size": self.shingle_size, "num_perm": self.num_perm, "bands": b, "rows": r,
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bands"], d["rows"] = self.band_shape
        return d

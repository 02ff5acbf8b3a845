"""Which copy survives: a deterministic uint64 priority key (lower is better), tie-broken by id hash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xxhash

FIELDS = ("source", "math_score", "quality_tier", "length")
_WIDTH = {"source": 4, "math_score": 16, "quality_tier": 4, "length": 32}


@dataclass(frozen=True)
class PriorityConfig:
    """``order``: fields compared in turn (better source rank, higher math_score / quality_tier, longer text);
    ``source_rank``: sources from most to least preferred (unlisted or missing sources rank last)."""

    order: tuple[str, ...] = ("source", "math_score", "length")
    source_rank: tuple[str, ...] = ("book", "exam", "web", "code", "synthetic", "other")

    def __post_init__(self) -> None:
        bad = [f for f in self.order if f not in FIELDS]
        if bad:
            raise ValueError(f"unknown priority field(s) {bad} (known: {', '.join(FIELDS)})")
        if len(self.source_rank) > 14:
            raise ValueError("source_rank supports at most 14 sources")


def _field_value(name: str, row: Mapping[str, Any], cfg: PriorityConfig) -> int:
    top = (1 << _WIDTH[name]) - 1
    if name == "source":
        src = row.get("source")
        return cfg.source_rank.index(src) if src in cfg.source_rank else top
    if name == "length":
        return top - min(len(row.get("text") or ""), top)
    value = row.get(name)
    if value is None:
        return top
    if name == "math_score":
        return top - round(min(max(float(value), 0.0), 1.0) * top)
    return top - min(max(int(value), 0), top)  # quality_tier: higher is better


def priority_key(row: Mapping[str, Any], cfg: PriorityConfig) -> int:
    """Fields of ``cfg.order`` packed most-significant first; lower keys win (fits in 56 bits)."""
    key = 0
    for name in cfg.order:
        key = (key << _WIDTH[name]) | _field_value(name, row, cfg)
    return key


def id_hash(doc_id: str) -> int:
    """The final tie-breaker (and cluster id): xxh64 of the document id."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"))

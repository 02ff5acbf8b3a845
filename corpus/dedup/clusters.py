"""Survivor summaries: how many copies a kept document had and which sources/domains they came from.

A duplicate cluster is a quality signal (a page copied across many sites; TxT360 keeps these counts to drive
upsampling), so the survivor carries ``dup_count`` (cluster size, itself included), ``dup_sources`` and
``dup_domains`` in its metadata. Each shard summarizes its own members by survivor; the survivor's shard
merges the parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

MAX_DOMAINS = 32  # domains listed per survivor (the count is exact; the list is the first ones by name)

Summary = dict[int, list[Any]]  # survivor gid -> [members, sorted sources, sorted domains]


def summarize(survivors: np.ndarray, sources: np.ndarray, source_names: Sequence[str],
              domains: np.ndarray, domain_names: Sequence[str]) -> Summary:
    """Per survivor: members among these nodes, their sources and domains (sorted). Node ``i`` has survivor
    ``survivors[i]`` and origin codes ``sources[i]`` / ``domains[i]``: positions in the sorted name lists, -1
    for none (:meth:`corpus.dedup.store.Shard.origin_codes`)."""
    gids, node_of, counts = np.unique(survivors, return_inverse=True, return_counts=True)

    def names_per_survivor(codes: np.ndarray, names: Sequence[str], cap: int | None) -> list[list[str]]:
        ok = codes >= 0
        base = len(names) + 1
        pairs = np.unique(node_of[ok].astype(np.int64) * base + codes[ok])  # distinct (survivor, name), sorted
        owner, code = np.divmod(pairs, base)
        bounds = np.searchsorted(owner, np.arange(len(gids) + 1)).tolist()
        code = code.tolist()
        return [[names[c] for c in code[bounds[i] : bounds[i + 1]][:cap]] for i in range(len(gids))]

    src, dom = names_per_survivor(sources, source_names, None), names_per_survivor(domains, domain_names, MAX_DOMAINS)
    return {g: [n, s, d] for g, n, s, d in zip(gids.tolist(), counts.tolist(), src, dom, strict=True)}


def merge(parts: Iterable[Summary]) -> Summary:
    """Summaries of the same survivors from several shards, added up."""
    out: dict[int, tuple[int, set[str], set[str]]] = {}
    for part in parts:
        for gid, (n, sources, domains) in part.items():
            m, s, d = out.get(int(gid)) or (0, set(), set())
            out[int(gid)] = (m + n, s | set(sources), d | set(domains))
    return {g: [n, sorted(s), sorted(d)[:MAX_DOMAINS]] for g, (n, s, d) in out.items()}


def survivor_metadata(summary: list[Any] | None, source: str | None, domain: str | None) -> dict[str, Any]:
    """``dup_count``, ``dup_sources``, ``dup_domains`` for a kept document (a singleton without a summary)."""
    if summary is None:
        return {"dup_count": 1, "dup_sources": [source] if source else [], "dup_domains": [domain] if domain else []}
    n, sources, domains = summary
    return {"dup_count": int(n), "dup_sources": list(sources), "dup_domains": list(domains)}

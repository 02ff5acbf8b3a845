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


def summarize(survivors: np.ndarray, origins: Sequence[Sequence[str | None]]) -> Summary:
    """Per survivor: members among these nodes, their sources and domains. ``origins[i]`` is
    ``(source, domain)`` of the node whose survivor is ``survivors[i]``."""
    out: dict[int, tuple[int, set[str], set[str]]] = {}
    for gid, (source, domain) in zip(survivors.tolist(), origins, strict=True):
        n, sources, domains = out.get(gid) or (0, set(), set())
        if source:
            sources.add(source)
        if domain:
            domains.add(domain)
        out[gid] = (n + 1, sources, domains)
    return {g: [n, sorted(s), sorted(d)[:MAX_DOMAINS]] for g, (n, s, d) in out.items()}


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

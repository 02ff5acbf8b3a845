"""Candidate pairs from LSH buckets: documents that share a band key."""

from __future__ import annotations

import numpy as np

from corpus.dedup.store import split_gid

PAIR_DTYPE = np.dtype([("a", "<u8"), ("b", "<u8")])


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Sorted, duplicate-free pairs (a two-key lexsort: far faster than ``np.unique`` on the structured dtype)."""
    if len(pairs) < 2:
        return pairs
    pairs = pairs[np.lexsort((pairs["b"], pairs["a"]))]
    new = np.r_[True, (pairs["a"][1:] != pairs["a"][:-1]) | (pairs["b"][1:] != pairs["b"][:-1])]
    return pairs[new]


def pair_owner(pairs: np.ndarray, shards: int) -> np.ndarray:
    """The shard whose task verifies each pair: one side's or the other's by a hash bit, so cross-shard pairs
    spread evenly instead of all landing on the lower shard; a side in a saved index (rank >= shards) never owns."""
    ra, rb = split_gid(pairs["a"])[0], split_gid(pairs["b"])[0]
    flip = ((pairs["a"] ^ pairs["b"]) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(63)
    return np.where((flip == 1) & (rb < shards), rb, ra)


def bucket_pairs(keys: np.ndarray, gids: np.ndarray, max_bucket_pairs: int = 8,
                 skip: np.ndarray | None = None) -> np.ndarray:
    """Candidate pairs ``(a, b)`` with ``a < b`` among documents sharing a key.

    Buckets of up to ``max_bucket_pairs`` members give all pairs; larger ones (boilerplate, templates) give a
    star from their smallest member plus a chain, which keeps the work linear. ``skip`` marks members
    (e.g. from a saved index) whose mutual pairs are not needed.
    """
    if len(keys) < 2:
        return np.empty(0, dtype=PAIR_DTYPE)
    order = np.lexsort((gids, keys))
    keys, gids = keys[order], gids[order]
    skip = skip[order] if skip is not None else np.zeros(len(keys), dtype=bool)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    group = np.repeat(np.arange(len(starts)), sizes)
    size_of = sizes[group]
    out_a, out_b = [], []
    small = size_of <= max_bucket_pairs
    for d in range(1, min(int(sizes.max()), max_bucket_pairs)):
        i = np.flatnonzero((group[:-d] == group[d:]) & (small[:-d] | (d == 1)))
        out_a.append(gids[i])
        out_b.append(gids[i + d])
    big = np.flatnonzero(~small & (np.arange(len(keys)) != starts[group]))
    if len(big):
        out_a.append(gids[starts[group[big]]])
        out_b.append(gids[big])
    a = np.concatenate(out_a) if out_a else np.empty(0, np.uint64)
    b = np.concatenate(out_b) if out_b else np.empty(0, np.uint64)
    if skip.any():
        skip_set = np.unique(gids[skip])
        both = np.isin(a, skip_set) & np.isin(b, skip_set)
        a, b = a[~both], b[~both]
    pairs = np.empty(len(a), dtype=PAIR_DTYPE)
    pairs["a"], pairs["b"] = np.minimum(a, b), np.maximum(a, b)
    return unique_pairs(pairs)

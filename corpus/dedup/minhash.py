"""Per-document features: exact key, math-safe shingles, MinHash signatures and LSH band keys (numpy).

Shingles are hashed n-grams of :func:`corpus.normalize.math_tokens` (numbers, operators and TeX commands are
tokens, case and whitespace are folded); the token sequence itself is kept for verification
(:mod:`.tokens`, :mod:`.verify`). A document shorter than ``n`` tokens gets one shingle for all its
tokens, so short problems are still compared. Signatures use multiply-shift hashing (``a*x + b`` mod 2^64,
top 32 bits) vectorized over a batch of documents; band keys mix each band's rows into one uint64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash

from corpus.dedup.params import DedupConfig
from corpus.dedup.tokens import classified_tokens, pack_tokens

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (vectorized, wraps mod 2^64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=32)
def _odd_constants(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


@dataclass(frozen=True)
class DocFeatures:
    """What dedup keeps of one document: exact key, sorted unique shingle hashes and the token sequence."""

    exact: tuple[int, int]  # xxh3-128 of the normalized text, as two uint64
    shingles: np.ndarray  # uint32, sorted, unique
    tokens: np.ndarray  # uint32 per token, in order: hash | symbol / figure bits (see corpus.dedup.tokens)


def _hash_tokens(tokens: list[str]) -> np.ndarray:
    uniq: dict[str, int] = {}
    codes = [uniq.setdefault(t, len(uniq)) for t in tokens]
    table = np.fromiter((xxhash.xxh3_64_intdigest(t.encode()) for t in uniq), dtype=np.uint64, count=len(uniq))
    return table[np.asarray(codes, dtype=np.int64)]


def doc_features(text: str, n: int) -> DocFeatures:
    """Exact key, shingles (hashed token n-grams) and the classified token sequence of ``text``."""
    tokens, flags = classified_tokens(text)
    digest = xxhash.xxh3_128_digest(" ".join(tokens).encode("utf-8"))
    exact = (int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little"))
    if not tokens:
        empty = np.empty(0, dtype=np.uint32)
        return DocFeatures(exact, empty, empty)
    th = _hash_tokens(tokens)
    weights = _odd_constants(n, 7)
    m = max(1, len(tokens) - n + 1)
    acc = np.zeros(m, dtype=np.uint64)
    for k in range(min(n, len(tokens))):
        acc += th[k : k + m] * weights[k]
    shingles = np.unique((_mix64(acc) >> np.uint64(32)).astype(np.uint32))
    return DocFeatures(exact, shingles, pack_tokens(tokens, flags, th))


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return a, rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)


def signatures(shingle_sets: list[np.ndarray], cfg: DedupConfig, chunk: int = 8192) -> np.ndarray:
    """MinHash signatures, shape ``(len(shingle_sets), num_perm)`` uint32; empty sets get all-ones rows."""
    n_docs = len(shingle_sets)
    out = np.full((n_docs, cfg.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = _permutations(cfg.num_perm, cfg.seed)
    nonempty = [i for i, s in enumerate(shingle_sets) if len(s)]
    if not nonempty:
        return out
    i = 0
    while i < len(nonempty):  # batches of documents holding about `chunk` shingles
        j, total = i, 0
        while j < len(nonempty) and (total == 0 or total + len(shingle_sets[nonempty[j]]) <= chunk):
            total += len(shingle_sets[nonempty[j]])
            j += 1
        docs = nonempty[i:j]
        sets = [shingle_sets[d] for d in docs]
        x = _mix64(np.concatenate(sets).astype(np.uint64))
        starts = np.cumsum([0] + [len(s) for s in sets[:-1]])
        h = ((x[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).astype(np.uint32)
        out[docs] = np.minimum.reduceat(h, starts, axis=0)
        i = j
    return out


def band_keys(sigs: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """One uint64 LSH key per (document, band): shape ``(n_docs, bands)``."""
    bands, rows = cfg.band_shape
    weights = _odd_constants(rows, cfg.seed + 1)
    keys = np.empty((sigs.shape[0], bands), dtype=np.uint64)
    for band in range(bands):
        part = sigs[:, band * rows : (band + 1) * rows].astype(np.uint64)
        keys[:, band] = _mix64((part * weights[None, :]).sum(axis=1, dtype=np.uint64) + np.uint64(band))
    return keys

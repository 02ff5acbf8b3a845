"""Per-document features: exact key, math-safe shingles, MinHash signatures and LSH band keys (numpy).

Shingles are hashed n-grams of :func:`corpus.normalize.math_tokens` (numbers, operators and TeX commands are
tokens, case and whitespace are folded); the token sequence itself is kept for verification
(:mod:`.tokens`, :mod:`.verify`). A document shorter than ``n`` tokens gets one shingle for all its
tokens, so short problems are still compared. Signatures use multiply-shift hashing (``a*x + b`` mod 2^64,
top 32 bits) vectorized over all documents of a batch at once; band keys mix each band's rows into one uint64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash

from corpus.dedup.params import DedupConfig
from corpus.dedup.tokens import HASH_MASK, Vocab, token_segments

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


_VOCAB = Vocab()
_LOW32 = np.uint64(0xFFFFFFFF)


def doc_features(text: str, n: int) -> DocFeatures:
    """Exact key, shingles (hashed token n-grams) and the classified token sequence of ``text``."""
    return batch_features([text], n)[0]


def batch_features(texts: list[str], n: int) -> list[DocFeatures]:
    """:func:`doc_features` of each text: tokenized one by one, then hashed, shingled and packed with numpy
    over the batch's tokens at once (the shingle windows stop at each document's end)."""
    if len(_VOCAB) >= _VOCAB.limit:
        _VOCAB.reset()
    exact, all_tokens, contexts, seg_counts, counts = [], [], [], [], []
    for text in texts:
        tokens, ctx, seg = token_segments(text)
        digest = xxhash.xxh3_128_digest(" ".join(tokens).encode("utf-8"))
        exact.append((int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")))
        all_tokens += tokens
        contexts += ctx
        seg_counts += seg
        counts.append(len(tokens))
    total = len(all_tokens)
    ids = np.fromiter(map(_VOCAB.__getitem__, all_tokens), dtype=np.int64, count=total)
    _VOCAB.fill()
    th = _VOCAB.hashes[ids]
    flags = _VOCAB.flags[ids, np.repeat(np.asarray(contexts, dtype=np.int64), seg_counts)]
    packed = (th & np.uint64(int(HASH_MASK))).astype(np.uint32) | flags
    cnt = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(cnt)
    starts = ends - cnt
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), cnt)
    rel = np.arange(total, dtype=np.int64) - starts[doc]  # position within the document
    left = cnt[doc] - rel  # tokens from here to the document's end
    padded = np.concatenate([th, np.zeros(n, dtype=np.uint64)])
    acc = np.zeros(total, dtype=np.uint64)
    for k, w in enumerate(_odd_constants(n, 7)):  # a document shorter than n: one shingle of all its tokens
        acc += np.where(left > k, padded[k : k + total], np.uint64(0)) * w
    start = (left >= n) | (rel == 0)  # full windows, and the first position of every document
    keys = (doc[start].astype(np.uint64) << np.uint64(32)) | (_mix64(acc[start]) >> np.uint64(32))
    keys.sort()  # by (document, shingle); then unique (np.unique's hash path is ~5x slower here)
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    shingles = (keys & _LOW32).astype(np.uint32)
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(len(texts) + 1, dtype=np.uint64))
    return [DocFeatures(exact[i], shingles[bounds[i] : bounds[i + 1]], packed[starts[i] : ends[i]])
            for i in range(len(texts))]


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return a, rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)


def signatures(shingle_sets: list[np.ndarray], cfg: DedupConfig, chunk: int = 1024) -> np.ndarray:
    """MinHash signatures, shape ``(len(shingle_sets), num_perm)`` uint32; empty sets get all-ones rows.

    Row ``k`` is ``min over shingles x of (a_k * mix(x) + b_k mod 2^64) >> 32``. Taking the top 32 bits is
    monotone, so the minimum is taken on the 64-bit values and only the ``(docs, num_perm)`` result is shifted:
    one multiply, one add and one reduction per (shingle, permutation), in place over blocks of about ``chunk``
    shingles (cache-sized), for all documents at once.
    """
    n_docs = len(shingle_sets)
    out = np.full((n_docs, cfg.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = _permutations(cfg.num_perm, cfg.seed)
    lengths = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=n_docs)
    docs = np.flatnonzero(lengths)
    if not len(docs):
        return out
    x = _mix64(np.concatenate([shingle_sets[d] for d in docs]).astype(np.uint64))
    ends = np.cumsum(lengths[docs])
    starts = ends - lengths[docs]
    buf = np.empty((chunk, cfg.num_perm), dtype=np.uint64)
    i = 0
    while i < len(docs):  # documents i..j-1: about `chunk` shingles (at least one document)
        j = max(i + 1, int(np.searchsorted(ends, starts[i] + chunk, side="right")))
        lo, hi = starts[i], ends[j - 1]
        h = buf[: hi - lo] if hi - lo <= chunk else np.empty((hi - lo, cfg.num_perm), dtype=np.uint64)
        np.multiply(x[lo:hi, None], a[None, :], out=h)
        h += b
        out[docs[i:j]] = (np.minimum.reduceat(h, starts[i:j] - lo, axis=0) >> np.uint64(32)).astype(np.uint32)
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

"""The n-gram index over eval item parts: normalized tokens as ids, n-gram hashes sorted for lookup.

Tokens come from :func:`decontam.normalize.decontam_tokens` (the shared dedup tokenizer after the decontam-only
spacing rules). Besides the item parts, short questions are joined with each of their answers (``qa_pairs``),
short questions go to a table of their first tokens (exact / whole-line / followed-by-answer rules), and the
reworded tier keeps a numeric-fingerprint index (:mod:`decontam.reworded`). Each distinct
eval token gets an id and a random 64-bit value; an n-gram's key is a polynomial hash of its token values
(computed for a whole document at once with numpy). Every hit is verified token by token, so hash
collisions never produce a match.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from corpus.io import atomic_open, open_file
from decontam.config import DecontamConfig
from decontam.evalsets import ItemPart, LoadedSet
from decontam.normalize import decontam_tokens
from decontam.reworded import RewordIndex, final_answer

_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial hash (mod 2**64)
RULE_NGRAM = "ngram_lcs"
RULE_SHORT = "short_exact"
RULE_LINE = "short_line"
RULE_PAIR = "qa_pair"
RULE_SKIPPED = "skipped_short"
RULE_AUX = "unindexed"  # kept for the reworded tier or as a short answer of a pair (in no token table)


@dataclass(frozen=True)
class PartInfo:
    evalset: str
    item_id: str
    part: str
    n_tokens: int
    rule: str


def rolling_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n-gram of a uint64 token-value array (empty when shorter than n)."""
    m = len(values) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = values[:m].copy()
    for k in range(1, n):
        h *= _P
        h += values[k : k + m]
    return h


_FILTER_BITS_PER_KEY = 16  # bit filter size (power of two): ~1 false hit per 16 lookups at most


@dataclass
class _Table:
    """Sorted unique keys with their postings (part index, position in the part), and a bit filter in front
    of the binary search (most document n-grams are rejected by one cache-friendly bit test)."""

    keys: np.ndarray
    start: np.ndarray
    part: np.ndarray
    pos: np.ndarray
    bits: np.ndarray | None = None
    shift: int = 64

    @classmethod
    def build(cls, keys: np.ndarray, part: np.ndarray, pos: np.ndarray) -> _Table:
        order = np.argsort(keys, kind="stable")
        keys, part, pos = keys[order], part[order], pos[order]
        uniq, first = np.unique(keys, return_index=True)
        start = np.append(first, len(keys)).astype(np.int64)
        log2 = int(min(32, max(13, np.ceil(np.log2(max(1, len(uniq)) * _FILTER_BITS_PER_KEY)))))
        slots = uniq >> np.uint64(64 - log2)
        bits = np.zeros(1 << (log2 - 3), dtype=np.uint8)
        np.bitwise_or.at(bits, (slots >> np.uint64(3)).astype(np.int64),
                         np.left_shift(1, (slots & np.uint64(7)).astype(np.uint8)).astype(np.uint8))
        return cls(uniq, start, part.astype(np.int32), pos.astype(np.int32), bits, 64 - log2)

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``hashes`` that hit, their key indices)."""
        if not len(self.keys) or not len(hashes):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        cand = np.arange(len(hashes))
        if self.bits is not None:
            slots = hashes >> np.uint64(self.shift)
            byte = self.bits[(slots >> np.uint64(3)).astype(np.int64)]
            cand = np.flatnonzero((byte >> (slots & np.uint64(7)).astype(np.uint8)) & 1)
            if not len(cand):
                return cand, cand
        sub = hashes[cand]
        idx = np.searchsorted(self.keys, sub)
        idx[idx == len(self.keys)] = 0
        ok = np.flatnonzero(self.keys[idx] == sub)
        return cand[ok], idx[ok]

    def nbytes(self) -> int:
        arrays = (self.keys, self.start, self.part, self.pos) + ((self.bits,) if self.bits is not None else ())
        return sum(a.nbytes for a in arrays)


@dataclass
class NGramIndex:
    config: DecontamConfig
    vocab: dict[str, int]
    values: np.ndarray  # uint64 value per token id; id 0 = not an eval token
    parts: list[PartInfo]
    offsets: np.ndarray  # part i's tokens are tokens[offsets[i]:offsets[i+1]]
    tokens: np.ndarray
    ngrams: _Table
    short: _Table
    sets: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # each part's text as in the eval file (for the report)
    pair_answers: dict[int, list[int]] = field(default_factory=dict)  # short question -> its short answer parts
    reworded: RewordIndex | None = None
    words: dict[str, int] = field(default_factory=dict)  # Latin eval words, counted (splits spaced-out runs)

    # ---- building ----------------------------------------------------------------------------------------

    @classmethod
    def build(cls, sets: Iterable[LoadedSet], config: DecontamConfig | None = None) -> NGramIndex:
        config = config or DecontamConfig()
        n = config.ngram
        n_key = short_key_len(config)
        vocab: dict[str, int] = {}
        parts: list[PartInfo] = []
        texts: list[str] = []
        token_chunks: list[np.ndarray] = []
        pair_answers: dict[int, list[int]] = {}
        questions: list[tuple[int, ItemPart, str | None]] = []
        described: list[dict[str, Any]] = []

        def add(p: ItemPart, name: str, text: str, ids: np.ndarray, rule: str) -> int:
            parts.append(PartInfo(p.evalset, p.item_id, name, len(ids), rule))
            texts.append(text)
            token_chunks.append(ids)
            return len(parts) - 1

        for loaded in sets:
            counts = {RULE_NGRAM: 0, RULE_SHORT: 0, RULE_SKIPPED: 0, RULE_PAIR: 0, "ngrams": 0}
            for item in _items(loaded.parts):
                q = next((p for p in item if p.part == "question"), None)
                q_ids = _ids_for(q, vocab, config) if q is not None else None
                q_index = None
                short_answers: list[int] = []
                for p in item:
                    ids = q_ids if p is q else _ids_for(p, vocab, config)
                    if len(ids) >= n:
                        rule = RULE_NGRAM
                    elif len(ids) >= (min(n_key, n) if p is q else n if not config.short_exact_answers
                                      else min(config.min_short_tokens, n)):
                        rule = RULE_SHORT
                    else:
                        rule = RULE_SKIPPED
                    counts[rule] += 1
                    counts["ngrams"] += max(0, len(ids) - n + 1)
                    if rule != RULE_SKIPPED:
                        k = add(p, p.part, p.text, ids, rule)
                        q_index = k if p is q else q_index
                    if p is not q and 0 < len(ids) < n:
                        short_answers.append(add(p, p.part, p.text, ids, RULE_AUX) if rule == RULE_SKIPPED
                                             else len(parts) - 1)
                    if p is not q and q is not None and config.qa_pairs and len(q_ids) < n \
                            and len(q_ids) + len(ids) >= n:
                        add(p, f"question+{p.part}", f"{q.text}\n{p.text}", np.concatenate([q_ids, ids]), RULE_NGRAM)
                        counts[RULE_PAIR] += 1
                if q is not None:
                    if q_index is None and config.reworded:
                        q_index = add(q, q.part, q.text, q_ids, RULE_AUX)
                    if q_index is not None:
                        questions.append((q_index, q, final_answer(item)))
                        if short_answers and parts[q_index].rule == RULE_SHORT:
                            pair_answers[q_index] = short_answers
            described.append(loaded.describe() | {
                "parts": counts[RULE_NGRAM] + counts[RULE_SHORT] + counts[RULE_SKIPPED],
                "parts_ngram": counts[RULE_NGRAM], "parts_short_exact": counts[RULE_SHORT],
                "parts_skipped_short": counts[RULE_SKIPPED], "parts_qa_pair": counts[RULE_PAIR],
                "ngrams": counts["ngrams"]})
        lengths = np.array([len(c) for c in token_chunks], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = np.concatenate(token_chunks).astype(np.int32) if token_chunks else np.empty(0, np.int32)
        rng = np.random.default_rng(20240913)
        values = rng.integers(1, np.iinfo(np.uint64).max, size=len(vocab) + 1, dtype=np.uint64, endpoint=False)
        keys, kpart, kpos, skeys, spart = [], [], [], [], []
        for i, info in enumerate(parts):
            v = values[tokens[offsets[i] : offsets[i + 1]]]
            if info.rule == RULE_NGRAM:
                h = rolling_hashes(v, n)
                keys.append(h)
                kpart.append(np.full(len(h), i, dtype=np.int32))
                kpos.append(np.arange(len(h), dtype=np.int32))
            elif info.rule == RULE_SHORT:
                skeys.append(rolling_hashes(v[:n_key], n_key))
                spart.append(np.array([i], dtype=np.int32))

        def table(k: list, p: list, pos: list | None) -> _Table:
            if not k:
                e = np.empty(0, dtype=np.int64)
                return _Table(np.empty(0, np.uint64), np.zeros(1, np.int64), e.astype(np.int32), e.astype(np.int32))
            kk, pp = np.concatenate(k), np.concatenate(p)
            return _Table.build(kk, pp, np.concatenate(pos) if pos else np.zeros(len(kk), np.int32))

        reworded = RewordIndex.build(questions, config) if config.reworded else None
        counts = Counter(int(t) for t in tokens.tolist())
        inverse = {i: t for t, i in vocab.items()}
        words = {inverse[i]: n for i, n in counts.items() if inverse[i].isascii() and inverse[i].isalpha()}
        return cls(config, vocab, values, parts, offsets, tokens, table(keys, kpart, kpos), table(skeys, spart, None),
                   described, texts, pair_answers, reworded, words)

    # ---- access -------------------------------------------------------------------------------------------

    def part_tokens(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def doc_ids(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(self.vocab.get, tokens, repeat(0)), dtype=np.int32, count=len(tokens))

    def nbytes(self) -> int:
        arrays = self.values.nbytes + self.offsets.nbytes + self.tokens.nbytes
        return arrays + self.ngrams.nbytes() + self.short.nbytes()

    def summary(self) -> dict[str, Any]:
        out = {"parts_indexed": len(self.parts), "ngram_keys": int(len(self.ngrams.keys)),
               "short_keys": int(len(self.short.keys)), "vocabulary": len(self.vocab),
               "array_bytes": int(self.nbytes())}
        return out | (self.reworded.summary() if self.reworded is not None else {})

    # ---- persistence --------------------------------------------------------------------------------------

    def save(self, path: str) -> None:
        with atomic_open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: str) -> NGramIndex:
        with open_file(path, "rb") as fh:
            index = pickle.load(fh)
        if not isinstance(index, NGramIndex):
            raise TypeError(f"{path}: not a decontamination index")
        return index


def short_key_len(config: DecontamConfig) -> int:
    """Tokens of a short question's lookup key (its first tokens)."""
    return max(1, min(config.min_line_tokens, config.min_short_tokens, config.ngram))


def _items(parts: list[ItemPart]) -> list[list[ItemPart]]:
    """Parts grouped by item, in file order."""
    groups: dict[str, list[ItemPart]] = {}
    for p in parts:
        groups.setdefault(p.item_id, []).append(p)
    return list(groups.values())


def _ids_for(part: ItemPart, vocab: dict[str, int], config: DecontamConfig) -> np.ndarray:
    toks = decontam_tokens(part.text, config.normalize)
    out = np.empty(len(toks), dtype=np.int32)
    for j, t in enumerate(toks):
        tid = vocab.get(t)
        if tid is None:
            tid = vocab[t] = len(vocab) + 1
        out[j] = tid
    return out

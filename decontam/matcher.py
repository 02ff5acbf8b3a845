"""Matching a document against the index: n-gram candidates, then the LCS rule on the aligned window."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rapidfuzz.distance import LCSseq

from corpus.normalize import iter_token_spans, math_tokens, source_token_spans
from decontam.index import RULE_NGRAM, RULE_SHORT, NGramIndex, rolling_hashes

SNIPPET_CONTEXT = 80  # characters shown before/after the matched window
SNIPPET_MAX = 1500  # characters of the window shown at most


@dataclass(frozen=True)
class Match:
    """One eval item part found in a document."""

    evalset: str
    item_id: str
    part: str
    rule: str  # ngram_lcs | short_exact
    lcs: int
    lcs_ratio: float
    item_tokens: int
    window: tuple[int, int]  # token range of the document window
    ngram_at: int  # token position of the (first) matched n-gram in the document
    ngram_len: int
    part_index: int

    def brief(self) -> dict[str, Any]:
        return {"evalset": self.evalset, "item_id": self.item_id, "part": self.part,
                "lcs_ratio": round(self.lcs_ratio, 4)}


def window_bounds(anchor: int, n_item: int, slack: int, n_doc: int) -> tuple[int, int]:
    """The document window aligned with a hit: ``[anchor - slack, anchor + n_item + slack)``, shifted (not cut)
    at the document's ends, so it is as long as the item plus slack unless the document itself is shorter."""
    width = n_item + 2 * slack
    lo = anchor - slack
    lo = max(0, min(lo, n_doc - width))
    return lo, min(n_doc, lo + width)


class Matcher:
    """Checks texts against an :class:`NGramIndex` (pure logic: no I/O, no Ray)."""

    def __init__(self, index: NGramIndex):
        self.index = index
        self.config = index.config

    def find(self, text: str) -> list[Match]:
        """Every contaminating part of ``text``, best first (empty when clean)."""
        tokens = math_tokens(text)
        return self.find_tokens(self.index.doc_ids(tokens)) if tokens else []

    def find_tokens(self, ids: np.ndarray) -> list[Match]:
        index, cfg = self.index, self.config
        values = index.values[ids]
        found: list[Match] = []
        # 1. n-gram candidates: part -> aligned start (hit position - position in part) -> (hits, first hit)
        cands: dict[int, dict[int, list[int]]] = defaultdict(dict)
        table = index.ngrams
        hit_pos, keys = table.lookup(rolling_hashes(values, cfg.ngram))
        for i, k in zip(hit_pos.tolist(), keys.tolist(), strict=True):
            for j in range(table.start[k], table.start[k + 1]):
                part, p = int(table.part[j]), int(table.pos[j])
                anchors = cands[part]
                a = i - p
                if a in anchors:
                    anchors[a][0] += 1
                else:
                    anchors[a] = [1, i, p]
        if cands:
            ranked = sorted(cands.items(), key=lambda kv: (-sum(v[0] for v in kv[1].values()), kv[0]))
            for part, anchors in ranked[: cfg.max_candidates]:
                m = self._check_part(ids, part, anchors)
                if m is not None:
                    found.append(m)
        # 2. short parts: exact occurrence of the whole normalized part
        if len(index.short.keys):
            n_short = min(cfg.min_short_tokens, cfg.ngram)
            table = index.short
            hit_pos, keys = table.lookup(rolling_hashes(values, n_short))
            seen: set[int] = set()
            for i, k in zip(hit_pos.tolist(), keys.tolist(), strict=True):
                for j in range(table.start[k], table.start[k + 1]):
                    part = int(table.part[j])
                    if part in seen:
                        continue
                    pt = index.part_tokens(part)
                    if np.array_equal(ids[i : i + len(pt)], pt):
                        seen.add(part)
                        info = index.parts[part]
                        found.append(Match(info.evalset, info.item_id, info.part, RULE_SHORT, len(pt), 1.0,
                                           len(pt), (i, i + len(pt)), i, len(pt), part))
        found.sort(key=lambda m: (-m.lcs_ratio, -m.lcs, m.evalset, m.item_id, m.part))
        return found

    def _check_part(self, ids: np.ndarray, part: int, anchors: dict[int, list[int]]) -> Match | None:
        cfg, index = self.config, self.index
        pt = index.part_tokens(part)
        n_item = len(pt)
        slack = math.ceil(cfg.window_slack * n_item)
        item = pt.tolist()
        best: Match | None = None
        tried: list[int] = []
        # anchors with the most hits first; skip ones inside an already-tried window
        for a, (_hits, i, p) in sorted(anchors.items(), key=lambda kv: (-kv[1][0], kv[0])):
            if any(abs(a - t) <= slack for t in tried):
                continue
            if len(tried) >= 3:
                break
            if not np.array_equal(ids[i : i + cfg.ngram], pt[p : p + cfg.ngram]):
                continue  # hash collision
            tried.append(a)
            lo, hi = window_bounds(a, n_item, slack, len(ids))
            lcs = LCSseq.similarity(ids[lo:hi].tolist(), item)
            ratio = lcs / max(1, min(hi - lo, n_item))
            if lcs >= cfg.min_lcs and ratio >= cfg.lcs_ratio and (best is None or ratio > best.lcs_ratio):
                info = index.parts[part]
                best = Match(info.evalset, info.item_id, info.part, RULE_NGRAM, lcs, ratio, n_item, (lo, hi), i,
                             cfg.ngram, part)
        return best

    # ---- evidence -----------------------------------------------------------------------------------------

    def evidence(self, text: str, matches: list[Match]) -> dict[str, Any]:
        """Audit evidence for a removed document: best match, matched n-gram, snippet with highlights."""
        best = matches[0]
        tokens = math_tokens(text)
        ngram = " ".join(tokens[best.ngram_at : best.ngram_at + best.ngram_len])
        snippet, highlights = self.snippet(text, tokens, best)
        return {
            "evalset": best.evalset, "item_id": best.item_id, "part": best.part, "rule": best.rule,
            "matched_ngram": ngram, "lcs": best.lcs, "lcs_ratio": round(best.lcs_ratio, 4),
            "item_tokens": best.item_tokens, "window_tokens": best.window[1] - best.window[0],
            "snippet": snippet, "highlights": highlights,
            "matches": [m.brief() for m in matches],
        }

    def snippet(self, text: str, tokens: list[str], m: Match) -> tuple[str, list[list[int]]]:
        """The document text around the match window, and the character ranges (in the snippet) of the tokens
        that belong to the LCS with the item."""
        spans = source_token_spans(text)
        base = text
        if spans is None:  # fall back to the folded text
            from corpus.normalize import fold

            base = fold(text)
            spans = [(s, e) for _, s, e in iter_token_spans(text)]
        lo, hi = m.window
        ids = self.index.doc_ids(tokens[lo:hi]).tolist()
        item = self.index.part_tokens(m.part_index).tolist()
        marked = [False] * (hi - lo)
        for op in LCSseq.opcodes(ids, item):
            if op.tag == "equal":
                for t in range(op.src_start, op.src_end):
                    marked[t] = True
        w_start, w_end = spans[lo][0], spans[hi - 1][1]
        w_end = min(w_end, w_start + SNIPPET_MAX)
        s_start, s_end = max(0, w_start - SNIPPET_CONTEXT), min(len(base), w_end + SNIPPET_CONTEXT)
        ranges: list[list[int]] = []
        for t, on in enumerate(marked):
            if not on:
                continue
            a, b = spans[lo + t]
            if a >= w_end:
                break
            a, b = a - s_start, min(b, w_end) - s_start
            if ranges and t > 0 and marked[t - 1]:
                ranges[-1][1] = b
            else:
                ranges.append([a, b])
        return base[s_start:s_end], ranges


def match_dict(m: Match) -> dict[str, Any]:
    return asdict(m)


__all__ = ["Match", "Matcher", "RULE_NGRAM", "RULE_SHORT", "match_dict"]

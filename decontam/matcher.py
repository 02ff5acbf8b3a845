"""Matching a document against the index: n-gram candidates with the LCS rule on the aligned window, short
questions (exact / whole line / followed by their answer), then the reworded tier; plus near misses."""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rapidfuzz.distance import LCSseq

from corpus.normalize import fold, iter_token_spans, math_tokens
from decontam.index import RULE_LINE, RULE_NGRAM, RULE_PAIR, RULE_SHORT, NGramIndex, rolling_hashes, short_key_len
from decontam.normalize import decontam_token_spans, despace
from decontam.numbers import numbers
from decontam.reworded import RULE_REWORDED, RewordHit

SNIPPET_CONTEXT = 80  # characters shown before/after the matched window
SNIPPET_MAX = 1500  # characters of the window shown at most
ITEM_TEXT_MAX = 2000  # characters of the eval item shown beside the matched span
PAIR_GAP = 8  # tokens allowed between a short question and its answer (e.g. "Answer:", "The answer is")
_PARA = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Match:
    """One eval item part found in a document."""

    evalset: str
    item_id: str
    part: str
    rule: str  # ngram_lcs | short_exact | short_line | qa_pair | reworded
    lcs: int
    lcs_ratio: float  # the rule's score: LCS ratio, 1.0 for exact rules, content-word containment (reworded)
    item_tokens: int
    window: tuple[int, int]  # token range of the document window (reworded: character range, despaced text)
    ngram_at: int  # token position of the (first) matched n-gram in the document
    ngram_len: int
    part_index: int
    numbers: tuple[str, ...] = ()  # reworded: the item's numbers found, missing, and whether its answer was
    missing: tuple[str, ...] = ()
    answer_found: bool | None = None

    def brief(self) -> dict[str, Any]:
        return {"evalset": self.evalset, "item_id": self.item_id, "part": self.part, "rule": self.rule,
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
        return self.check(text)[0]

    def check(self, text: str) -> tuple[list[Match], list[dict[str, Any]]]:
        """(matches best first, near misses): n-gram hits the LCS rule rejected and reworded candidates below
        the threshold, each with a score >= ``near_miss_ratio`` (near misses only when nothing matched)."""
        cfg = self.config
        d = despace(text, cfg.normalize, self.index.words)[0] if cfg.normalize else text
        tokens = math_tokens(d)
        near: list[dict[str, Any]] = []
        found = self.find_tokens(self.index.doc_ids(tokens), d, near) if tokens else []
        if not found and self.index.reworded is not None:
            for hit in self.index.reworded.search(d, cfg, cfg.near_miss_ratio):
                if self.index.reworded.accepts(hit, cfg):
                    found.append(self._reword_match(hit))
                elif len(near) < 20:
                    near.append(self._reword_near(hit, d))
            found.sort(key=lambda m: (-m.lcs_ratio, m.evalset, m.item_id, m.part))
        if found:
            return found, []
        for nm in near:
            if nm["tier"] == RULE_NGRAM:
                nm["matched_ngram"] = " ".join(tokens[nm.pop("at") : nm.pop("end")])
        near.sort(key=lambda x: (-x["score"], x["evalset"], x["item_id"], x["part"]))
        return found, near

    def find_tokens(self, ids: np.ndarray, text: str | None = None,
                    near: list[dict[str, Any]] | None = None) -> list[Match]:
        """Token-table rules on a document's token ids (``text``: its despaced text, for the line rule)."""
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
                m, rejected = self._check_part(ids, part, anchors)
                if m is not None:
                    found.append(m)
                elif rejected is not None and near is not None and rejected[0] >= cfg.near_miss_ratio:
                    info = index.parts[part]
                    near.append({"tier": RULE_NGRAM, "evalset": info.evalset, "item_id": info.item_id,
                                 "part": info.part, "score": round(rejected[0], 4), "lcs": rejected[1],
                                 "item_tokens": info.n_tokens, "at": rejected[2], "end": rejected[2] + cfg.ngram,
                                 "item_text": index.texts[part][:ITEM_TEXT_MAX]})
        # 2. short questions: exact occurrence, then the rule that fired
        if len(index.short.keys):
            found.extend(self._short(ids, values, text))
        found.sort(key=lambda m: (-m.lcs_ratio, -m.lcs, m.evalset, m.item_id, m.part))
        return found

    def _short(self, ids: np.ndarray, values: np.ndarray, text: str | None) -> list[Match]:
        index, cfg = self.index, self.config
        n_key = short_key_len(cfg)
        table = index.short
        hit_pos, keys = table.lookup(rolling_hashes(values, n_key))
        seen: set[int] = set()
        lines: tuple[np.ndarray, np.ndarray] | None = None
        out: list[Match] = []
        for i, k in zip(hit_pos.tolist(), keys.tolist(), strict=True):
            for j in range(table.start[k], table.start[k + 1]):
                part = int(table.part[j])
                if part in seen:
                    continue
                pt = index.part_tokens(part)
                n_pt = len(pt)
                if not np.array_equal(ids[i : i + n_pt], pt):
                    continue
                info = index.parts[part]
                rule = RULE_SHORT if n_pt >= cfg.min_short_tokens else None
                if rule is None and info.part == "question" and n_pt >= cfg.min_line_tokens:
                    if lines is None:
                        lines = _line_ids(text, len(ids)) if text is not None else (np.zeros(0), np.zeros(0))
                    if any(_whole(ids_of, i, n_pt) for ids_of in lines if len(ids_of) == len(ids)):
                        rule = RULE_LINE
                    else:
                        after = ids[i + n_pt : i + n_pt + PAIR_GAP + 16].tolist()
                        for a in index.pair_answers.get(part, ()):
                            at = index.part_tokens(a).tolist()
                            if _contains(after[: len(at) + PAIR_GAP], at):
                                rule = RULE_PAIR
                                break
                if rule is None:
                    continue
                seen.add(part)
                out.append(Match(info.evalset, info.item_id, info.part, rule, n_pt, 1.0, n_pt, (i, i + n_pt), i,
                                 n_pt, part))
        return out

    def _reword_match(self, hit: RewordHit) -> Match:
        it = self.index.reworded.items[hit.item]
        info = self.index.parts[it.part_index]
        return Match(info.evalset, info.item_id, info.part, RULE_REWORDED, 0, hit.similarity, info.n_tokens, hit.span,
                     -1, 0, it.part_index, hit.numbers, hit.missing, hit.answer)

    def _reword_near(self, hit: RewordHit, d: str) -> dict[str, Any]:
        it = self.index.reworded.items[hit.item]
        info = self.index.parts[it.part_index]
        return {"tier": RULE_REWORDED, "evalset": info.evalset, "item_id": info.item_id, "part": info.part,
                "score": round(hit.similarity, 4), "numbers": list(hit.numbers), "missing": list(hit.missing),
                "answer_found": hit.answer, "matched_text": d[hit.span[0] : hit.span[1]][:SNIPPET_MAX],
                "item_text": self.index.texts[it.part_index][:ITEM_TEXT_MAX]}

    def _check_part(self, ids: np.ndarray, part: int, anchors: dict[int, list[int]]
                    ) -> tuple[Match | None, tuple[float, int, int] | None]:
        """The best window passing the LCS rule, else (None, (best ratio, its LCS, its n-gram position))."""
        cfg, index = self.config, self.index
        pt = index.part_tokens(part)
        n_item = len(pt)
        slack = math.ceil(cfg.window_slack * n_item)
        item = pt.tolist()
        best: Match | None = None
        rejected: tuple[float, int, int] | None = None
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
            elif rejected is None or ratio > rejected[0]:
                rejected = (ratio, lcs, i)
        return best, None if best is not None else rejected

    # ---- evidence -----------------------------------------------------------------------------------------

    def evidence(self, text: str, matches: list[Match]) -> dict[str, Any]:
        """Audit evidence for a removed document: best match, rule, matched span with highlights, eval item text."""
        best = matches[0]
        cfg = self.config
        out = {"evalset": best.evalset, "item_id": best.item_id, "part": best.part, "rule": best.rule,
               "lcs": best.lcs, "lcs_ratio": round(best.lcs_ratio, 4), "item_tokens": best.item_tokens,
               "item_text": self.index.texts[best.part_index][:ITEM_TEXT_MAX],
               "matches": [m.brief() for m in matches]}
        if best.rule == RULE_REWORDED:
            snippet, highlights = self.reword_snippet(text, best)
            return out | {"matched_ngram": "", "window_tokens": 0, "snippet": snippet, "highlights": highlights,
                          "numbers_matched": list(best.numbers), "numbers_missing": list(best.missing),
                          "answer_matched": best.answer_found, "similarity": round(best.lcs_ratio, 4)}
        d = despace(text, cfg.normalize, self.index.words)[0] if cfg.normalize else text
        tokens = math_tokens(d)
        ngram = " ".join(tokens[best.ngram_at : best.ngram_at + best.ngram_len])
        snippet, highlights = self.snippet(text, tokens, best)
        return out | {"matched_ngram": ngram, "window_tokens": best.window[1] - best.window[0], "snippet": snippet,
                      "highlights": highlights}

    def snippet(self, text: str, tokens: list[str], m: Match) -> tuple[str, list[list[int]]]:
        """The document text around the match window, and the character ranges (in the snippet) of the tokens
        that belong to the LCS with the item."""
        cfg = self.config
        spans = decontam_token_spans(text, cfg.normalize, self.index.words)
        base = text
        if spans is None or len(spans) != len(tokens):  # fall back to the folded, despaced text
            base = fold(despace(text, cfg.normalize, self.index.words)[0])
            spans = [(s, e) for _, s, e in iter_token_spans(base)]
            base = fold(base)
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

    def reword_snippet(self, text: str, m: Match) -> tuple[str, list[list[int]]]:
        """The document span holding the reworded item's numbers (original text), numbers highlighted."""
        cfg = self.config
        d, owners = despace(text, cfg.normalize, self.index.words, keep_map=True) if cfg.normalize else (text, None)
        lo, hi = m.window
        hi = min(hi, lo + SNIPPET_MAX, len(d))
        wanted = set(m.numbers)
        marks = [(a, a + 1) for v, a in numbers(d[lo:hi]) if v in wanted]

        def src(k: int) -> int:
            return owners[k] if owners is not None else k

        s_start, s_end = src(lo), src(hi - 1) + 1 if hi > lo else src(lo)
        highlights: list[list[int]] = []
        for a, _ in marks:
            b = lo + a
            end = b
            while end < hi and not d[end].isspace() and d[end] not in ",;:!?)":
                end += 1
            highlights.append([src(b) - s_start, src(max(b, end - 1)) + 1 - s_start])
        return text[s_start:s_end], highlights


def _line_ids(text: str, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Line and paragraph number of each token of ``text`` (its despaced form)."""
    folded = fold(text)
    starts = [s for _, s, _ in iter_token_spans(text)]
    if len(starts) != n_tokens:
        return np.zeros(0), np.zeros(0)
    newlines = [m.start() for m in re.finditer("\n", folded)]
    paras = [m.start() for m in _PARA.finditer(folded)]
    return (np.array([bisect.bisect(newlines, s) for s in starts]),
            np.array([bisect.bisect(paras, s) for s in starts]))


def _whole(block_of: np.ndarray, i: int, n: int) -> bool:
    """Whether tokens [i, i+n) are a whole line/paragraph (one leading enumeration token allowed)."""
    end = i + n
    if end < len(block_of) and block_of[end] == block_of[end - 1]:
        return False
    return i == 0 or block_of[i - 1] != block_of[i] or (i == 1 or block_of[i - 2] != block_of[i - 1])


def _contains(seq: list[int], sub: list[int]) -> bool:
    m = len(sub)
    return any(seq[k : k + m] == sub for k in range(len(seq) - m + 1))


def match_dict(m: Match) -> dict[str, Any]:
    return asdict(m)


__all__ = ["Match", "Matcher", "RULE_LINE", "RULE_NGRAM", "RULE_PAIR", "RULE_REWORDED", "RULE_SHORT", "match_dict"]

"""The reworded-item tier: numeric-fingerprint retrieval, confirmed by content-word containment.

A reworded copy keeps the problem's numbers (maybe as words: "three", "a dozen", "两") and its answer, and
changes the words around them. So each eval question with at least ``reword_min_numbers`` distinct numbers
(0 and 1 are too common to count) and enough content words for how common its numbers are (:func:`min_words`:
word problems, not bare formulas with 2, 3 and 4) is indexed under its rarest numbers; a
document retrieves the questions whose numbers all occur in it (one may be missing when a question has four
or more), within ``reword_span`` x the question's length; the question's content words are then looked up in
that span of the document (containment = share of the question's stemmed content words found, each word
weighted by its inverse document frequency over the eval questions, so "find" and "value" weigh little).
Questions with too few numbers (most MATH problems) are also retrieved by any of their TeX formulas of at
least ``FORMULA_MIN_TOKENS`` tokens found verbatim (after normalization) in the document: rewordings keep
formulas; and those with neither, by their two rarest words (names, rare terms), confirmed the same way.
No model, no network.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from decontam.config import DecontamConfig
from decontam.evalsets import ItemPart
from decontam.numbers import STOPWORDS, canonical, content_words, numbers, raw_words, stem

IGNORED_VALUES = frozenset({"0", "1"})
COMMON_VALUES = frozenset({"2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "0.5"})


def min_words(values: tuple[str, ...]) -> int | None:
    """Content words a question needs to be in the tier, given its numbers (None: numbers too common).

    Specific numbers carry the retrieval, words only confirm it; with common numbers the words must carry it:
    two uncommon numbers (not 2-10, 12, 1/2) -> 3 words; one uncommon number -> 6; three common ones -> 8.
    """
    uncommon = sum(v not in COMMON_VALUES for v in values)
    if uncommon >= 2:
        return 3
    if uncommon == 1:
        return 6
    return 8 if len(values) >= 3 else None
RULE_REWORDED = "reworded"
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")


def final_answer(parts: Iterable[ItemPart]) -> str | None:
    """The item's final answer value: GSM8K's ``#### x``, the last ``\\boxed{}``, or a short answer field."""
    for p in parts:
        if p.part == "question":
            continue
        text = p.text
        if "####" in text:
            text = text.rsplit("####", 1)[1]
        elif "\\boxed" in text:
            boxed = _BOXED.findall(text)
            if not boxed:
                continue
            text = boxed[-1]
        elif len(text) > 40:
            continue
        values = [v for v, _ in numbers(text)]
        if len(values) == 1:
            return values[0]
    return None


@dataclass(frozen=True)
class RewordItem:
    part_index: int  # the question's index in NGramIndex.parts
    values: tuple[str, ...]  # distinct numbers (sorted)
    answer: str | None
    words: frozenset[str]
    length: int  # characters of the question
    by_numbers: bool = True  # retrieved by its numbers (else by one of its formulas or its rarest words)


@dataclass(frozen=True)
class RewordHit:
    item: int
    similarity: float
    numbers: tuple[str, ...]
    missing: tuple[str, ...]
    answer: bool
    span: tuple[int, int]  # character range of the document (despaced text) holding the numbers


@dataclass
class RewordIndex:
    items: list[RewordItem] = field(default_factory=list)
    anchors: dict[str, list[int]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    totals: list[float] = field(default_factory=list)  # each item's summed word weight
    formulas: dict[str, list[int]] = field(default_factory=dict)  # a question's formula (tokens) -> items
    rare_words: dict[str, list[int]] = field(default_factory=dict)  # word -> items it anchors (few numbers)

    @classmethod
    def build(cls, questions: list[tuple[int, ItemPart, str | None]], config: DecontamConfig) -> RewordIndex:
        """``questions``: (part index, question part, final answer) of every eval item."""
        items: list[RewordItem] = []
        by_formula: dict[str, list[int]] = defaultdict(list)
        lexical: list[tuple[int, set[str]]] = []  # (item, its raw words): items retrieved by rare words
        for idx, part, answer in questions:
            values = tuple(sorted({v for v, _ in numbers(part.text)} - IGNORED_VALUES))
            words = frozenset(content_words(part.text))
            need = min_words(values)
            by_numbers = len(values) >= config.reword_min_numbers and need is not None and len(words) >= need
            keys = [f for f, _ in formulas(part.text)] if len(words) >= FORMULA_MIN_WORDS else []
            if by_numbers or keys or len(words) >= LEXICAL_MIN_WORDS:
                for f in set(keys):
                    by_formula[f].append(len(items))
                if not by_numbers and not keys:
                    lexical.append((len(items), raw_words(part.text)))
                items.append(RewordItem(idx, values, answer, words, len(part.text), by_numbers))
        df = Counter(w for it in items for w in it.words)
        rare_words: dict[str, list[int]] = defaultdict(list)
        for k, raw in lexical:
            cands = sorted((df[stem(w)], w) for w in raw if len(w) >= 4 and w not in STOPWORDS and stem(w) in df)
            for n, w in cands[:2]:
                if n <= LEXICAL_MAX_DF:
                    rare_words[w].append(k)
        idf = {w: math.log((1 + len(items)) / (1 + n)) + 1.0 for w, n in df.items()}
        freq = Counter(v for it in items for v in it.values)
        anchors: dict[str, list[int]] = defaultdict(list)
        for k, it in enumerate(items):
            if not it.by_numbers:
                continue
            rarest = sorted(it.values, key=lambda v: (freq[v], v))
            for v in rarest[: 1 + _allowed_missing(it)]:
                anchors[v].append(k)
        shared = {f for f, ks in by_formula.items() if len(ks) > 3}  # a formula many items share says nothing
        return cls(items, dict(anchors), idf, [sum(idf[w] for w in it.words) for it in items],
                   {f: ks for f, ks in by_formula.items() if f not in shared}, dict(rare_words))

    def weight(self, words: Iterable[str]) -> float:
        return sum(self.idf.get(w, 1.0) for w in words)

    def search(self, text: str, config: DecontamConfig, floor: float) -> list[RewordHit]:
        """Candidates with all (but the allowed) numbers in span and containment >= ``floor``, best first."""
        positions: dict[str, list[int]] = defaultdict(list)
        for v, pos in numbers(text):
            positions[v].append(pos)
        formula_at: dict[int, tuple[int, int]] = {}  # item -> span of one of its formulas in the document
        if self.formulas and ("$" in text or "\\" in text):
            for f, span in formulas(text):
                for k in self.formulas.get(f, ()):
                    formula_at.setdefault(k, span)
        word_at: dict[int, tuple[int, int]] = {}  # item -> span around one of its rare words in the document
        if self.rare_words:
            low = None
            for w in raw_words(text) & self.rare_words.keys():
                low = low if low is not None else text.casefold()
                p = low.find(w)
                for k in self.rare_words[w]:
                    half = self.items[k].length // 2
                    word_at.setdefault(k, (max(0, p - half), p + half))
        if not positions and not formula_at and not word_at:
            return []
        cands: set[int] = set(formula_at) | set(word_at)
        for v in positions:
            cands.update(self.anchors.get(v, ()))
        hits: list[RewordHit] = []
        cache: dict[tuple[int, int], set[str]] = {}
        doc_words: set[str] | None = None
        for k in sorted(cands):
            it = self.items[k]
            found = [v for v in it.values if v in positions]
            by_numbers = it.by_numbers and len(found) >= max(len(it.values) - _allowed_missing(it),
                                                             config.reword_min_numbers)
            if not by_numbers and (len(found) < len(it.values) or (k not in formula_at and k not in word_at)):
                continue  # by a formula or rare words: the question's few numbers must all be there too
            if doc_words is None:
                doc_words = content_words(text)
            shared = it.words & doc_words
            if len(shared) < 0.5 * floor * len(it.words):
                continue
            total = self.totals[k]
            if self.weight(shared) < floor * total:  # not even in the whole document
                continue
            span = _near_span(positions, found, config.reword_span * it.length) if by_numbers else None
            span = span or formula_at.get(k) or word_at.get(k)
            if span is None:
                continue
            slack = it.length // 2
            lo, hi = max(0, span[0] - slack), min(len(text), span[1] + slack)
            if (lo, hi) not in cache:
                cache[(lo, hi)] = content_words(text[lo:hi])
            sim = self.weight(it.words & cache[(lo, hi)]) / total
            if sim < floor:
                continue
            answer = False
            if it.answer is not None:
                a_hi = min(len(text), span[1] + 2 * it.length)
                answer = it.answer in {v for v, _ in numbers(text[lo:a_hi])}
            hits.append(RewordHit(k, sim, tuple(found), tuple(v for v in it.values if v not in positions), answer,
                                  (lo, hi)))
        hits.sort(key=lambda h: (-h.similarity, h.item))
        return hits

    def accepts(self, hit: RewordHit, config: DecontamConfig) -> bool:
        need = config.reword_similarity_answer if hit.answer else config.reword_similarity
        return hit.similarity >= need

    def summary(self) -> dict[str, Any]:
        return {"reworded_items": len(self.items), "reworded_anchor_values": len(self.anchors)}


FORMULA_MIN_TOKENS = 5  # a formula this long (normalized tokens) identifies its question
FORMULA_MIN_WORDS = 3
LEXICAL_MIN_WORDS = 6  # a question with neither numbers nor a long formula is retrieved by its 2 rarest words
LEXICAL_MAX_DF = 5  # ... when they occur in at most this many eval questions
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,} [a-zA-Z]{3,}")
_FORMULA = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)


def formulas(text: str) -> list[tuple[str, tuple[int, int]]]:
    """(normalized tokens, character span) of each TeX formula of >= ``FORMULA_MIN_TOKENS`` tokens. Rewordings
    keep formulas as they are, and a long one is specific to its problem."""
    from corpus.normalize import math_tokens

    out = []
    for m in _FORMULA.finditer(text):
        body = next(g for g in m.groups() if g is not None)
        if _PROSE.search(body):  # "$20 and added an extra $": dollar amounts, not a formula
            continue
        toks = math_tokens(body)
        if len(toks) >= FORMULA_MIN_TOKENS:
            out.append((" ".join(toks), (m.start(), m.end())))
    return out


def _allowed_missing(item: RewordItem) -> int:
    return 1 if len(item.values) >= 4 else 0


def _near_span(positions: dict[str, list[int]], found: list[str], limit: float) -> tuple[int, int] | None:
    """The tightest character range (<= ``limit``) holding one occurrence of every value in ``found``, searched
    around each occurrence of the rarest one (nearest occurrence of every other value, by bisection)."""
    rare = min(found, key=lambda v: len(positions[v]))
    best: tuple[int, int] | None = None
    for p in positions[rare][:64]:
        lo = hi = p
        for v in found:
            if v == rare:
                continue
            lst = positions[v]
            j = bisect_left(lst, p)
            q = min((lst[k] for k in (j - 1, j) if 0 <= k < len(lst)), key=lambda x: abs(x - p))
            lo, hi = min(lo, q), max(hi, q)
            if hi - lo > limit:
                break
        else:
            if best is None or hi - lo < best[1] - best[0]:
                best = (lo, hi)
    return None if best is None else (best[0], best[1] + 12)  # + the last number's own characters


__all__ = ["RULE_REWORDED", "RewordHit", "RewordIndex", "RewordItem", "canonical", "final_answer"]

"""A planted near-duplicate benchmark built from real text: copies with known edits and hard negatives.

Every base document gets one copy of each kind: ``exact``, ``reformat`` (line wraps, spacing, case),
``boilerplate`` (site header/footer added), ``edit2``/``edit5``/``edit8`` (that % of words replaced,
deleted or inserted) and, as hard negatives that must *not* be merged, ``rewrite`` (35 % of words edited and
sentences shuffled). Base documents are distinct real texts (unrelated to each other).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

COPY_KINDS = ("exact", "reformat", "boilerplate", "edit2", "edit5", "edit8")
NEGATIVE_KINDS = ("rewrite",)
KINDS = COPY_KINDS + NEGATIVE_KINDS

_HEADER = ("Home | Forums | Questions | Tags | Users | Log in | Sign up\nSkip to main content. "
           "This site uses cookies to improve your experience. By continuing you accept our cookie policy.\n")
_FOOTER = ("\nShare this page: Twitter Facebook Reddit Email. Related posts. Popular tags. "
           "Copyright the authors, all rights reserved. Terms of service | Privacy policy | Contact us | Sitemap\n")


@dataclass(frozen=True)
class Planted:
    id: str
    text: str
    family: str  # the base document's id
    kind: str  # "base" or one of KINDS


_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_UNITS = re.compile(rf"(\s+|[{_CJK}])")  # words, and one unit per CJK character (Chinese has no spaces)
_CJK_RE = re.compile(rf"[{_CJK}]")


def _edit_words(text: str, rate: float, rng: random.Random, vocab: tuple[list[str], list[str]]) -> str:
    """Replace, delete or insert (equally likely) ``rate`` of the words / CJK characters."""
    out: list[str] = []
    for part in _UNITS.split(text):
        if not part or part.isspace() or rng.random() >= rate:
            out.append(part)
            continue
        cjk = bool(_CJK_RE.fullmatch(part))
        sep = "" if cjk else " "
        new = rng.choice(vocab[1] if cjk else vocab[0])
        op = rng.randrange(3)
        if op == 0:
            out.append(new)
        elif op == 2:
            out.append(f"{part}{sep}{new}")
    return "".join(out)


def _reformat(text: str, rng: random.Random) -> str:
    words = text.split()
    lines, line, width = [], [], rng.randint(40, 90)
    for w in words:
        if rng.random() < 0.05:
            w = w.upper() if rng.random() < 0.5 else w.capitalize()
        line.append(w)
        if sum(len(x) + 1 for x in line) > width:
            lines.append(("  " if rng.random() < 0.3 else " ").join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines)


def _rewrite(text: str, rng: random.Random, vocab: tuple[list[str], list[str]]) -> str:
    sentences = re.split(r"(?<=[.!?。！？])\s*", _edit_words(text, 0.35, rng, vocab))
    rng.shuffle(sentences)
    return " ".join(sentences)


def make_vocab(texts: Iterable[str]) -> tuple[list[str], list[str]]:
    """Replacement words and CJK characters for edits, taken from the texts themselves."""
    texts = list(texts)
    words = sorted({w for t in texts for w in t.split() if w.isalpha() and w.isascii() and 3 <= len(w) <= 10})
    chars = sorted({c for t in texts for c in _CJK_RE.findall(t)})
    return words or ["word"], chars or ["字"]


def variant(text: str, kind: str, rng: random.Random, vocab: tuple[list[str], list[str]]) -> str:
    if kind == "exact":
        return text
    if kind == "reformat":
        return _reformat(text, rng)
    if kind == "boilerplate":
        return _HEADER + text + _FOOTER
    if kind.startswith("edit"):
        return _edit_words(text, int(kind[4:]) / 100, rng, vocab)
    if kind == "rewrite":
        return _rewrite(text, rng, vocab)
    raise ValueError(f"unknown variant kind {kind!r}")


def planted_set(base: Iterable[tuple[str, str]], seed: int = 0, kinds: tuple[str, ...] = KINDS) -> Iterator[Planted]:
    """The base documents ``(id, text)`` followed by one variant of each kind per base document."""
    base = list(base)
    rng = random.Random(seed)
    vocab = make_vocab(t for _, t in base[:200])
    for doc_id, text in base:
        yield Planted(doc_id, text, doc_id, "base")
    for doc_id, text in base:
        for kind in kinds:
            yield Planted(f"{doc_id}~{kind}", variant(text, kind, rng, vocab), doc_id, kind)


def score(planted: list[Planted], cluster_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per kind: share of copies put in their base document's cluster (recall; for negatives, the false-merge
    rate), plus overall pair precision: merged (doc, base) pairs that are true copies."""
    base_cluster = {p.id: cluster_of[p.id] for p in planted if p.kind == "base"}
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        rows = [p for p in planted if p.kind == kind]
        if rows:
            hit = sum(cluster_of[p.id] == base_cluster[p.family] for p in rows)
            out[kind] = {"n": len(rows), "merged": hit / len(rows)}
    # precision: every document merged into a cluster that holds some other family's base (or a negative)
    members: dict[str, list[Planted]] = {}
    for p in planted:
        members.setdefault(cluster_of[p.id], []).append(p)
    true_pairs = false_pairs = 0
    for group in members.values():
        if len(group) < 2:
            continue
        for p in group:
            for q in group:
                if p.id < q.id:
                    same = p.family == q.family and "rewrite" not in (p.kind, q.kind)
                    true_pairs += same
                    false_pairs += not same
    out["all"] = {"n": len(planted), "precision": true_pairs / max(1, true_pairs + false_pairs),
                  "false_pairs": false_pairs}
    return out

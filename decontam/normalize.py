"""Decontam-only spacing rules, applied before the shared tokenizer (:func:`corpus.normalize.math_tokens`).

PDF/OCR conversions of exam papers put a space between every character ("苗 苗 家 里 有 5 0 个",
"\\ f r a c { 1 } { 2 }", "H o w   m a n y"). Such spacing carries no meaning, but it changes tokens ("5 0" is
two numbers, "\\ f r a c" four letters). Each rule below only deletes spaces (or puts one after a rejoined TeX
command), so it is applied to eval items and documents alike; dedup keeps :mod:`corpus.normalize` as it is.

* ``spaced``: a run of >= 5 single characters separated by blanks is joined; gaps of 2+ blanks are word
  boundaries; a joined run of letters with no such gap is split into known words when a vocabulary is given
  (with word counts: the most probable split under a unigram model).
* ``cjk``: in CJK-dominant text, a single space between digits / decimal points is removed ("有 5 0 个").
* ``tex``: ``\\`` followed by single spaced letters is rejoined to the longest known TeX command ("\\ s q r t x").
* ``decimal``: "4 .20" -> "4.20" (a space before a decimal point glued to its digits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping

from corpus.normalize import CJK_CHARS, math_tokens, source_token_spans


def _split(words: str) -> list[str]:
    return words.split()


RULES = ("spaced", "cjk", "tex", "decimal")

_SPACED = re.compile(r"(?<!\S)(?:\S[ \t]+){4,}\S(?!\S)")
_GAP = re.compile(r"[ \t]+")
_TEX = re.compile(r"\\[ \t]+((?:[a-zA-Z][ \t]+)*[a-zA-Z])(?![a-zA-Z])")
_DECIMAL = re.compile(r"(?<=\d)[ \t]+(?=\.\d)")
_CJK_DIGITS = re.compile(r"(?<=[\d.])[ \t](?=[\d.])")
_CJK = re.compile(f"[{CJK_CHARS}]")
_NON_SPACE = re.compile(r"\S")
TEX_COMMANDS = frozenset(_split("""
frac dfrac tfrac sqrt cdot times div pm mp le leq ge geq ne neq lt gt approx equiv sim cong propto infty
alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho sigma tau
upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega sin cos tan cot sec csc
arcsin arccos arctan sinh cosh tanh log ln exp lim sum prod int iint oint partial nabla boxed text textbf
mathrm mathbf mathbb mathcal operatorname left right binom dbinom tbinom choose angle triangle circ degree
overline underline overrightarrow vec hat bar dot ldots cdots dots vdots ddots lfloor rfloor lceil rceil in
notin cup cap subset subseteq supset supseteq emptyset varnothing setminus forall exists neg land lor to
rightarrow leftarrow Rightarrow Leftarrow iff implies mid parallel perp pmod bmod mod gcd lcm max min det
begin end pmatrix bmatrix matrix cases array quad qquad displaystyle mathit hline prime star ast bullet
"""))
_TEX_BY_LENGTH = sorted(TEX_COMMANDS, key=len, reverse=True)

Edit = tuple[int, int, str]  # replace text[start:end] with the string


def _tex_edits(text: str) -> list[Edit]:
    out = []
    for m in _TEX.finditer(text):
        letters = _GAP.sub("", m.group(1))
        name = next((c for c in _TEX_BY_LENGTH if letters.startswith(c)), letters)
        rest = letters[len(name):]
        out.append((m.start(), m.end(), "\\" + name + (" " + " ".join(rest) if rest else "")))
    return out


def _segment(blob: str, words: Collection[str]) -> str | None:
    """``blob`` split into known words (>= 2 letters, or 'a'/'i'), or None. With word counts (a mapping), the
    most probable split under a unigram model ("times an even", not "time san even"); else the fewest words."""
    low = blob.casefold()
    n = len(low)
    counts = words if isinstance(words, Mapping) else None
    log_total = math.log(sum(counts.values()) + 1) if counts else 0.0
    best: list[tuple[float, int] | None] = [None] * (n + 1)  # (cost, previous cut)
    best[0] = (0.0, 0)
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(i + 1, min(n, i + 20) + 1):
            w = low[i:j]
            if (len(w) > 1 or w in ("a", "i")) and w in words:
                cost = best[i][0] + (log_total - math.log(counts[w]) if counts else 1.0)
                if best[j] is None or cost < best[j][0]:
                    best[j] = (cost, i)
    if best[n] is None:
        return None
    cuts, j = [], n
    while j > 0:
        cuts.append(j)
        j = best[j][1]
    cuts.reverse()
    return " ".join(blob[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True))


def _spaced_edits(text: str, words: Collection[str] | None) -> list[Edit]:
    out = []
    for m in _SPACED.finditer(text):
        run = m.group()
        pieces = re.split(r"[ \t]{2,}", run)
        joined = [_GAP.sub("", p) for p in pieces]
        if words is not None and len(pieces) == 1:
            joined = [re.sub(r"[^\W\d_]{2,}", lambda w: _segment(w.group(), words) or w.group(), joined[0])]
        out.append((m.start(), m.end(), " ".join(joined)))
    return out


def _regex_edits(rx: re.Pattern, text: str, repl: str = "") -> list[Edit]:
    return [(m.start(), m.end(), repl) for m in rx.finditer(text)]


def cjk_dominant(text: str) -> bool:
    n_cjk = len(_CJK.findall(text))
    return n_cjk > 0 and n_cjk >= 0.3 * len(_NON_SPACE.findall(text))


def _apply(text: str, edits: list[Edit], owners: list[int] | None) -> tuple[str, list[int] | None]:
    """Apply non-overlapping edits (later ones overlapping an earlier one are dropped)."""
    if not edits:
        return text, owners
    edits.sort()
    out, own, pos = [], [] if owners is not None else None, 0
    for a, b, rep in edits:
        if a < pos:
            continue
        out.append(text[pos:a])
        out.append(rep)
        if own is not None:
            own.extend(owners[pos:a])
            # the replacement only deletes blanks (or adds one): map its characters onto the kept source chars
            src = [k for k in range(a, b) if not text[k].isspace()]
            k = 0
            for ch in rep:
                if ch.isspace() or k >= len(src):
                    own.append(owners[src[min(k, len(src) - 1)]] if src else owners[a])
                else:
                    own.append(owners[src[k]])
                    k += 1
        pos = b
    out.append(text[pos:])
    if own is not None:
        own.extend(owners[pos:])
    return "".join(out), own


def despace(text: str, rules: Collection[str] = RULES, words: Collection[str] | None = None,
            keep_map: bool = False) -> tuple[str, list[int] | None]:
    """``text`` with meaningless spacing removed, and (with ``keep_map``) each character's source offset."""
    owners = list(range(len(text))) if keep_map else None
    if "tex" in rules and "\\" in text:
        text, owners = _apply(text, _tex_edits(text), owners)
    if "spaced" in rules:
        text, owners = _apply(text, _spaced_edits(text, words), owners)
    if "decimal" in rules and "." in text:
        text, owners = _apply(text, _regex_edits(_DECIMAL, text), owners)
    if "cjk" in rules and cjk_dominant(text):
        text, owners = _apply(text, _regex_edits(_CJK_DIGITS, text), owners)
    return text, owners


def decontam_tokens(text: str, rules: Collection[str] = RULES, words: Collection[str] | None = None) -> list[str]:
    """The tokens decontamination compares: :func:`despace`, then :func:`corpus.normalize.math_tokens`."""
    return math_tokens(despace(text, rules, words)[0] if rules else text)


def decontam_token_spans(text: str, rules: Collection[str] = RULES,
                         words: Collection[str] | None = None) -> list[tuple[int, int]] | None:
    """``(start, end)`` in the original ``text`` of each :func:`decontam_tokens` token (None: see
    :func:`corpus.normalize.source_token_spans`)."""
    if not rules:
        return source_token_spans(text)
    joined, owners = despace(text, rules, words, keep_map=True)
    spans = source_token_spans(joined)
    if spans is None or owners is None:
        return None
    return [(owners[a], owners[b - 1] + 1) for a, b in spans]


Tokenizer = Callable[[str], list[str]]

"""The first pass over raw pages: cheap signals decide which pages get the math-aware extraction.

Per page (:func:`first_pass_signals`): formula-markup counts from the raw bytes, a fast plain-text view
(Resiliparse ``extract_plain_text``, a few ms a page against tens for trafilatura), a language guess
(Resiliparse ``detect_fast``) and the score of a high-recall fastText model on :func:`model_text` (markup
tokens + the fast view). :func:`decide` makes the call: a page is a candidate when its score reaches the
model's threshold, when it carries enough formula markup, or when its domain was found math-rich in an earlier
recall round. Everything else goes to removed/ with its signals, so a later round can re-decide without
reading the crawl again (:func:`math_rich_domains`).

The scorer is passed in (``Callable[[str], float]``): ``corpus`` imports no classifier code.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

Scorer = Callable[[str], float]

# formula markup in raw bytes (lower-cased): each literal is a formula or a formula engine's own container
MARKUP: dict[str, tuple[bytes, ...]] = {
    "mathml": (b"<math", b"<m:math"),
    "tex_script": (b"math/tex",),
    "latex_img": (b"mwe-math-fallback", b"_images/math/", b"class=\"math\"", b"class=\"math-", b"codecogs",
                  b"alt=\"\\", b"alt='\\", b"latex.php", b"mimetex", b"arithmatex"),
    "d_math": (b"<d-math", b"<dt-math"),
    "tex_delims": (b"\\(", b"\\[", b"$$", b"\\begin{"),
    "mjx": (b"<mjx-container",),
}
CLASSED: dict[str, re.Pattern] = {
    "katex": re.compile(rb"class=[\"'](?:[^\"'>]{0,80}\s)?katex[\s\"']"),
    "mathjax": re.compile(rb"class=[\"'](?:[^\"'>]{0,80}\s)?mathjax(?:_preview|_display|_svg|_chtml)?[\s\"']"),
}
HTML_LANG = re.compile(rb"<html[^>]{0,300}?\slang=[\"']?([a-z]{2,3})")
ENGINES = (b"mathjax", b"katex", b"mathml", b"asciimath")

# words of math prose (English and Chinese, lower-cased bytes): word problems carry no markup
MATH_WORDS = (b"equation", b"theorem", b"formula", b"geometry", b"algebra", b"arithmetic", b"calculus",
              b"probabilit", b"lemma", b"integral", b"derivative", b"polynomial", *(w.encode() for w in (
                  "数学", "方程", "定理", "函数")))
# where code starts and ends: TeX delimiters inside <script>/<style> are JavaScript, JSON or CSS, not formulas
OPENERS, CLOSERS = (b"<script", b"<style"), (b"</script", b"</style")
IN_CODE = b"in_code:"  # key prefix of the TeX-delimiter counts inside code (see literal_counts)
# every literal the first pass looks for: one Aho-Corasick pass over the page counts them all
LITERALS: tuple[bytes, ...] = tuple(dict.fromkeys(
    [lit for lits in MARKUP.values() for lit in lits]
    + [*ENGINES, *MATH_WORDS, b"math", b"math.", *OPENERS, *CLOSERS]))
_OPEN = frozenset(LITERALS.index(x) for x in OPENERS)
_CLOSE = frozenset(LITERALS.index(x) for x in CLOSERS)
_DELIM = frozenset(LITERALS.index(x) for x in (*MARKUP["tex_delims"], *MATH_WORDS, b"math", b"math."))
_scanner = None


@dataclass
class FirstPassSettings:
    """The first pass's decision rule (the model's own threshold unless ``threshold`` is set)."""

    threshold: float | None = None
    min_markup: int = 3  # formula markup items that make a page a candidate whatever its score
    min_cues: int = 2  # kinds of math hint (markup, an engine, "math", each math word) a page needs to be parsed
    text_chars: int = 20_000  # the fast view is cut here (the model reads a window of it anyway)
    domains: frozenset[str] = frozenset()  # math-rich domains from earlier recall rounds: always candidates


@dataclass
class Signals:
    """What the first pass knows about a page (stored with every removed page)."""

    markup: dict[str, int] = field(default_factory=dict)
    engine: bool = False
    lang: str = ""
    lang_score: float = 0.0
    text_chars: int = 0
    score: float = 0.0
    cue: bool = True  # enough hints of math in the bytes (else the page is not parsed: no score, lang from <html lang>)
    cues: int = 0  # kinds of math hint in the bytes (see cue_count)
    candidate: bool = False
    reason: str = ""

    @property
    def formulas(self) -> int:
        return sum(self.markup.values())

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ({}, "")}


def literal_counts(low: bytes) -> dict[bytes, int]:
    """How often each of :data:`LITERALS` occurs in the page's lower-cased bytes (the non-zero ones), from one
    multi-pattern scan (``ahocorasick_rs``, overlapping matches: ``math`` is also counted inside ``<math``).
    TeX delimiters met inside ``<script>``/``<style>`` are also counted under ``IN_CODE + literal``: on a page
    without a math engine, code (regular expressions, JSON, jQuery's ``$$``) is no formula markup."""
    global _scanner
    if _scanner is None:
        from ahocorasick_rs import BytesAhoCorasick

        _scanner = BytesAhoCorasick(list(LITERALS))
    hits: Counter[int] = Counter()
    hidden: Counter[int] = Counter()
    in_code = False
    for i, _, _ in _scanner.find_matches_as_indexes(low, overlapping=True):  # in the order of the page
        hits[i] += 1
        if i in _OPEN:
            in_code = True
        elif i in _CLOSE:
            in_code = False
        elif in_code and i in _DELIM:
            hidden[i] += 1
    return {LITERALS[i]: n for i, n in hits.items()} | {IN_CODE + LITERALS[i]: n for i, n in hidden.items()}


def markup_counts(low: bytes, hits: Mapping[bytes, int] | None = None) -> dict[str, int]:
    """How many formula-markup items of each kind the raw page (lower-cased bytes) holds (the non-zero ones);
    ``hits``: its :func:`literal_counts` when already known."""
    hits = literal_counts(low) if hits is None else hits
    code = 0 if any(e in hits for e in ENGINES) else 1  # a math engine's config lists its delimiters: they count
    out = {name: sum(hits.get(lit, 0) - code * hits.get(IN_CODE + lit, 0) for lit in lits)
           for name, lits in MARKUP.items()}
    for name, rx in CLASSED.items():
        if name.encode() in hits:
            out[name] = len(rx.findall(low))
    return {k: v for k, v in out.items() if v}


def cue_count(hits: Mapping[bytes, int], formulas: int) -> int:
    """How many kinds of math hint the raw page gives (its :func:`literal_counts`): formula markup, a math engine,
    the word "math" outside code other than JavaScript's ``Math.`` object (mathematics, math class names, URLs),
    and each word of math prose outside code."""
    def prose(lit: bytes) -> int:
        return hits.get(lit, 0) - hits.get(IN_CODE + lit, 0)

    return ((formulas > 0) + any(e in hits for e in ENGINES) + (prose(b"math") > prose(b"math."))
            + sum(prose(w) > 0 for w in MATH_WORDS))


def math_cue(hits: Mapping[bytes, int], formulas: int, min_cues: int = 1) -> bool:
    """Whether the raw page gives at least ``min_cues`` kinds of math hint (:func:`cue_count`). Pages without
    are neither decoded nor parsed."""
    return cue_count(hits, formulas) >= min_cues


def fast_view(html: str, max_chars: int = 20_000) -> str:
    """The page's visible text (alt texts kept: LaTeX images carry their TeX there), whitespace collapsed."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    text = extract_plain_text(HTMLTree.parse(html), main_content=False, alt_texts=True, preserve_formatting=False)
    return text[:max_chars]


def model_text(signals: Signals, text: str) -> str:
    """What the first-pass model reads: one token per markup kind present (``mkmathml`` ...) and the fast view."""
    marks = " ".join(f"mk{k.replace('_', '')}" for k in sorted(signals.markup))
    if signals.engine:
        marks += " mkengine"
    return f"{marks} {text}".strip()


def first_pass_signals(raw: bytes, html: str | Callable[[], str], scorer: Scorer | None,
                       max_chars: int = 20_000, enough_markup: int = 0,
                       min_cues: int = FirstPassSettings.min_cues) -> tuple[Signals, str]:
    """``(signals, fast view)`` of one page: ``raw`` its bytes, ``html`` the same page decoded (or a function
    that decodes it: a page with fewer than ``min_cues`` kinds of math hint is neither decoded nor parsed, and
    gets no score; nor is a page
    with at least ``enough_markup`` formula-markup items, a candidate whatever its score; 0: always scored)."""
    from resiliparse.parse.lang import detect_fast

    low = raw.lower()
    hits = literal_counts(low)
    sig = Signals(markup=markup_counts(low, hits), engine=any(e in hits for e in ENGINES))
    sig.cues = cue_count(hits, sig.formulas)
    sig.cue = sig.cues >= min_cues
    if not sig.cue or 0 < enough_markup <= sig.formulas:
        m = HTML_LANG.search(low, 0, 20_000)
        sig.lang = m.group(1).decode() if m else ""
        return sig, ""
    text = fast_view(html if isinstance(html, str) else html(), max_chars)
    sig.text_chars = len(text)
    if text.strip():
        sig.lang, score = detect_fast(text[:4000])
        sig.lang_score = float(score)
    if scorer is not None:
        sig.score = round(float(scorer(model_text(sig, text))), 6)  # thresholds are floored to 6 decimals
    return sig, text


def decide(sig: Signals, domain: str | None, threshold: float, settings: FirstPassSettings) -> Signals:
    """Candidate or not, with the reason (``score``, ``markup``, ``domain``; ``no_math_cue`` or
    ``below_threshold`` when not)."""
    if sig.cue and sig.score >= threshold:
        sig.candidate, sig.reason = True, "score"
    elif sig.formulas >= settings.min_markup:
        sig.candidate, sig.reason = True, "markup"
    elif domain and domain in settings.domains:
        sig.candidate, sig.reason = True, "domain"
    else:
        sig.candidate, sig.reason = False, "below_threshold" if sig.cue else "no_math_cue"
    return sig


def math_rich_domains(rows: Iterable[Mapping[str, Any]], *, min_share: float = 0.3, min_pages: int = 2,
                      known: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Domains whose first-pass pool is math-rich: ``{domain: {pages, candidates, share}}``.

    ``rows``: every page of the pool, candidate or removed (``domain`` and ``candidate``; ``math`` when the full
    extraction + classifier confirmed a candidate, which then counts instead). A domain is math-rich when at
    least ``min_pages`` of its pages were confirmed (or candidates) and they are at least ``min_share`` of its
    pages; domains already in ``known`` are left out (they were expanded in an earlier round)."""
    pages, hits = Counter(), Counter()
    for r in rows:
        d = r.get("domain")
        if not d:
            continue
        pages[d] += 1
        if r.get("math", r.get("candidate")):
            hits[d] += 1
    done = set(known)
    return {d: {"pages": pages[d], "candidates": hits[d], "share": round(hits[d] / pages[d], 4)}
            for d in sorted(pages) if d not in done and hits[d] >= min_pages and hits[d] / pages[d] >= min_share}

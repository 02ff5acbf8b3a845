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

# formula markup in raw bytes (lower-cased), counted with bytes.count (a C loop): each literal is a formula or a
# formula engine's own container; KaTeX/MathJax class names need a regex, run only when the word is in the page
COUNTED: dict[str, tuple[bytes, ...]] = {
    "mathml": (b"<math", b"<m:math"),
    "tex_script": (b"math/tex",),
    "tex_delims": (b"\\(", b"\\[", b"$$", b"\\begin{"),
    "latex_img": (b"codecogs", b"latex.php", b"mimetex", b"mwe-math-fallback", b"alt=\"\\", b"alt='\\",
                  b"_images/math/", b"class=\"math\"", b"class=\"math-", b"class=\"arithmatex"),
    "d_math": (b"<d-math", b"<dt-math"),
    "mjx": (b"<mjx-container",),
}
CLASSED: dict[str, re.Pattern] = {
    "katex": re.compile(rb"class=[\"'](?:[^\"'>]{0,80}\s)?katex[\s\"']"),
    "mathjax": re.compile(rb"class=[\"'](?:[^\"'>]{0,80}\s)?mathjax(?:_preview|_display|_svg|_chtml)?[\s\"']"),
}
ENGINES = (b"mathjax", b"katex", b"mathml", b"asciimath")


@dataclass
class FirstPassSettings:
    """The first pass's decision rule (the model's own threshold unless ``threshold`` is set)."""

    threshold: float | None = None
    min_markup: int = 3  # formula markup items that make a page a candidate whatever its score
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
    candidate: bool = False
    reason: str = ""

    @property
    def formulas(self) -> int:
        return sum(self.markup.values())

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ({}, "")}


def markup_counts(low: bytes) -> dict[str, int]:
    """How many formula-markup items of each kind the raw page (lower-cased bytes) holds (the non-zero ones)."""
    out = {}
    for name, literals in COUNTED.items():
        n = sum(low.count(lit) for lit in literals)
        if n:
            out[name] = n
    for name, rx in CLASSED.items():
        if name.encode() in low:
            n = len(rx.findall(low))
            if n:
                out[name] = n
    return out


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


def first_pass_signals(raw: bytes, html: str, scorer: Scorer | None, max_chars: int = 20_000) -> tuple[Signals, str]:
    """``(signals, fast view)`` of one page: ``raw`` its bytes, ``html`` the same page decoded."""
    from resiliparse.parse.lang import detect_fast

    low = raw.lower()
    sig = Signals(markup=markup_counts(low), engine=any(e in low for e in ENGINES))
    text = fast_view(html, max_chars)
    sig.text_chars = len(text)
    if text.strip():
        sig.lang, score = detect_fast(text[:4000])
        sig.lang_score = float(score)
    if scorer is not None:
        sig.score = round(float(scorer(model_text(sig, text))), 5)
    return sig, text


def decide(sig: Signals, domain: str | None, threshold: float, settings: FirstPassSettings) -> Signals:
    """Candidate or not, with the reason (``score``, ``markup``, ``domain``; ``below_threshold`` when not)."""
    if sig.score >= threshold:
        sig.candidate, sig.reason = True, "score"
    elif sig.formulas >= settings.min_markup:
        sig.candidate, sig.reason = True, "markup"
    elif domain and domain in settings.domains:
        sig.candidate, sig.reason = True, "domain"
    else:
        sig.candidate, sig.reason = False, "below_threshold"
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

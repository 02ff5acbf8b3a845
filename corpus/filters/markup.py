"""Where the formulas and code are: spans of LaTeX math, TeX environments and code in a text.

Language ID must not read ``\\frac{a}{b}`` or ``for i in range(n)`` as a language, and prose statistics
(average word length, stop words) must be computed on the prose only, while formulas still count as
content everywhere else. :func:`strip_markup` removes those spans and TeX commands, leaving the prose.
"""

from __future__ import annotations

import re

# Code: fenced blocks and inline code.
_CODE = r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]{1,200}`|\[asy\].*?(?:\[/asy\]|\Z)"
# Display and inline math: $$..$$, \[..\], \(..\), $..$ (single-line-ish), and math/code environments.
_MATH_ENVS = (
    r"equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign|split|cases|array|[pbvBV]?matrix"
    r"|tikzpicture|tikzcd|xy|diagram|lstlisting|verbatim|minted|code"
)
_MATH = (
    r"\$\$.+?\$\$"
    r"|\\\[.+?\\\]"
    r"|\\\(.+?\\\)"
    r"|(?<![\\$])\$(?!\s)[^$\n]{1,400}?(?:\n[^$\n]{0,400}?)?(?<![\\\s])\$"
    rf"|\\begin\{{({_MATH_ENVS})\*?\}}.*?\\end\{{\1\*?\}}"
)
MARKUP_RE = re.compile(f"{_CODE}|{_MATH}", re.DOTALL)
# What is left of TeX after the spans: commands (\emph, \section, \cite{...} keys are noise too).
_TEX_REF = re.compile(
    r"\\(?:cite|ref|eqref|label|cref|Cref|url|href|includegraphics|input|include)\*?(?:\[[^\]]*\])?\{[^}]*\}")
_TEX_CMD = re.compile(r"\\[a-zA-Z@]+\*?|\\.")
_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+")

# Scripts (code point ranges) used by language ID and the prose statistics.
HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
KANA_RE = re.compile(r"[\u3040-\u30ff]")
HANGUL_RE = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
LATIN_WORD_RE = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")


def markup_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every math / code span of ``text``, in order, non-overlapping."""
    return [m.span() for m in MARKUP_RE.finditer(text)]


def strip_markup(text: str) -> str:
    """The prose of ``text``: math and code spans, TeX commands and citations, URLs and e-mails removed."""
    text = MARKUP_RE.sub(" ", text)
    text = _TEX_REF.sub(" ", text)
    text = _TEX_CMD.sub(" ", text)
    return _URL.sub(" ", text)


def markup_fraction(text: str) -> float:
    """Share of the characters of ``text`` that sit in math or code spans."""
    if not text:
        return 0.0
    return sum(e - s for s, e in markup_spans(text)) / len(text)

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


# Lines of code, listings and generated API docs that extraction left outside code fences: judged as prose
# they look repetitive (``for (int i = 0; i < n; i++)``, line-number gutters ``1 2 3 4``, hex dumps, numpydoc
# ``x : array_like`` parameter lines, ``>>>`` sessions), so the repetition rules leave them out.
_CODE_START = re.compile(
    r"\s*(?:>>>|\.\.\.\s|\$ |In ?\[\d*\]:|Out ?\[\d*\]:|#include|#define|import |from [\w.]+ import|def |class \w"
    r"|return\b|for ?\(|while ?\(|if ?\(|else\b|elif |try:|except\b|public |private |static |const |let |var "
    r"|function\b|print ?\(|console\.|std::|using |package |module |end\b|\}|\{|@\w)")
_CODE_END = (";", "{", "}", "):", "{}", "[]", "()", ");", ",")
_CODE_CHARS = ";{}()[]=<>\"'`|&*/\\_.:#"
_DROP_CODE_CHARS = str.maketrans("", "", _CODE_CHARS)
_NUMERIC = re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|[\d.,:/%]+)")
_PARAM_LINE = re.compile(r"\s*\*{0,2}[\w.]+\*{0,2} ?: ?[\w\[\]{},.| ]{1,80}$")  # numpydoc "x : array_like"


def is_code_line(line: str) -> bool:
    """A line of code, a number listing (gutter, table row, hex dump) or a generated API parameter line."""
    s = line.strip()
    if not s:
        return False
    if _CODE_START.match(s) or s.endswith(_CODE_END) and any(c in s for c in "(){};="):
        return True
    if s.isdigit():
        return True
    tokens = s.split()
    if len(tokens) >= 3 and sum(1 for t in tokens if _NUMERIC.fullmatch(t)) >= 0.6 * len(tokens):
        return True
    if _PARAM_LINE.match(s) and " : " in s:
        return True
    dense = len(s) - len(s.translate(_DROP_CODE_CHARS))  # C-level count of the code characters
    return len(s) >= 8 and dense >= 0.15 * (len(s) - s.count(" "))


def strip_code_lines(text: str) -> str:
    """``text`` without its code-like lines (:func:`is_code_line`)."""
    return "\n".join(line for line in text.split("\n") if not is_code_line(line))

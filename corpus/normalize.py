"""Math-safe text normalization, shared by deduplication and decontamination.

Numbers, variables, operators and TeX commands are content: ``x^2+3x=10`` and ``x^2-5x=24`` must stay
different, and ``x^2+3x`` and ``x ^ 2 + 3 x`` must tokenize the same. So, unlike datatrove's default
``TextNormConfig`` (which maps every digit to 0), we:

* apply NFKC (full-width digits/punctuation -> ASCII) and case folding;
* drop TeX math delimiters (``$``, ``\\(``, ``\\[``, ...), TeX grouping braces and the punctuation that
  carries no math (``, . ; : ? " '`` ...);
* keep as tokens: words, numbers (``3.14`` is one token), TeX commands (``\\frac``), operators
  (``+ - * / = < > ^ _ ! | %`` and Unicode math symbols) and parentheses/brackets, which change meaning
  (``88 \\div (4 \\div 2)`` is not ``88 \\div 4 \\div 2``; ``[0, 1]`` is not ``(0, 1)``);
* split CJK text into one token per character (Chinese has no spaces; a 13-gram must be 13 characters).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"  # one token per char
# Order matters: TeX commands before words, numbers before operators. No capturing groups: findall returns
# the matches themselves (about 30 % faster than finditer + group()).
_TOKEN_RE = re.compile(
    rf"""
    (?:\\[a-z]+)                                     # \frac, \alpha ...
  | (?:\d+(?:\.\d+)?)                                # 12, 3.14
  | (?:[{CJK_CHARS}])
  | (?:[^\W\d_{CJK_CHARS}]+)                              # letters (after NFKC + casefold), not CJK
  | (?:[+\-*/=<>^_!|%~&()\[\]]|[\u2190-\u21ff\u2200-\u22ff\u27c0-\u27ef\u2980-\u2aff\u00b1\u00d7\u00f7\u00ac])
    """,
    re.VERBOSE,
)
# TeX spacing and delimiter commands that carry no content.
_TEX_NOISE = re.compile(r"\\(?:[()\[\]{},;:! ]|(?:left|right|big|bigg|Big|Bigg|displaystyle|quad|qquad)(?![a-zA-Z]))")


def fold(text: str) -> str:
    """NFKC + case folding + TeX delimiter/spacing commands removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _TEX_NOISE.sub(" ", text)
    return text.casefold()


def math_tokens(text: str) -> list[str]:
    """Math-safe tokens of ``text`` (see module docstring)."""
    return _TOKEN_RE.findall(fold(text))


def iter_token_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """Tokens with their ``(start, end)`` offsets in :func:`fold(text) <fold>`.

    NFKC can change lengths, so offsets refer to the folded string; use them with ``fold(text)``.
    """
    for m in _TOKEN_RE.finditer(fold(text)):
        yield m.group(), m.start(), m.end()


def normalize_text(text: str) -> str:
    """The normalized content as one string (tokens joined by single spaces): the key for exact dedup."""
    return " ".join(math_tokens(text))


def ngrams(tokens: list[str], n: int) -> Iterator[tuple[str, ...]]:
    """Contiguous n-grams of a token list (none when it is shorter than n)."""
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def source_token_spans(text: str) -> list[tuple[int, int]] | None:
    """``(start, end)`` offsets in the *original* ``text`` of each token of :func:`math_tokens`.

    Folds character by character (keeping an offset map) so snippets can be cut from the text as written.
    Returns ``None`` in the rare cases where per-character folding does not reproduce :func:`math_tokens`
    (NFKC composition across characters); callers then fall back to :func:`iter_token_spans`.
    """
    chars: list[str] = []
    owners: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch):
            chars.append(c)
            owners.append(i)
    nfkc = "".join(chars)
    # same-length blanking keeps the offset map valid; token boundaries are unaffected by extra spaces
    nfkc = _TEX_NOISE.sub(lambda m: " " * (m.end() - m.start()), nfkc)
    folded: list[str] = []
    fowners: list[int] = []
    for c, owner in zip(nfkc, owners, strict=True):
        for f in c.casefold():
            folded.append(f)
            fowners.append(owner)
    spans = []
    tokens = []
    for m in _TOKEN_RE.finditer("".join(folded)):
        tokens.append(m.group())
        spans.append((fowners[m.start()], fowners[m.end() - 1] + 1))
    return spans if tokens == math_tokens(text) else None

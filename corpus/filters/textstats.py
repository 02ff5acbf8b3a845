"""One pass of text statistics shared by every heuristic (computed lazily, once per document)."""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property

from corpus.filters.markup import HAN_RE, LATIN_WORD_RE, MARKUP_RE, strip_code_lines, strip_markup
from corpus.normalize import math_tokens

_PARA_RE = re.compile(r"\n\s*\n")
_NON_CONTENT_RE = re.compile(r"[\W_]+")
_MATH_OPS = frozenset("=+^_<>*")
# A "word" carries content when it has a letter, digit, CJK character, TeX command or math symbol.
_MATH_CHARS = set("+-*/=<>^_|~\\$(){}[]%!&'")


def is_content_word(word: str) -> bool:
    """Letters, digits, CJK, TeX and math operators/brackets are content; pure decoration (``»``, ``•``,
    ``***``, ``...``, ``|``-less punctuation) is not."""
    for ch in word:
        if ch.isalnum() or ch in _MATH_CHARS:
            return True
        cat = unicodedata.category(ch)
        if cat == "Sm" or cat.startswith("L") or cat.startswith("N"):
            return True
    return False


def is_junk_char(ch: str) -> bool:
    """Replacement characters, controls (except whitespace), private-use, surrogates and unassigned."""
    if ch in "\n\r\t":
        return False
    return ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn")


class TextStats:
    """Lines, paragraphs, words and math-safe tokens of one document."""

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def lines(self) -> list[str]:
        """Non-empty lines, stripped."""
        return [s for s in (line.strip() for line in self.text.splitlines()) if s]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [s for s in (p.strip() for p in _PARA_RE.split(self.text)) if s]

    @cached_property
    def words(self) -> list[str]:
        """Whitespace-separated words (a Chinese sentence is one "word": use :attr:`tokens` for counts)."""
        return self.text.split()

    @cached_property
    def tokens(self) -> list[str]:
        """Math-safe content units (:func:`corpus.normalize.math_tokens`): words, numbers, TeX commands,
        operators, one per CJK character."""
        return math_tokens(self.text)

    @cached_property
    def prose(self) -> str:
        """The text without formulas, code and TeX commands."""
        return strip_markup(self.text)

    @cached_property
    def repetition_text(self) -> str:
        """The text the repetition rules judge: without code-like lines outside code fences (unfenced code,
        line-number gutters, number listings, generated API parameter lines: :func:`is_code_line`)."""
        return strip_code_lines(self.text)

    @cached_property
    def repetition_prose(self) -> str:
        return self.prose if self.repetition_text == self.text else strip_markup(self.repetition_text)

    @cached_property
    def prose_lines(self) -> list[str]:
        """Lines of the prose reduced to their words (a multi-line formula or code block disappears)."""
        return [s for s in (_NON_CONTENT_RE.sub(" ", line).strip() for line in self.repetition_prose.splitlines())
                if s]

    @cached_property
    def prose_paragraphs(self) -> list[str]:
        return [s for s in (_NON_CONTENT_RE.sub(" ", p).strip() for p in _PARA_RE.split(self.repetition_prose))
                if s]

    @cached_property
    def n_words(self) -> int:
        """Whitespace words plus CJK characters (Chinese has no spaces): the denominator of per-word ratios."""
        return len(self.words) + len(HAN_RE.findall(self.text))

    @cached_property
    def prose_segments(self) -> list[list[str]]:
        """Words, numbers and CJK characters of the prose between formulas/code blocks (operators left out):
        the units of the n-gram repetition rules. An n-gram never spans a formula, so derivations repeating
        ``= \\frac{1}{2}`` and phrases around different formulas are not "repetitive"."""
        segments = []
        for part in MARKUP_RE.split(self.repetition_text):
            if part:
                units = [t for t in math_tokens(strip_markup(part)) if t[0].isalnum()]
                if units:
                    segments.append(units)
        return segments

    @cached_property
    def n_prose_units(self) -> int:
        return sum(len(s) for s in self.prose_segments)

    @cached_property
    def prose_words(self) -> list[str]:
        """Latin-script words of the prose."""
        return LATIN_WORD_RE.findall(self.prose)

    @cached_property
    def n_han(self) -> int:
        return len(HAN_RE.findall(self.prose))

    @cached_property
    def n_math_tokens(self) -> int:
        """Tokens that are TeX commands or math operators (``= + ^ _ < > *`` and Unicode math symbols); numbers,
        hyphens and slashes are left out (dates, prices and URLs are not math)."""
        return sum(1 for t in self.tokens
                   if t[0] == "\\" or t in _MATH_OPS or (len(t) == 1 and 0x2190 <= ord(t) <= 0x2BFF))

    @property
    def math_density(self) -> float:
        """Share of the tokens that are math (TeX commands, math operators)."""
        return self.n_math_tokens / len(self.tokens) if self.tokens else 0.0

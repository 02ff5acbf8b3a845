"""Text preprocessing for the fastText math classifiers (training and scoring use the same function).

fastText splits on whitespace and sees each line as one example, so we turn a document into one line of
space-separated tokens that keep the math signal:

* the input is cut to ``max_chars`` characters *first* (before any normalization), and the output to
  ``max_tokens`` tokens: the head of a document is enough to recognize math, and fastText's cost grows
  with the tokens it is given;
* NFKC + case folding (:func:`corpus.normalize.fold`, shared with dedup/decontam; its semantics are untouched);
* TeX commands are tokens (``\\frac``), and so are math delimiters (``\\(``/``\\[`` become ``$``), braces,
  operators and other symbols (``^ _ = { } $``): they are the strongest math evidence a page carries;
* numbers are normalized *for the classifier only*: every digit becomes ``0`` and runs are capped at 4
  (``2024`` -> ``0000``, ``3.14159`` -> ``0 . 0000``), so the model learns number shapes, not values;
* CJK text is one token per character (Chinese has no spaces), also next to Latin letters (``a和b`` ->
  ``a 和 b``); with ``wordNgrams=3`` fastText then sees character bi- and trigrams, a segmentation-free
  n-gram model for Chinese math text;
* newlines and other whitespace become single spaces.

Speed: text without CJK characters (most of it) is tokenized by inserting spaces around symbols with
``str.replace`` and splitting on whitespace (C-level passes, no per-token Python work); CJK text goes
through one ``findall`` of :data:`_TOKEN`, on the first ``2 * max_tokens`` characters when they hold enough
tokens. Both paths give the same tokens as ``_TOKEN.findall`` on the whole folded text.
"""

from __future__ import annotations

import re

from corpus.normalize import fold

MAX_CHARS = 3_000
MAX_TOKENS = 512

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_DELIMS = re.compile(r"\\[()\[\]]")
_TOKEN = re.compile(
    r"\\[a-z]+"                                 # TeX command
    r"|\d+"                                     # number (shape normalized)
    f"|[{_CJK}]"                                # CJK: one char per token
    rf"|[^\W\d_{_CJK}]+"                        # word
    r"|[^\s\w\u3000-\u303f\uff00-\uffef]"       # any other symbol: $ ^ _ = { } + < ...
    r"|_"                                       # subscript
)
_NUMBER = re.compile(r"\d+")
# non-CJK text: the non-ASCII symbols (CJK punctuation and full-width forms are separators, like whitespace),
# non-ASCII digits, and a backslash or a TeX command before a non-ASCII letter (``\\é`` is two tokens)
_NON_ASCII_SYMBOL = re.compile(r"[^\x00-\x7f\w\s]|[^\x00-\x7f\D]|\\[a-z]*+(?=[^\W\d_])")
_ZEROS = re.compile("0+")  # numbers once every digit is "0" (a literal scans faster than \d)
_SEPARATOR = re.compile(r"[\u3000-\u303f\uff00-\uffef]")
_ASCII_SYMBOLS = [(c, f" {c} ") for c in map(chr, range(128)) if not (c.isalnum() or c.isspace() or c == "\\")]


def _shape(m: re.Match) -> str:
    return "0" * min(len(m.group()), 4)


def _spaced_shape(m: re.Match) -> str:
    return f" {_shape(m)} "


def _spaced_symbol(m: re.Match) -> str:
    s = m.group()
    if s.isdecimal():
        return "0"
    return " " if _SEPARATOR.match(s) else f" {s} "


def _regex_line(tokens: list[str], max_tokens: int) -> str:
    return _NUMBER.sub(_shape, " ".join(tokens[:max_tokens]))


def prepare(text: str, max_chars: int = MAX_CHARS, max_tokens: int = MAX_TOKENS) -> str:
    """One line of classifier tokens for ``text`` (see the module docstring)."""
    text = _DELIMS.sub(" $ ", text[:max_chars])
    if not text.isascii() and _CJK_CHAR.search(text):
        # about one token per CJK character: try the head first. With more than max_tokens tokens in it, the
        # first max_tokens are exact (the cut can only change the head's last token).
        head = text[: 2 * max_tokens]
        tokens = _TOKEN.findall(fold(head))
        if len(tokens) > max_tokens or len(head) == len(text):
            return _regex_line(tokens, max_tokens)
    text = fold(text)
    if not text.isascii():
        if _CJK_CHAR.search(text):
            return _regex_line(_TOKEN.findall(text), max_tokens)
        text = _NON_ASCII_SYMBOL.sub(_spaced_symbol, text)
    for symbol, spaced in _ASCII_SYMBOLS:
        if symbol in text:
            text = text.replace(symbol, spaced)
    for digit in "123456789":
        if digit in text:
            text = text.replace(digit, "0")
    text = _ZEROS.sub(_spaced_shape, text.replace("\\", " \\"))
    return " ".join(text.split(None, max_tokens)[:max_tokens])

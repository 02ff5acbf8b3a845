"""Text preprocessing for the fastText math classifiers (training and scoring use the same function).

fastText splits on whitespace and sees each line as one example, so we turn a document into one line of
space-separated tokens that keep the math signal:

* NFKC + case folding (:func:`corpus.normalize.fold`, shared with dedup/decontam; its semantics are untouched);
* TeX commands are tokens (``\\frac``), and so are math delimiters (``\\(``/``\\[`` become ``$``), braces,
  operators and other symbols (``^ _ = { } $``): they are the strongest math evidence a page carries;
* numbers are normalized *for the classifier only*: every digit becomes ``0`` and runs are capped at 4
  (``2024`` -> ``0000``, ``3.14159`` -> ``0 . 0000``), so the model learns number shapes, not values;
* CJK text is one token per character (Chinese has no spaces); with ``wordNgrams=3`` fastText then sees
  character bi- and trigrams, which works as a segmentation-free n-gram model for Chinese math text;
* newlines are removed, and the input is capped at ``max_chars`` characters and ``max_tokens`` tokens.
"""

from __future__ import annotations

import re

from corpus.normalize import fold

MAX_CHARS = 20_000
MAX_TOKENS = 2_048

_DELIMS = re.compile(r"\\[()\[\]]")
_TOKEN = re.compile(
    r"""
    \\[a-z]+                                   # TeX command
  | \d+                                        # number (normalized below)
  | [\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]   # CJK: one char per token
  | [^\W\d_]+                                  # word
  | [^\s\w\u3000-\u303f\uff00-\uffef]          # any other symbol: $ ^ _ = { } + < ...
  | _                                          # subscript
    """,
    re.VERBOSE,
)
_NUMBER = re.compile(r"\d+")


def _num(m: re.Match) -> str:
    return "0" * min(len(m.group()), 4)


def prepare(text: str, max_chars: int = MAX_CHARS, max_tokens: int = MAX_TOKENS) -> str:
    """One line of classifier tokens for ``text`` (see the module docstring)."""
    text = _DELIMS.sub(" $ ", text[:max_chars])
    tokens = _TOKEN.findall(fold(text))
    if len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
    return _NUMBER.sub(_num, " ".join(tokens))

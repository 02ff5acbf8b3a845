"""Verification tokens: :func:`corpus.normalize.math_tokens`, each tagged as math symbol or not, in a figure or not.

The token diff in :mod:`.verify` needs to know which differing tokens are math: a number, a TeX command, a
variable or an operator replaced by another one makes a different problem (``QR`` vs ``PR``, ``+`` vs ``-``),
while an edited word is an ordinary edit. Inside math mode (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``,
equation environments, Asymptote/TikZ figures) every number, TeX command, operator and short letter run
(variables and point names: ``x``, ``QR``, ``ABCD``) is a symbol; outside it numbers, TeX commands,
single letters (not the words ``a``/``i``) and arithmetic operators are. Figure code (``[asy]``, TikZ) is
flagged so it does not count as text length. ``$`` pairs follow pandoc (no space after the opening or
before the closing ``$``, no digit after it), so ``$5 and $9`` is currency, not math.

Tokens are packed as uint32: 30 bits of hash plus :data:`SYMBOL_BIT` and :data:`FIGURE_BIT`.
"""

from __future__ import annotations

import re
from itertools import islice

import numpy as np
import xxhash

from corpus.normalize import CJK_CHARS, math_tokens

SYMBOL_BIT = np.uint32(1 << 31)
FIGURE_BIT = np.uint32(1 << 30)
HASH_MASK = np.uint32((1 << 30) - 1)

_MATH = re.compile(
    r"""
    (?=[$\\\[])  # fail fast where no delimiter starts
    (?: (?P<fig>\[asy\].{1,20000}?\[/asy\] | \\begin\{tikzpicture\}.{1,20000}?\\end\{tikzpicture\})
  | \$\$.{1,4000}?\$\$
  | (?<!\\)\\\[.{1,4000}?\\\]                           # not the line break \\[2pt]
  | (?<!\\)\\\(.{1,4000}?\\\)
  | \\begin\{(?P<env>equation|align|alignat|eqnarray|gather|multline|displaymath|math)\*?\}
      .{1,4000}?\\end\{(?P=env)\*?\}
  | (?<![\\$])\$(?=[^\s$])(?:[^$\\\n]|\\.|\n(?!\s*\n)){1,400}?(?<=[^\s\\])\$(?!\d) )
    """,
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)  # bounded spans: an unclosed delimiter costs at most one bounded scan
_NOT_VARIABLES = frozenset({"a", "i"})  # English words when outside math mode
_PLAIN_OPERATORS = frozenset("+=<>^*")  # outside math, - / | ( ) etc. are mostly punctuation


_CJK = re.compile(f"[{CJK_CHARS}]")


def _is_cjk(t: str) -> bool:
    return len(t) == 1 and _CJK.match(t) is not None


def is_symbol(token: str, in_math: bool) -> bool:
    """Whether ``token`` (from :func:`math_tokens`) is math content whose change makes a different problem."""
    c = token[0]
    if c.isdigit() or c == "\\":
        return True
    if not c.isalpha():  # operators, brackets, Unicode math symbols (all non-ASCII operator tokens are math)
        return in_math or c in _PLAIN_OPERATORS or not c.isascii()
    if in_math:
        return len(token) <= 4 and not _is_cjk(token)
    return len(token) == 1 and token not in _NOT_VARIABLES and not _is_cjk(token)


def _bits(token: str, in_math: bool, figure: bool) -> int:
    return (int(SYMBOL_BIT) if is_symbol(token, in_math) else 0) | (int(FIGURE_BIT) if figure else 0)


PLAIN, INLINE, FIGURE = 0, 1, 2  # segment contexts: columns of :attr:`Vocab.flags`
_CONTEXTS = ((False, False), (True, False), (True, True))


class Vocab(dict):
    """token -> row id; row ``i`` of :attr:`hashes` is the token's xxh3-64, of :attr:`flags` its flag bits in
    each context (plain text, math, figure). Rows are filled in bulk by :meth:`fill` (once per distinct token);
    :meth:`reset` bounds the vocabulary."""

    limit = 1 << 18

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.clear()
        self.filled = 0
        self.hashes = np.empty(4096, dtype=np.uint64)
        self.flags = np.empty((4096, 3), dtype=np.uint32)

    def __missing__(self, token: str) -> int:
        i = self[token] = len(self)
        return i

    def fill(self) -> None:
        """Hashes and flags of the tokens added since the last call."""
        n = len(self)
        if n == self.filled:
            return
        new = list(islice(reversed(self), n - self.filled))[::-1]
        if n > len(self.hashes):
            size = max(n, 2 * len(self.hashes))
            self.hashes = np.concatenate([self.hashes, np.empty(size - len(self.hashes), np.uint64)])
            self.flags = np.concatenate([self.flags, np.empty((size - len(self.flags), 3), np.uint32)])
        self.hashes[self.filled : n] = np.fromiter((xxhash.xxh3_64_intdigest(t.encode()) for t in new),
                                                   dtype=np.uint64, count=len(new))
        self.flags[self.filled : n] = [[_bits(t, m, f) for m, f in _CONTEXTS] for t in new]
        self.filled = n


def token_segments(text: str) -> tuple[list[str], list[int], list[int]]:
    """``math_tokens`` of ``text`` taken per math / non-math segment, with each segment's context
    (:data:`PLAIN`, :data:`INLINE`, :data:`FIGURE`) and token count."""
    tokens: list[str] = []
    contexts: list[int] = []
    counts: list[int] = []
    pos = 0
    for m in _MATH.finditer(text):
        start, end = m.span()
        if start > pos:
            toks = math_tokens(text[pos:start])
            tokens += toks
            contexts.append(PLAIN)
            counts.append(len(toks))
        toks = math_tokens(m.group())
        tokens += toks
        contexts.append(INLINE if m.group("fig") is None else FIGURE)
        counts.append(len(toks))
        pos = end
    if pos < len(text):
        toks = math_tokens(text[pos:] if pos else text)
        tokens += toks
        contexts.append(PLAIN)
        counts.append(len(toks))
    return tokens, contexts, counts


def classified_tokens(text: str) -> tuple[list[str], list[int]]:
    """``math_tokens`` of ``text`` (taken per math / non-math segment) and their flag bits."""
    tokens, contexts, counts = token_segments(text)
    ctx = [c for c, k in zip(contexts, counts, strict=True) for _ in range(k)]
    return tokens, [_bits(t, *_CONTEXTS[c]) for t, c in zip(tokens, ctx, strict=True)]


def pack_tokens(tokens: list[str], flags: list[int], hashes: np.ndarray | None = None) -> np.ndarray:
    """uint32 codes: 30-bit token hash | flag bits (``hashes``: precomputed 64-bit token hashes)."""
    if hashes is None:
        hashes = np.fromiter((xxhash.xxh3_64_intdigest(t.encode()) for t in tokens), dtype=np.uint64,
                             count=len(tokens))
    return (hashes & np.uint64(int(HASH_MASK))).astype(np.uint32) | np.asarray(flags, dtype=np.uint32)

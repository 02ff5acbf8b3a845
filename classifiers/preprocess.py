"""Text preprocessing for the fastText math classifiers (training and scoring use the same function).

fastText splits on whitespace and sees each line as one example, so we turn a document into one line of
space-separated tokens that keep the math signal:

* math-signal tokens come first: how many backslashes (TeX commands), ``$`` delimiters, ``^``/``_``
  scripts, ``=`` and ``{`` the document holds in its first :data:`SIGNAL_CHARS` characters (more than the
  words see: long articles often open with prose), each as a log2 bucket (``__tex5``, ``__dollar0`` ...).
  fastText learns a weight per bucket, like a keyword prefilter's rule but as evidence next to the words.
  They are repeated :data:`SIGNAL_REPEAT` times because fastText averages the embeddings of a line's
  tokens: one token among 200 would hardly count;
* with :class:`Features` ``density`` (version 3), the same counts per 1 000 characters (``__texd3``: a long
  code or news page collects as many ``=`` as a short derivation), ``$`` before a digit counted apart as
  prices (``__price``), program operators and statement ends outside fences (``==``, ``&&``, ``;`` + newline:
  ``__prog``) and the share of fenced code (``__code2``). With ``strip_code``, fenced code blocks are left out
  of the counts and the words (a shell block's ``$dir`` is not a formula). Counts see the first
  :data:`SIGNAL_CHARS` characters (a thesis chapter's first formula can come after 35 000 characters of prose);
* the words come from a window of ``max_chars`` characters, cut *before* any other work: the head, or, when
  the first formula delimiter comes after the head, half head and half from just before that delimiter;
  the output is capped at ``max_tokens`` tokens. fastText's cost grows with the tokens it is given, and
  the head plus the markup counts are enough to recognize math;
* NFKC (only when the text is not NFKC already; frequent full-width punctuation is mapped first) + case
  folding;
* TeX commands are tokens (``\\frac``), and so are math delimiters (``\\(``/``\\[`` become ``$``), braces,
  operators and other symbols (``^ _ = { } $``);
* numbers are normalized *for the classifier only*: every digit becomes ``0`` and runs are capped at 4
  (``2024`` -> ``0000``, ``3.14159`` -> ``0 . 0000``; a number stays glued to letters it touches: ``x2`` ->
  ``x0``), so the model learns number shapes;
* CJK text is one token per character (Chinese has no spaces), also next to Latin letters (``a和b`` ->
  ``a 和 b``); with ``wordNgrams=3`` fastText then sees character bi- and trigrams, a segmentation-free
  n-gram model for Chinese. Text whose first ``2 * max_tokens`` characters are mostly CJK (>= 2.5 UTF-8
  bytes per character) is cut there (they hold about ``max_tokens`` tokens);
* newlines and other whitespace become single spaces.

Speed: every step is a C-level string pass (``str.count``/``find``/``translate``/``replace``/``split``/
``join``, one ``re`` split with a group for symbols and CJK characters); no per-token or per-match Python code.
The markup counts run on the page's markup bytes only (:func:`_marks`: one ``translate`` pass) and count a
program pattern on the text only where it can occur: the same counts as ``str.count`` per pattern, a third of
the time (17 passes over up to :data:`SIGNAL_CHARS` characters were half of the preprocessing); the window
searches only the delimiters those counts say are there.
:data:`VERSION` is recorded in model cards: a model is only scored with the preprocessing it was trained with.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from corpus.normalize import CJK_CHARS

VERSION = 3  # 1: no signal tokens, head only, numbers split from letters, 3 000 chars / 512 tokens; 2: no
# code/density tokens, markup counted in code blocks too
MAX_CHARS = 1_000
MAX_TOKENS = 192
SIGNAL_REPEAT = 8
SIGNAL_CHARS = 100_000

# CJK characters, non-ASCII symbols and ASCII symbols (the backslash aside: it starts a TeX command) become
# tokens of their own: one ``re.split`` (the group keeps them) instead of a replace pass per symbol
_SYMBOLS = "".join(re.escape(c) for c in map(chr, range(128)) if not (c.isalnum() or c.isspace() or c == "\\"))
_OWN_TOKEN = re.compile(f"([{CJK_CHARS}{_SYMBOLS}]|[^\\x00-\\x7f\\w\\s])")
# the most frequent non-ASCII characters of web/book text, replaced by plain passes before any regex or NFKC:
# full-width punctuation by its NFKC form, typographic punctuation and CJK punctuation spaced as tokens
_COMMON = [(c, unicodedata.normalize("NFKC", c)) for c in "，：（）；．？！＝＋－＜＞％"] + [
    (c, f" {c} ") for c in "’‘“”—–…•·«»、。《》「」【】"] + [("\xa0", " "), ("\u3000", " ")]
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789", "abcdefghijklmnopqrstuvwxyz000000000")
_DELIMS = (("\\(", " $ "), ("\\)", " $ "), ("\\[", " $ "), ("\\]", " $ "))
# (name, substrings counted): a count c becomes level min(c.bit_length(), SIGNAL_LEVELS): 0, 1, 2-3, 4-7, ...
_SIGNALS = (
    ("tex", ("\\",)),
    ("dollar", ("$",)),
    ("script", ("^", "_")),
    ("eq", ("=",)),
    ("brace", ("{",)),
)
SIGNAL_LEVELS = 9
# code and templates outside fences: operators, statement ends, comments
_PROGRAM = ("==", "&&", "||", "();", "=>", "{{", "->", ";\n", "{\n", "}\n", "){")
FENCE = "```"
_PRICE = re.compile(r"\$[0-9]")
# markup counting on bytes (see _marks): the ASCII characters of the patterns above, digits mapped to 0
_SIGNALS_B = tuple((name, tuple(c.encode() for c in subs)) for name, subs in _SIGNALS)
_PROGRAM_B = tuple((p, p.encode()) for p in _PROGRAM)
_MARK_KEEP = set("".join(c for _, subs in _SIGNALS for c in subs).encode() + "".join(_PROGRAM).encode() + b"$0")
_MARK_DROP = bytes(sorted(set(range(256)) - _MARK_KEEP - set(b"123456789")))
_MARK_DIGITS = bytes.maketrans(b"123456789", b"000000000")


@dataclass(frozen=True)
class Features:
    """What :func:`prepare` adds to the words (recorded in the model card; the ablation table toggles them)."""

    signals: bool = True  # log2 counts of math markup (``__tex5``)
    density: bool = True  # markup per 1 000 characters (``__texd3``) and the code share (``__code2``)
    strip_code: bool = True  # markup counted and words read outside fenced code blocks

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)


DEFAULT_FEATURES = Features()


def split_code(text: str) -> tuple[str, int]:
    """``(text without its fenced code blocks, characters of code)``: `$dir`, ``a = {}`` and ``\\n`` in a
    shell or C block are not math markup."""
    if FENCE not in text:
        return text, 0
    parts = text.split(FENCE)
    return "\n".join(parts[0::2]), sum(len(p) for p in parts[1::2])


def _marks(text: str) -> bytes:
    """The ASCII markup characters of ``text`` in order (digits as ``0``), everything else left out: one
    ``encode`` and one ``bytes.translate`` pass. Counts of single characters in it are exact (UTF-8 never uses
    ASCII bytes inside other characters); a multi-character pattern absent from it is absent from ``text``
    (leaving characters out only joins neighbours), so the exact count on ``text`` runs only where it can
    be non-zero."""
    return text.encode("utf-8", "ignore").translate(_MARK_DIGITS, _MARK_DROP)


def markup_counts(text: str, density: bool = False) -> list[tuple[str, int]]:
    """``[(name, count)]`` of :data:`_SIGNALS` in ``text`` (with ``density``: prices apart from ``$``, and
    the program operators); the same numbers as ``str.count`` per substring, in about a third of the time."""
    marks = _marks(text)
    counts = [(name, sum(marks.count(c) for c in subs)) for name, subs in _SIGNALS_B]
    if density:
        prices = len(_PRICE.findall(text)) if b"$0" in marks else 0  # one pass (ten str.count passes cost 15x)
        counts[1] = ("dollar", counts[1][1] - prices)  # "$10": a price, not a formula
        prog = sum(text.count(p) for p, b in _PROGRAM_B if b in marks)
        counts += [("price", prices), ("prog", prog)]
    return counts


def signal_tokens(text: str, code_chars: int = 0, density: bool = False,
                  counts: list[tuple[str, int]] | None = None) -> list[str]:
    """Log2-bucketed counts of math markup in ``text``: ``["__tex5", "__dollar0", ...]`` (level 0, no such
    markup at all, is evidence too: plain prose); with ``density``, also per 1 000 characters (a long code
    or news page collects as many ``=`` as a short derivation) and the share of code in tenths."""
    if counts is None:
        counts = markup_counts(text, density)
    out = [f"__{name}{min(n.bit_length(), SIGNAL_LEVELS)}" for name, n in counts]
    if density:
        kchars = max(len(text), 200) / 1000
        out += [f"__{name}d{min(int(n / kchars).bit_length(), SIGNAL_LEVELS)}" for name, n in counts]
        out.append(f"__code{min(10 * code_chars // max(len(text) + code_chars, 1), 9)}")
    return out


def _window(text: str, max_chars: int, delims: tuple[str, ...] = ("$", "\\(", "\\[")) -> str:
    """The first ``max_chars`` characters, or, when the first formula delimiter comes later, the first half
    of them plus a half starting just before that delimiter (long articles often open with prose).
    ``delims``: the delimiters to look for (the ones the markup counts say the text can hold)."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    starts = [i for i in (text.find(d, half, SIGNAL_CHARS) for d in delims) if i >= 0]
    if not starts or min(starts) < max_chars - half // 2:
        return text[:max_chars]
    i = min(starts) - half // 4
    return text[:half] + "\n" + text[i : i + max_chars - half]


def prepare(text: str, max_chars: int = MAX_CHARS, max_tokens: int = MAX_TOKENS, signals: bool = True,
            features: Features = DEFAULT_FEATURES) -> str:
    """One line of classifier tokens for ``text`` (see the module docstring)."""
    code = 0
    if features.strip_code and FENCE in text:
        text, code = split_code(text[: SIGNAL_CHARS * 2])
    head, delims = "", ("$", "\\(", "\\[")
    if signals and features.signals:
        seen = text[:SIGNAL_CHARS] if len(text) > SIGNAL_CHARS else text
        counts = markup_counts(seen, features.density)
        head = " ".join(signal_tokens(seen, code, features.density, counts) * SIGNAL_REPEAT) + " "
        # the counts see the characters the window searches: skip delimiters that cannot be there
        n = dict(counts)
        delims = (("$",) if n["dollar"] + n.get("price", 0) else ()) + (delims[1:] if n["tex"] else ())
    text = _window(text, max_chars, delims)
    if not text.isascii():
        if len(text) > 2 * max_tokens:
            # mostly CJK (one token per character): the first 2 * max_tokens characters hold max_tokens tokens
            cut = text[: 2 * max_tokens]
            if len(cut.encode("utf-8")) >= 2.5 * len(cut):  # CJK characters take 3 bytes in UTF-8
                text = cut
        for char, plain in _COMMON:
            if char in text:
                text = text.replace(char, plain)
    if text.isascii():
        text = text.translate(_ASCII_FOLD)  # lower case, every digit "0"
    else:
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        text = text.casefold()
        for digit in "123456789":
            if digit in text:
                text = text.replace(digit, "0")
    if "\\" in text:
        for delim, spaced in _DELIMS:
            if delim in text:
                text = text.replace(delim, spaced)
        text = text.replace("\\", " \\")
    text = " ".join(_OWN_TOKEN.split(text))
    while "00000" in text:  # number shapes: runs of at most 4 zeros
        text = text.replace("00000", "0000")
    tokens = text.split(None, max_tokens)
    if not tokens:
        return ""  # nothing to classify (scores 0)
    if len(tokens) > max_tokens:
        del tokens[max_tokens:]
    return head + " ".join(tokens)

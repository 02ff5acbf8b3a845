"""Numbers and content words of a text, for the reworded-item tier (:mod:`decontam.reworded`).

Numbers are read from digits ("1,200", "3.5", "$4", "50%"), simple fractions ("3/4", "\\frac{1}{2}"), English
number words ("twenty-four", "three hundred", "a dozen", "half", "twice") and Chinese numerals ("二十五", "两",
"一半"), each as a canonical value string (``f"{value:.6g}"``) with its character offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


def _split(words: str) -> list[str]:
    return words.split()


_UNITS = {w: i for i, w in enumerate(_split(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"))}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_split("twenty thirty forty fifty sixty seventy eighty ninety"))}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "dozen": 12}
_ALONE = {"half": 0.5, "twice": 2, "double": 2, "triple": 3, "thrice": 3, "quarter": 0.25, "dozen": 12,
          "doubled": 2, "tripled": 3, "quadrupled": 4, "quadruple": 4, "halved": 0.5}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES) | set(_ALONE) | {"dozens", "halves", "quarters"}
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}

_W = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_NUMBER_RE = re.compile(
    rf"""\\[dt]?frac\{{(?P<fa>\d+)\}}\{{(?P<fb>\d+)\}}                       # \frac{{1}}{{2}}
      | (?<![\d.,/])(?P<sa>\d{{1,2}})\s*/\s*(?P<sb>\d{{1,2}})(?![\d/])       # 3/4
      | (?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d*\.\d+|\d+)               # 1,200  3.5  .5  42
      | (?P<zh>一半|[零〇一二两三四五六七八九十百千万]+)
      | (?P<word>\b(?:a[ \t]+)?(?:{_W})(?:(?:[ \t]+|-)(?:and[ \t]+)?(?:a[ \t]+)?(?:{_W}))*\b)  # a dozen
    """, re.VERBOSE | re.IGNORECASE)
_WORD_RE = re.compile(r"[^\W\d_]+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
STOPWORDS = frozenset(_split("""
a an the and or but if then than so of to in on at by for with from as into onto about over under after before
is are was were be been being am has have had do does did will would shall should can could may might must
it its this that these those there here he she they them his her their him we us our you your i me my
what which who whom whose when where why how each every all any some many much more most less few
not no yes also only just very too per if while during same other another such own up down out off again
"""))


def canonical(value: float) -> str:
    return f"{value:.6g}"


def _zh_value(run: str) -> float | None:
    if run == "一半":
        return 0.5
    total, section, digit, units, seq = 0, 0, None, False, False
    for ch in run:
        if ch in _ZH_DIGITS:
            if digit is not None and not units:  # digit by digit ("二零二四")
                section = section * 10 + digit
                seq = True
            digit = _ZH_DIGITS[ch]
        elif ch == "万":
            section += digit or 0
            total += (section or 1) * 10_000
            section, digit = 0, None
        else:
            section += (digit if digit is not None else 1) * _ZH_UNITS[ch]
            digit, units = None, True
    if seq and digit is not None:
        return float(section * 10 + digit)
    return float(total + section + (digit or 0))


def numbers(text: str) -> Iterator[tuple[str, int]]:
    """(canonical value, character offset) of every number in ``text``, in order."""
    for m in _NUMBER_RE.finditer(text):
        kind = m.lastgroup
        if kind == "word":
            value = _words_value(re.split(r"[ \t-]+", m.group().lower()))
        elif kind == "fb":
            a, b = int(m.group("fa")), int(m.group("fb"))
            value = a / b if b else None
        elif kind == "sb":
            a, b = int(m.group("sa")), int(m.group("sb"))
            value = a / b if b else None
        elif kind == "num":
            value = float(m.group().replace(",", ""))
        else:
            value = _zh_value(m.group())
        if value is not None:
            yield canonical(value), m.start()


def _words_value(ws: list[str]) -> float | None:
    while ws and ws[-1] in ("a", "and"):
        ws = ws[:-1]
    while ws and ws[0] == "and":
        ws = ws[1:]
    if not ws or (len(ws) == 1 and ws[0] == "a"):
        return None
    if len(ws) == 1 and ws[0] in _ALONE and ws[0] not in _UNITS:
        return float(_ALONE[ws[0]])
    total, current, seen, prev = 0.0, 0.0, False, ""
    for w in ws:
        joined, prev = prev in ("and", "a"), w
        if w == "a":
            current = current or 1
        elif w in _UNITS:
            current += _UNITS[w]
            seen = True
        elif w in _TENS:
            current += _TENS[w]
            seen = True
        elif w in ("dozen", "dozens"):
            current = (current or 1) * 12
            seen = True
        elif w == "hundred":
            current = (current or 1) * 100
            seen = True
        elif w in ("thousand", "million"):
            total += (current or 1) * _SCALES[w]
            current = 0
            seen = True
        elif w in ("half", "halves"):
            current = current + 0.5 if joined and current > 1 else (current or 1) * 0.5
            seen = True
        elif w in ("twice", "double", "doubled"):
            current += 2
            seen = True
        elif w in ("triple", "thrice", "tripled"):
            current += 3
            seen = True
        elif w in ("quadruple", "quadrupled"):
            current += 4
            seen = True
        elif w == "halved":
            current = 0.5
            seen = True
        elif w in ("quarter", "quarters"):
            current = (current or 1) * 0.25
            seen = True
    return total + current if seen else None


def _stem(w: str) -> str:
    if len(w) > 3:
        for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
            if w.endswith(suffix):
                return w[: -len(suffix)] + repl
    return w


_TEX_COMMAND = re.compile(r"\\[a-zA-Z]+")


def raw_words(text: str) -> set[str]:
    """Lower-cased English words of ``text`` as written (no stemming): cheap, for anchor lookups."""
    return set(_WORD_RE.findall(text.casefold()))


def stem(word: str) -> str:
    return _stem(word)


def content_words(text: str) -> set[str]:
    """Stemmed English words (not stopwords, number words or TeX commands), plus CJK character bigrams."""
    low = _TEX_COMMAND.sub(" ", text).casefold()
    out = {_stem(w) for w in _WORD_RE.findall(low)
           if w not in STOPWORDS and w not in _NUMBER_WORDS and not _CJK_RUN.fullmatch(w) and len(w) > 1}
    for run in _CJK_RUN.findall(low):
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    return out

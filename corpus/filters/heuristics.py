"""Math-aware document quality heuristics: pure functions ``(TextStats, config) -> Verdict``.

They follow Gopher (Rae et al. 2021, table A1), C4 and FineWeb, with the changes a math corpus needs:

* content is counted in math-safe tokens (:func:`corpus.normalize.math_tokens`): words, numbers, TeX
  commands, operators, and one token per CJK character, so formulas and Chinese text have a length;
* a word carries content when it has a letter, digit, CJK character, TeX command, operator or bracket:
  ``\\frac{a}{b}``, ``x^2+1`` and ``=`` are content, ``»`` and ``***`` are not (Gopher's "80 % of words
  contain a letter" deletes formula-heavy pages);
* there is no curly-brace rule (C4's drops every LaTeX page) and no symbol-to-word rule except Gopher's
  ``#`` and ellipsis ratios, where markdown headings and math ellipses (``1, 2, \\ldots``/``a_1 + ... + a_n``)
  do not count;
* prose-only statistics (average word length, stop words) are computed on the text with formulas, code
  and TeX stripped, and only when there is enough prose to judge (formula-only pages are not "unnatural");
* repetition is judged on the prose: duplicate lines/paragraphs compare their words (a derivation repeating
  ``\\end{aligned}`` is not spam) and n-grams never span a formula; code-like lines outside code fences
  (unfenced code, line-number gutters, number listings, generated API parameter lines) are left out, so a
  numerical-methods post repeating its code or an API page repeating its signatures is not spam; the n-gram
  rules start at 150 prose units (a short problem repeats its terms by necessity).

Every threshold can be set to ``None`` to disable that rule. Each check returns a :class:`Verdict` with a
``reason`` (``"<filter>.<rule>"``) and the measured value, which the stages record for removed documents.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from corpus.filters.textstats import TextStats, is_content_word, is_junk_char


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str | None = None  # "<filter>.<rule>" when removed
    value: float | None = None  # the measured statistic that failed
    threshold: float | None = None


KEEP = Verdict(True)


def _fail(reason: str, value: float, threshold: float) -> Verdict:
    return Verdict(False, reason, round(float(value), 6), float(threshold))


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- length ---------------------------------------------------------------------------------------------


class LengthConfig(_Config):
    """Document length in math-safe tokens (words, numbers, TeX commands, operators, CJK characters)."""

    min_tokens: int | None = Field(8, description="fewer content tokens -> removed (a one-line fragment)")
    max_tokens: int | None = Field(1_000_000, description="more content tokens -> removed (dumps, logs)")


def check_length(st: TextStats, cfg: LengthConfig) -> Verdict:
    n = len(st.tokens)
    if cfg.min_tokens is not None and n < cfg.min_tokens:
        return _fail("length.too_short", n, cfg.min_tokens)
    if cfg.max_tokens is not None and n > cfg.max_tokens:
        return _fail("length.too_long", n, cfg.max_tokens)
    return KEEP


# ---- repetition (Gopher table A1) --------------------------------------------------------------------


class RepetitionConfig(_Config):
    """Gopher's repetition rules with its thresholds. Lines and paragraphs are those of the prose, so a
    derivation or an [asy] drawing repeating ``\\end{aligned}`` or ``draw(...)`` lines is not repetitive.
    N-grams are over the prose units (words, numbers, CJK
    characters; formulas and code left out; n doubled for Chinese), as a share of the document's characters."""

    dup_line_frac: float | None = Field(0.3, description="share of lines that repeat an earlier line")
    dup_para_frac: float | None = Field(0.3, description="share of paragraphs that repeat an earlier one")
    dup_line_char_frac: float | None = Field(0.2, description="share of characters in repeated lines")
    dup_para_char_frac: float | None = Field(0.2, description="share of characters in repeated paragraphs")
    min_line_chars: int = Field(
        12, description="lines/paragraphs are compared on their prose words (formulas, code, TeX commands and "
                        "punctuation stripped); shorter ones are left out (a formula line, 'A) 60 m', a heading)")
    min_lines: int = Field(5, description="the line/paragraph fraction rules apply from this many lines/paragraphs")
    top_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
        description="n -> max share of characters covered by the most frequent n-gram")
    dup_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n -> max share of characters inside n-grams seen before")
    min_ngram_units: int = Field(
        150, description="the n-gram rules apply from this many prose units: a short problem statement "
                         "repeats its terms ('the probability of obtaining ...') by necessity")


def _dup_stats(items: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    dup, dup_chars = 0, 0
    for it in items:
        if it in seen:
            dup += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    return dup, dup_chars


def _top_ngram_chars(segments: list[list[str]], n: int) -> int:
    counts: Counter = Counter()
    for seg in segments:
        counts.update(zip(*(seg[i:] for i in range(n)), strict=False))
    if not counts:
        return 0
    gram, count = counts.most_common(1)[0]
    if count < 2:
        return 0
    return sum(len(t) for t in gram) * count


def _dup_ngram_chars(segments: list[list[str]], n: int) -> int:
    """Characters of the n-grams that were seen before (Gopher's greedy count, skipping a repeat)."""
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    for seg in segments:
        i, end = 0, len(seg) - n + 1
        while i < end:
            gram = tuple(seg[i : i + n])
            if gram in seen:
                repeated += sum(len(t) for t in gram)
                i += n
            else:
                seen.add(gram)
                i += 1
    return repeated


def check_repetition(st: TextStats, cfg: RepetitionConfig) -> Verdict:
    text_chars = max(1, len(st.text))
    for kind, units in (("para", st.prose_paragraphs), ("line", st.prose_lines)):
        units = [u for u in units if len(u) >= cfg.min_line_chars]
        if len(units) < cfg.min_lines:
            continue
        dup, dup_chars = _dup_stats(units)
        for name, value in ((f"dup_{kind}_frac", dup / len(units)), (f"dup_{kind}_char_frac", dup_chars / text_chars)):
            limit = getattr(cfg, name)
            if limit is not None and value > limit:
                return _fail(f"repetition.{name}", value, limit)
    segments, n_units = st.prose_segments, st.n_prose_units
    if n_units < cfg.min_ngram_units:
        return KEEP
    scale = 2 if st.n_han > n_units / 2 else 1  # Chinese: a word is about two characters
    for n, limit in sorted(cfg.top_ngram_char_frac.items()):
        frac = _top_ngram_chars(segments, n * scale) / text_chars
        if frac > limit:
            return _fail(f"repetition.top_{n}gram_char_frac", frac, limit)
    for n, limit in sorted(cfg.dup_ngram_char_frac.items()):
        frac = _dup_ngram_chars(segments, n * scale) / text_chars
        if frac > limit:
            return _fail(f"repetition.dup_{n}gram_char_frac", frac, limit)
    return KEEP


# ---- boilerplate ------------------------------------------------------------------------------------------

_SOCIAL = r"facebook|twitter|linkedin|pinterest|instagram|whatsapp|reddit|tumblr|weibo|wechat|微信|微博"
BOILERPLATE_RE = re.compile(
    r"cookie (?:policy|settings|preferences)|(?:uses?|use of|accept(?: all)?) cookies|privacy (?:policy|statement)"
    r"|terms (?:of|and) (?:use|service|conditions)|all rights reserved|copyright\s*(?:©|\(c\)|\d)|©\s*\d{4}"
    r"|\bsubscribe\b|newsletter|\b(?:login|logout|sign up|sign in|log in to|log out|create an account)\b"
    r"|\bregister (?:now|here|for free)\b|enable javascript|javascript (?:is )?(?:disabled|required)"
    rf"|\b(?:share|follow|like|find) (?:us |this |it )?on (?:{_SOCIAL})"
    rf"|^(?:(?:{_SOCIAL}|email|print|share)[\s|,·/•-]*)+$"
    r"|\bread more\b|click here|\bposted (?:by|on|in)\b|related (?:posts|articles)|leave a (?:reply|comment)"
    r"|\bskip to (?:main )?content\b|back to top|powered by|^advertisement$|\bsponsored\b|\bnext post\b"
    r"|\bprevious post\b|版权所有|隐私政策|免责声明|用户协议|登录|注册|分享到|上一篇|下一篇|返回顶部|关注我们"
    r"|联系我们|ICP备|扫一扫|扫码关注|点击查看",
    re.IGNORECASE,
)
_LOREM_RE = re.compile(r"lorem ipsum", re.IGNORECASE)
_TERMINAL = tuple(".!?:;。！？：；\"')]》」")
_MATHY_RE = re.compile(r"[\\$=^_{}<>+\d]")


class BoilerplateConfig(_Config):
    """Web boilerplate left by extraction: policy/share/login lines, navigation-like short lines."""

    max_line_chars: int = Field(200, description="longer lines are prose, never boilerplate lines")
    max_boilerplate_line_frac: float | None = Field(
        0.3, description="share of lines matching boilerplate patterns (cookie, privacy policy, share on, 登录 ...)")
    max_nav_line_frac: float | None = Field(
        0.6, description="share of lines that look like navigation: <= 3 words, <= 30 chars, no terminal "
                         "punctuation, no math, not a heading")
    strip_lines: bool = Field(
        False, description="first remove boilerplate and navigation lines from the text (C4-style line cleaning, "
                           "for whole-page/WET input), then judge what is left")
    min_lines: int = Field(4, description="the boilerplate-line rule applies from this many lines")
    nav_min_lines: int = Field(10, description="the navigation-line rule applies from this many lines "
                                               "(a multiple-choice problem has a few short option lines)")
    lorem_ipsum: bool = Field(True, description="remove documents containing 'lorem ipsum'")


def is_nav_line(line: str) -> bool:
    """A short line with no sentence ending, no math and not a heading: a menu item, a button, a tag."""
    return (
        len(line) <= 30
        and len(line.split()) <= 3
        and not line.endswith(_TERMINAL)
        and not line.startswith("#")
        and not _MATHY_RE.search(line)
    )


def is_boilerplate_line(line: str, cfg: BoilerplateConfig) -> bool:
    return len(line) <= cfg.max_line_chars and BOILERPLATE_RE.search(line) is not None


def strip_boilerplate_lines(text: str, cfg: BoilerplateConfig | None = None) -> tuple[str, int]:
    """``text`` without its boilerplate and navigation lines, and how many lines were removed."""
    cfg = cfg or BoilerplateConfig()
    kept, removed = [], 0
    for line in text.splitlines():
        s = line.strip()
        if s and (is_boilerplate_line(s, cfg) or is_nav_line(s)):
            removed += 1
        else:
            kept.append(line)
    return ("\n".join(kept).strip() if removed else text), removed


def check_boilerplate(st: TextStats, cfg: BoilerplateConfig) -> Verdict:
    if cfg.lorem_ipsum and _LOREM_RE.search(st.text):
        return _fail("boilerplate.lorem_ipsum", 1, 1)
    lines = st.lines
    if len(lines) < cfg.min_lines:
        return KEEP
    if cfg.max_boilerplate_line_frac is not None:
        n = sum(1 for s in lines if is_boilerplate_line(s, cfg))
        if n / len(lines) > cfg.max_boilerplate_line_frac:
            return _fail("boilerplate.boilerplate_lines", n / len(lines), cfg.max_boilerplate_line_frac)
    if cfg.max_nav_line_frac is not None and len(lines) >= cfg.nav_min_lines:
        n = sum(1 for s in lines if is_nav_line(s))
        if n / len(lines) > cfg.max_nav_line_frac:
            return _fail("boilerplate.nav_lines", n / len(lines), cfg.max_nav_line_frac)
    return KEEP


# ---- character / word ratios ------------------------------------------------------------------------------

# Gopher's eight, plus the function words of mathematical English ("let", "then", "we", "is" ...).
EN_STOP_WORDS = frozenset(
    ["the", "be", "to", "of", "and", "that", "have", "with",
     "a", "an", "is", "are", "we", "let", "then", "if", "this", "for", "in", "on", "it", "by", "as", "so"])
ZH_STOP_WORDS = frozenset("的了是在和有不这为则与也就而及其以对于之中上个一")
STOP_WORD_LANGS = ("en", "zh")
_ELLIPSIS_RE = re.compile(r"(\S?)[ \t]*(?:\.\.\.|…)[ \t]*(\S?)")
_MATH_NEIGHBOURS = set(",+-=<>*/·×()[]{}|0123456789")
_HEADING_HASH_RE = re.compile(r"(?m)^\s*#+")


class RatioConfig(_Config):
    """Character and word ratios, with formulas, digits and operators counted as content."""

    max_junk_char_frac: float | None = Field(
        0.01, description="share of characters that are U+FFFD, control, private-use or unassigned")
    min_content_word_frac: float | None = Field(
        0.7, description="share of words with a letter, digit, CJK, TeX command, operator or bracket")
    max_hash_word_frac: float | None = Field(0.1, description="'#' per word (markdown headings excluded)")
    max_ellipsis_word_frac: float | None = Field(0.1, description="ellipses per word (math ellipses excluded)")
    max_bullet_line_frac: float | None = Field(0.9, description="share of lines starting with a bullet")
    max_ellipsis_line_frac: float | None = Field(
        0.3, description="share of lines ending with a (non-math) ellipsis")
    min_prose_words: int = Field(50, description="the prose rules below apply from this many prose words")
    min_avg_word_len: float | None = Field(
        3.0, description="mean length of prose words of 2+ letters (formulas excluded)")
    max_avg_word_len: float | None = Field(
        12.0, description="mean length of prose words of 2+ letters (formulas excluded)")
    min_stop_words: int | None = Field(
        2, description="distinct stop words (the, of, and, is, let ... / 的, 是, 在 ...) in documents with enough "
                       "prose; only for English/Chinese (or unknown-language) documents")


def _prose_ellipses(text: str) -> tuple[int, int]:
    """(ellipses, line-final ellipses) that are not math ellipses like ``1, 2, ...`` or ``a_1 + ... + a_n``."""
    n = n_line_end = 0
    for m in _ELLIPSIS_RE.finditer(text):
        before, after = m.group(1), m.group(2)
        if (before and before[-1] in _MATH_NEIGHBOURS) or (after and after[0] in _MATH_NEIGHBOURS):
            continue
        n += 1
        if not after:
            n_line_end += 1
    return n, n_line_end


def check_ratios(st: TextStats, cfg: RatioConfig, lang: str | None = None) -> Verdict:
    text = st.text
    if cfg.max_junk_char_frac is not None and text:
        junk = sum(1 for ch in text if is_junk_char(ch))
        if junk / len(text) > cfg.max_junk_char_frac:
            return _fail("ratios.junk_chars", junk / len(text), cfg.max_junk_char_frac)
    words, n_words = st.words, st.n_words
    if not words:
        return KEEP
    if cfg.min_content_word_frac is not None:
        frac = sum(1 for w in words if is_content_word(w)) / len(words)
        if frac < cfg.min_content_word_frac:
            return _fail("ratios.content_words", frac, cfg.min_content_word_frac)
    if cfg.max_hash_word_frac is not None:
        hashes = text.count("#") - sum(len(m.group().strip()) for m in _HEADING_HASH_RE.finditer(text))
        if hashes / n_words > cfg.max_hash_word_frac:
            return _fail("ratios.hash_per_word", hashes / n_words, cfg.max_hash_word_frac)
    ellipses, _ = _prose_ellipses(text) if ("..." in text or "…" in text) else (0, 0)
    if cfg.max_ellipsis_word_frac is not None and ellipses / n_words > cfg.max_ellipsis_word_frac:
        return _fail("ratios.ellipsis_per_word", ellipses / n_words, cfg.max_ellipsis_word_frac)
    lines = st.lines
    if lines:
        if cfg.max_bullet_line_frac is not None:
            frac = sum(1 for s in lines if s.startswith(("•", "-", "*", "·", "●", "▪"))) / len(lines)
            if frac > cfg.max_bullet_line_frac:
                return _fail("ratios.bullet_lines", frac, cfg.max_bullet_line_frac)
        if cfg.max_ellipsis_line_frac is not None and ellipses:
            frac = sum(_prose_ellipses(s)[1] for s in lines) / len(lines)
            if frac > cfg.max_ellipsis_line_frac:
                return _fail("ratios.ellipsis_lines", frac, cfg.max_ellipsis_line_frac)
    prose_words = st.prose_words
    long_words = [w for w in prose_words if len(w) > 1]  # one letter: a variable (x, y) more often than a word
    if len(long_words) >= cfg.min_prose_words:
        avg = sum(len(w) for w in long_words) / len(long_words)
        if cfg.min_avg_word_len is not None and avg < cfg.min_avg_word_len:
            return _fail("ratios.avg_word_len_low", avg, cfg.min_avg_word_len)
        if cfg.max_avg_word_len is not None and avg > cfg.max_avg_word_len:
            return _fail("ratios.avg_word_len_high", avg, cfg.max_avg_word_len)
    enough_prose = len(prose_words) >= cfg.min_prose_words or st.n_han >= 2 * cfg.min_prose_words
    if cfg.min_stop_words is not None and enough_prose and (lang is None or lang in STOP_WORD_LANGS):
        found = {w.lower() for w in prose_words} & EN_STOP_WORDS
        found |= set(st.prose) & ZH_STOP_WORDS
        if len(found) < cfg.min_stop_words:
            return _fail("ratios.stop_words", len(found), cfg.min_stop_words)
    return KEEP


# ---- all of them ------------------------------------------------------------------------------------------


class HeuristicsConfig(_Config):
    """All heuristics; set a whole filter to ``null`` in YAML to skip it."""

    length: LengthConfig | None = Field(default_factory=LengthConfig)
    boilerplate: BoilerplateConfig | None = Field(default_factory=BoilerplateConfig)
    ratios: RatioConfig | None = Field(default_factory=RatioConfig)
    repetition: RepetitionConfig | None = Field(default_factory=RepetitionConfig)


CHECKS = (  # cheapest first: a document stops at its first failure
    ("length", check_length),
    ("boilerplate", check_boilerplate),
    ("ratios", check_ratios),
    ("repetition", check_repetition),
)


def check_text(text: str, cfg: HeuristicsConfig | None = None, lang: str | None = None,
               stats: TextStats | None = None) -> Verdict:
    """Run every enabled heuristic on ``text``; the first failure decides (its reason is returned).

    ``lang`` (the document's ``lang`` column, if known) switches off the English/Chinese stop-word rule for
    other languages. With ``boilerplate.strip_lines``, call :func:`strip_boilerplate_lines` first and pass
    the cleaned text (the filter stage does, and writes the cleaned text)."""
    cfg = cfg or HeuristicsConfig()
    st = stats or TextStats(text)
    for name, fn in CHECKS:
        sub = getattr(cfg, name)
        if sub is None:
            continue
        verdict = check_ratios(st, sub, lang) if fn is check_ratios else fn(st, sub)
        if not verdict.keep:
            return verdict
    return KEEP

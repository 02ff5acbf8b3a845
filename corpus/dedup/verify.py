"""Candidate verification: real shingle similarity, then a token-level diff that is length-aware and math-aware."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Indel

from corpus.dedup.params import DedupConfig
from corpus.dedup.tokens import FIGURE_BIT, HASH_MASK, SYMBOL_BIT

MAX_DIFF_CELLS = 1 << 27  # la x lb above this: no alignment (its bit matrix would take la x lb / 8 bytes)


def _overlap(a: np.ndarray, b: np.ndarray) -> int:
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 0
    pos = np.searchsorted(b, a)
    pos[pos == len(b)] = 0
    return int(np.count_nonzero(b[pos] == a))


def similarity(a: np.ndarray, b: np.ndarray, metric: str = "jaccard") -> float:
    """Jaccard ``|A∩B|/|A∪B|`` or containment ``|A∩B|/min(|A|,|B|)`` of two sorted unique arrays."""
    if not len(a) or not len(b):
        return 0.0
    inter = _overlap(a, b)
    if metric == "containment":
        return inter / min(len(a), len(b))
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class TokenDiff:
    """How two token sequences differ (see :func:`token_diff`)."""

    edits: int  # differing tokens, leaving out frames
    substitutions: int  # math symbols replaced by other math symbols
    text_tokens: float  # the pair's length outside figures (mean; the shorter one for containment)
    frame_tokens: int = 0  # tokens in frames (left out of ``edits``)


def _symbol_counter(tokens: np.ndarray, regions: int):
    """``count(i, j)``: math symbols among ``tokens[i:j]`` (a prefix sum when there are many regions to count)."""
    if regions <= 4:
        return lambda i, j: int(np.count_nonzero(tokens[i:j] & SYMBOL_BIT)) if j > i else 0
    prefix = [0, *np.cumsum((tokens & SYMBOL_BIT) != 0).tolist()]
    return lambda i, j: prefix[j] - prefix[i]


def _text_length(tokens: np.ndarray) -> int:
    return len(tokens) - int(np.count_nonzero(tokens & FIGURE_BIT))


def _as_text(tokens: np.ndarray) -> str:
    """One code point per token (its hash mod the Unicode range, surrogates skipped): rapidfuzz's fastest
    input. Two different tokens share a code point with probability ~1e-6, so an alignment is almost exact."""
    c = tokens & HASH_MASK
    np.remainder(c, np.uint32(0x110000 - 0x800), out=c)
    np.add(c, np.uint32(0x800), out=c, where=c >= 0xD800)
    return c.astype("<u4", copy=False).tobytes().decode("utf-32-le")


def _regions(a: str, b: str) -> list[tuple[int, int, int, int]]:
    """Maximal non-equal stretches ``(i1, i2, j1, j2)`` of the optimal Indel alignment of ``a`` and ``b``."""
    out: list[tuple[int, int, int, int]] = []
    cur: list[int] | None = None
    for op in Indel.opcodes(a, b):
        if op.tag == "equal":
            if cur is not None:
                out.append((cur[0], cur[1], cur[2], cur[3]))
                cur = None
        elif cur is None:
            cur = [op.src_start, op.src_end, op.dest_start, op.dest_end]
        else:
            cur[1], cur[3] = op.src_end, op.dest_end
    if cur is not None:
        out.append((cur[0], cur[1], cur[2], cur[3]))
    return out


def _multiset_substitutions(a: np.ndarray, b: np.ndarray) -> int:
    """Upper bound of symbol substitutions without an alignment: min of the two symbol multiset differences."""
    sa, sb = a[(a & SYMBOL_BIT) != 0] & HASH_MASK, b[(b & SYMBOL_BIT) != 0] & HASH_MASK
    ua, ca = np.unique(sa, return_counts=True)
    ub, cb = np.unique(sb, return_counts=True)
    common, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    shared = int(np.minimum(ca[ia], cb[ib]).sum())
    return min(len(sa) - shared, len(sb) - shared)


def token_diff(a: np.ndarray, b: np.ndarray, containment: bool = False) -> TokenDiff:
    """Align two packed token sequences (:mod:`.tokens`) and count what differs.

    ``edits``: tokens in non-equal stretches, except *frames*: a stretch at the very start or end that only
    one side has and that holds no math symbol (a site header, footer or signature added around the same
    text). ``substitutions``: per stretch, ``min(symbols removed, symbols added)``: a number, variable, TeX
    command or operator replaced by another one. With ``containment``, only the shorter text's unmatched
    tokens are edits. Sequences longer than :data:`MAX_DIFF_CELLS` together fall back to the Indel distance
    and a multiset bound on substitutions (no frames), keeping memory bounded.
    """
    la, lb = len(a), len(b)
    ha, hb = _as_text(a), _as_text(b)
    short_a = la <= lb
    n = float(min(_text_length(a), _text_length(b))) if containment else (_text_length(a) + _text_length(b)) / 2
    if la * lb > MAX_DIFF_CELLS:
        dist = Indel.distance(ha, hb)
        edits = (min(la, lb) - (la + lb - dist) // 2) if containment else dist
        return TokenDiff(int(edits), _multiset_substitutions(a, b), n)
    edits = subs = frames = 0
    regions = _regions(ha, hb)
    count_a, count_b = _symbol_counter(a, len(regions)), _symbol_counter(b, len(regions))
    for i1, i2, j1, j2 in regions:
        sym_a, sym_b = count_a(i1, i2), count_b(j1, j2)
        subs += min(sym_a, sym_b)
        if containment:
            edits += (i2 - i1) if short_a else (j2 - j1)
            continue
        one_sided = i1 == i2 or j1 == j2
        at_edge = (i1 == 0 and j1 == 0) or (i2 == la and j2 == lb)
        if one_sided and at_edge and sym_a + sym_b == 0:
            frames += (i2 - i1) + (j2 - j1)
        else:
            edits += (i2 - i1) + (j2 - j1)
    return TokenDiff(edits, subs, n, frames)


def edits_allowed(text_tokens: float, cfg: DedupConfig) -> float:
    """Differing tokens a pair of this length may have: ``edit_rate x (length - exact_tokens)``, at least 0."""
    return cfg.edit_rate * max(0.0, text_tokens - cfg.exact_tokens)


def symbols_allowed(text_tokens: float, cfg: DedupConfig) -> float:
    """Math symbols a pair of this length may replace: ``symbol_change_rate x (length - symbol_exact_tokens)``.

    A short problem (up to ``symbol_exact_tokens``) may replace none: one changed number, variable or operator
    makes another problem. A long document tolerates replacements in proportion to its length (random edits
    that land in formulas: ``=``, a TeX command, a digit)."""
    return cfg.symbol_change_rate * max(0.0, text_tokens - cfg.symbol_exact_tokens)


def accept(diff: TokenDiff, cfg: DedupConfig) -> bool:
    """Whether a token diff is within the allowances (edits, with or without frames; symbol replacements)."""
    edits = diff.edits if cfg.frames else diff.edits + diff.frame_tokens
    if edits > edits_allowed(diff.text_tokens, cfg):
        return False
    return cfg.symbol_change_rate < 0 or diff.substitutions <= symbols_allowed(diff.text_tokens, cfg)


def is_duplicate(sh_a: np.ndarray, sh_b: np.ndarray, tok_a: np.ndarray, tok_b: np.ndarray,
                 cfg: DedupConfig) -> tuple[bool, float]:
    """Verify one candidate pair; returns ``(duplicate, similarity)``.

    1. Shingle Jaccard (or containment) >= ``verify_threshold`` (cheap; rejects most LSH false positives).
    2. Token diff (:func:`accept`): at most ``edits_allowed`` differing tokens, so a short problem must match
       token for token (``sum`` vs ``product``, ``QR`` vs ``PR`` are different problems) while a long page
       tolerates edits in proportion; and at most ``symbols_allowed`` math symbols replaced by other symbols
       (``x+5=12`` vs ``x+5=13``: none in a short problem). ``edit_rate < 0`` skips step 2.
    """
    if len(tok_a) == len(tok_b) and len(tok_a) and np.array_equal(tok_a, tok_b):
        return True, 1.0  # the same token sequence (exact or reformatted copies): nothing to align
    sim = similarity(sh_a, sh_b, cfg.metric)
    if sim < cfg.verify_threshold:
        return False, sim
    if cfg.edit_rate < 0:
        return True, sim
    return accept(token_diff(tok_a, tok_b, cfg.metric == "containment"), cfg), sim

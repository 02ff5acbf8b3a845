"""A verify task's candidate pairs cut into parts that fit a memory budget (pure logic, no I/O).

The pairs routed to a shard arrive as lists each sorted by ``(a, b)`` (one per bucket task). :func:`next_range`
takes the next run of consecutive ``a`` values from all lists, at most a number of pairs; :func:`budget_parts`
cuts such a run further until the documents its pairs need (each counted once) fit the budget. A task then holds
one part's pairs and documents at a time, whatever the shard's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def next_range(columns: list[np.ndarray], starts: list[int], max_pairs: int) -> list[int]:
    """End positions of the next part in ``columns`` (each sorted ascending, e.g. the ``a`` of pair lists)
    from ``starts`` on: every entry below one ``a`` bound, at most ``max_pairs`` in all, more only when a single
    ``a`` value alone has more (all pairs of one ``a`` stay in one part, so parts never repeat a pair)."""
    live = [i for i, c in enumerate(columns) if starts[i] < len(c)]
    if not live:
        return list(starts)
    quota = max(1, max_pairs // len(live))
    bounds = [columns[i][starts[i] + quota] for i in live if starts[i] + quota < len(columns[i])]
    if not bounds:
        return [len(c) for c in columns]
    hi = min(bounds)
    lo = min(columns[i][starts[i]] for i in live)
    if hi <= lo:  # one `a` holds more than the quota: that `a` alone
        hi = lo + type(lo)(1)
    return [int(np.searchsorted(c, hi)) for c in columns]


def merged_runs(open_lists: Callable[[], list[np.ndarray]], max_pairs: int) -> Iterator[np.ndarray]:
    """The pairs of lists each sorted by ``a``, one :func:`next_range` run at a time, concatenated (a pair in
    several lists comes once per list). ``open_lists`` is called per run, so mapped files are held for one run."""
    starts: list[int] | None = None
    while True:
        lists = open_lists()
        starts = [0] * len(lists) if starts is None else starts
        ends = next_range([x["a"] for x in lists], starts, max_pairs)
        if ends == starts:
            return
        run = np.concatenate([np.array(x[i:j]) for x, i, j in zip(lists, starts, ends, strict=True)])
        del lists
        starts = ends
        yield run


def budget_parts(pos_a: np.ndarray, pos_b: np.ndarray, doc_bytes: np.ndarray, pair_bytes: int,
                 budget: int) -> list[tuple[int, int, int]]:
    """Consecutive slices ``(lo, hi, held)`` of pairs whose documents (positions ``pos_a`` / ``pos_b`` into
    ``doc_bytes``, each document counted once) plus ``pair_bytes`` per pair hold at most ``budget`` bytes;
    halved until they do (a single pair may exceed it). ``held`` is the slice's bytes."""

    def held(lo: int, hi: int) -> int:
        docs = np.unique(np.concatenate([pos_a[lo:hi], pos_b[lo:hi]]))
        return int(doc_bytes[docs].sum()) + pair_bytes * (hi - lo)

    out: list[tuple[int, int, int]] = []
    stack = [(0, len(pos_a))] if len(pos_a) else []
    while stack:
        lo, hi = stack.pop()
        size = held(lo, hi)
        if size > budget and hi - lo > 1:
            mid = (lo + hi) // 2
            stack += [(mid, hi), (lo, mid)]
        else:
            out.append((lo, hi, size))
    return out

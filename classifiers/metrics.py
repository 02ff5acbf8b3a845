"""Binary classification metrics: precision/recall/F1 at a threshold, PR curve, threshold selection, PNG plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    threshold: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def metrics_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> Metrics:
    """Predict positive when ``score >= threshold``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return Metrics(float(threshold), p, r, f1, tp, fp, fn, tn)


def pr_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` at every distinct score, thresholds descending."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tps = np.cumsum(y)
    fps = np.cumsum(~y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], dtype=int)
    tp, fp = tps[last], fps[last]
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(int(y.sum()), 1)
    return precision, recall, s[last]


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    p, r, _ = pr_curve(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, r]) * p)) if len(p) else 0.0


def threshold_for(scores: Sequence[float], labels: Sequence[bool], *, precision: float | None = None,
                  recall: float | None = None) -> float | None:
    """The threshold that reaches the requested precision (lowest such threshold: most recall) or recall
    (highest such threshold: most precision); ``None`` when no threshold reaches it."""
    if (precision is None) == (recall is None):
        raise ValueError("give exactly one of precision= or recall=")
    p, r, t = pr_curve(scores, labels)
    if recall is not None:
        ok = np.nonzero(r >= recall)[0]
        return float(t[ok[0]]) if len(ok) else None
    ok = np.nonzero(p >= precision)[0]
    return float(t[ok[-1]]) if len(ok) else None


def _logit(x: float) -> float:
    x = min(max(x, 1e-6), 1 - 1e-6)
    return float(np.log(x / (1 - x)))


def best_f1_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The threshold of the best F1. fastText scores saturate, so many thresholds often tie: the middle (in
    logit space) of the tied range is taken, not its edge, which would put the next page over the line."""
    p, r, t = pr_curve(scores, labels)
    if not len(t):
        return 0.5
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    top = f1 >= f1.max() - 1e-12
    first = end = int(np.argmax(top))
    while end + 1 < len(t) and top[end + 1]:
        end += 1
    hi = float(t[first])
    if end + 1 == len(t):  # the tie reaches the lowest score: nothing below to keep away from
        return float(t[end])
    lo = float(t[end + 1])  # any threshold in (lo, hi] gives the best F1
    mid = 1 / (1 + np.exp(-(_logit(hi) + _logit(lo)) / 2))
    return float(min(max(mid, np.nextafter(lo, 1.0)), hi))


def evaluation_report(scores: Sequence[float], labels: Sequence[bool], threshold: float = 0.5) -> dict:
    """Metrics at ``threshold`` and at the best-F1 threshold, average precision and counts."""
    best = best_f1_threshold(scores, labels)
    return {
        "positives": int(np.sum(np.asarray(labels, dtype=bool))),
        "negatives": int(np.sum(~np.asarray(labels, dtype=bool))),
        "at_threshold": metrics_at(scores, labels, threshold).to_dict(),
        "best_f1": metrics_at(scores, labels, best).to_dict(),
        "average_precision": round(average_precision(scores, labels), 6),
    }


def plot_pr_curve(scores: Sequence[float], labels: Sequence[bool], path: str, title: str = "",
                  mark: float | None = None) -> None:
    """Write the PR curve as a PNG (matplotlib Agg backend, atomic write); ``mark`` highlights a threshold."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corpus.io import atomic_open

    p, r, _ = pr_curve(scores, labels)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(np.r_[0.0, r], np.r_[1.0, p], drawstyle="steps-post")
    if mark is not None:
        m = metrics_at(scores, labels, mark)
        ax.plot([m.recall], [m.precision], "o", label=f"threshold {mark:.3g}: P={m.precision:.3f} R={m.recall:.3f}")
        ax.legend(loc="lower left")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"PR curve (AP={average_precision(scores, labels):.3f})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen on validation data, with what it does there."""

    rule: str
    threshold: float
    metrics: Metrics
    general_pass: float  # share of the general (negative) documents at or above the threshold

    def to_dict(self) -> dict:
        return {"rule": self.rule, "threshold": round(self.threshold, 6), "general_pass": round(self.general_pass, 6),
                **{k: v for k, v in self.metrics.to_dict().items() if k != "threshold"}}


def general_pass(m: Metrics) -> float:
    return m.fp / (m.fp + m.tn) if m.fp + m.tn else 0.0


def threshold_for_recall(scores: Sequence[float], labels: Sequence[bool], target_recall: float) -> OperatingPoint:
    """The high-recall operating point: the highest threshold keeping ``target_recall`` of the positives of
    validation data (e.g. 0.995 for a crawl first pass), with the share of negatives it lets through. With
    too few positives to resolve the target, every positive is kept (the lowest positive score)."""
    t = threshold_for(scores, labels, recall=target_recall)
    if t is None:  # no positives
        t = 0.5
    m = metrics_at(scores, labels, t)
    return OperatingPoint(f"highest threshold with validation recall >= {target_recall}", t, m, general_pass(m))


def best_f1_point(scores: Sequence[float], labels: Sequence[bool]) -> OperatingPoint:
    t = best_f1_threshold(scores, labels)
    m = metrics_at(scores, labels, t)
    return OperatingPoint("best validation F1 (middle of the tied range, logit space)", t, m, general_pass(m))


def grouped_report(scores: Sequence[float], labels: Sequence[bool], groups: Sequence[str],
                   threshold: float) -> list[dict]:
    """Metrics per group (language, site) at ``threshold``, worst first: most errors, then lowest F1."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    g = np.asarray(groups, dtype=object)
    rows = []
    for name in sorted(set(groups)):
        idx = g == name
        m = metrics_at(s[idx], y[idx], threshold)
        rows.append({"group": name, "math": int(y[idx].sum()), "general": int((~y[idx]).sum()),
                     "errors": m.fp + m.fn, **{k: v for k, v in m.to_dict().items() if k != "threshold"}})
    return sorted(rows, key=lambda r: (-r["errors"], r["f1"] if r["math"] else 1.0, r["group"]))

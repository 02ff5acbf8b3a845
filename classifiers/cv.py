"""Grouped cross-validation by site: thresholds (and settings) chosen on out-of-fold scores of the dev sites.

The labelled pages are split by site (:func:`classifiers.pages.assign_splits`); the train and validation sites
together are the *dev* sites, dealt into ``k`` folds by site (:func:`classifiers.pages.site_folds`). Each fold's
model trains on the seed texts + the other folds' pages and scores its own fold's pages; the out-of-fold (OOF)
scores of all dev pages are pooled, and the operating points are read off them: the final point (best pooled
F1, middle of the tied range) and the high-recall point (recall >= target). The model that is kept trains on the
seed + every dev page; the test sites are scored once, with those thresholds.

Pooling ~120 math pages instead of the 27 of one validation split is what makes the choice of a setting or a
threshold more than a coin flip between settings one page apart.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.data import MATH, Example
from classifiers.metrics import (
    OperatingPoint,
    best_f1_point,
    general_pass,
    grouped_report,
    metrics_at,
    threshold_for_recall,
)
from classifiers.pages import Page, page_report, site_folds

# (model folder, training examples) -> a function scoring texts; the default trains one fastText model
Fit = Callable[[str, Sequence[Example]], Callable[[Sequence[str]], np.ndarray]]


@dataclass
class CVResult:
    """Out-of-fold scores of the dev pages (page order) and the operating points read off them."""

    folds: dict[str, int]  # site -> fold
    scores: np.ndarray
    final: OperatingPoint
    high_recall: OperatingPoint

    def report(self, pages: Sequence[Page]) -> dict:
        """The card/bench view: both points with their pooled OOF metrics, per language at the final point."""
        return {"folds": max(self.folds.values()) + 1 if self.folds else 0,
                "final": self.final.to_dict(), "high_recall": self.high_recall.to_dict(),
                "per_language": page_report(self.scores, pages, self.final.threshold)["per_language"]}


Repeat = int | Mapping[str, int]  # times each page counts: one number, or per language ({"en": 16, "*": 8})


def repeated(pages: Sequence[Page], repeat: Repeat) -> list[Example]:
    """The pages' training examples, each ``repeat`` times (per language with a mapping; ``"*"``: the rest)."""
    if isinstance(repeat, int):
        return [p.example() for p in pages] * repeat
    return [p.example() for p in pages for _ in range(repeat.get(p.lang, repeat.get("*", 1)))]


def fasttext_fit(params) -> Fit:
    """A :data:`Fit` training one fastText model with ``params`` (no validation set)."""
    from classifiers.model import MathClassifier, train_model

    def fit(out: str, train: Sequence[Example]):
        train_model(out, train, [], params)
        return MathClassifier(out).score

    return fit


def operating_points(scores: Sequence[float], labels: Sequence[bool],
                     target_recall: float) -> tuple[OperatingPoint, OperatingPoint]:
    """``(final, high_recall)``: best F1 (middle of the tied range) and the highest threshold keeping
    ``target_recall`` of the positives, at most the final threshold."""
    final, high = best_f1_point(scores, labels), threshold_for_recall(scores, labels, target_recall)
    if high.threshold > final.threshold:  # the final point keeps all of that already: no higher first pass
        high = OperatingPoint(high.rule + ", at most the final threshold", final.threshold, final.metrics,
                              final.general_pass)
    return final, high


def cross_validate(base: Sequence[Example], pages: Sequence[Page], fit: Fit, *, folds: int = 5,
                   page_repeat: Repeat = 8, target_recall: float = 0.995, seed: int = 0,
                   workdir: str | None = None, workers: int = 1) -> CVResult:
    """Grouped ``folds``-fold cross-validation by site over ``pages`` (the dev sites): each fold trains on
    ``base`` + the other folds' pages (``page_repeat`` times) and scores its own; thresholds from the pooled
    out-of-fold scores. ``workers`` > 1 trains that many folds at once (fastText runs in its own process)."""
    by_site = site_folds(pages, folds, seed)
    scores = np.zeros(len(pages), dtype=np.float64)
    tmp = Path(tempfile.mkdtemp(prefix=".cv-", dir=workdir))

    def run(f: int) -> None:
        held = [i for i, p in enumerate(pages) if by_site[p.site] == f]
        if held:
            train = [*base, *repeated([p for p in pages if by_site[p.site] != f], page_repeat)]
            score = fit(str(tmp / f"fold{f}"), train)
            scores[held] = score([pages[i].text for i in held])

    try:
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(run, range(folds)))
        else:
            for f in range(folds):
                run(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    y = [p.label == MATH for p in pages]
    final, high = operating_points(scores, y, target_recall)
    final = OperatingPoint(f"best pooled out-of-fold F1 ({folds}-fold CV by site; middle of the tied range, "
                           "logit space)", final.threshold, final.metrics, final.general_pass)
    high = OperatingPoint(high.rule.replace("validation", f"pooled out-of-fold ({folds}-fold CV by site)"),
                          high.threshold, high.metrics, high.general_pass)
    return CVResult(by_site, scores, final, high)


@dataclass
class NestedResult:
    """Nested cross-validation by site over every page: each page scored by a model that never saw its site,
    at thresholds chosen without its site (:func:`nested_cross_validate`)."""

    folds: dict[str, int]  # site -> outer fold
    scores: np.ndarray  # page order
    final: np.ndarray  # each page's final threshold (its outer fold's)
    high_recall: np.ndarray  # each page's high-recall threshold

    def report(self, pages: Sequence[Page]) -> dict:
        """Both points over all pages and per language; each outer fold's thresholds; the errors."""
        y = np.array([p.label == MATH for p in pages])
        final, high = self.scores >= self.final, self.scores >= self.high_recall
        # a page's prediction at its own threshold, as a score: metrics at 0.5 count the same decisions
        at = lambda keep: keep.astype(np.float64)  # noqa: E731
        m, h = metrics_at(at(final), y, 0.5), metrics_at(at(high), y, 0.5)
        langs = [p.lang for p in pages]
        one_page = {self.folds[p.site]: i for i, p in enumerate(pages)}  # a page of each fold: its thresholds
        return {"pages": len(pages), "sites": len(self.folds), "folds": max(self.folds.values()) + 1,
                "final": {k: v for k, v in m.to_dict().items() if k != "threshold"},
                "per_language": grouped_report(at(final), y, langs, 0.5),
                "high_recall": {"recall": round(h.recall, 6), "general_pass": round(general_pass(h), 6)},
                "thresholds": [{"fold": f, "final": round(float(self.final[i]), 4),
                                "high_recall": round(float(self.high_recall[i]), 4)}
                               for f, i in sorted(one_page.items())],
                "errors": sorted(({"page": Path(p.file).name, "site": p.site, "lang": p.lang, "label": p.label,
                                   "score": round(float(self.scores[i]), 4),
                                   "threshold": round(float(self.final[i]), 4)}
                                  for i, p in enumerate(pages) if final[i] != y[i]), key=lambda e: e["score"])}


def nested_cross_validate(base: Sequence[Example], pages: Sequence[Page], fit: Fit, *, folds: int = 5,
                          inner_folds: int = 5, page_repeat: Repeat = 8, target_recall: float = 0.995,
                          seed: int = 11, workdir: str | None = None, workers: int = 1) -> NestedResult:
    """The whole protocol, measured on every site: the sites are dealt into ``folds`` outer folds; for each,
    :func:`cross_validate` over the other folds' pages (``inner_folds``) chooses the thresholds, a model trains
    on ``base`` + those pages and scores the held-out fold. Nothing about a page's site (model, threshold)
    comes from that site, and every page is a test page once: ~5x the pages of one test split."""
    by_site = site_folds(pages, folds, seed)
    scores, final, high = (np.zeros(len(pages), dtype=np.float64) for _ in range(3))
    tmp = Path(tempfile.mkdtemp(prefix=".nested-", dir=workdir))
    try:
        for f in range(folds):
            held = [i for i, p in enumerate(pages) if by_site[p.site] == f]
            rest = [p for p in pages if by_site[p.site] != f]
            if not held:
                continue
            cv = cross_validate(base, rest, fit, folds=inner_folds, page_repeat=page_repeat,
                                target_recall=target_recall, workdir=str(tmp), workers=workers)
            score = fit(str(tmp / f"outer{f}"), [*base, *repeated(rest, page_repeat)])
            scores[held] = score([pages[i].text for i in held])
            final[held], high[held] = cv.final.threshold, cv.high_recall.threshold
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return NestedResult(by_site, scores, final, high)


def site_split_card(score: Callable[[Sequence[str]], np.ndarray], parts: dict[str, list[Page]],
                    cv: CVResult, fractions: Sequence[float], seed: int) -> dict:
    """Model card fields: the split, the protocol, both operating points (CV on the dev sites, test sites)."""
    dev, test = parts["train"] + parts["validation"], parts["test"]
    ts = score([p.text for p in test]) if test else np.zeros(0)
    points = {"final": cv.final, "high_recall": cv.high_recall}
    return {
        "site_split": {"fractions": list(fractions), "seed": seed,
                       "pages": {k: len(v) for k, v in parts.items()},
                       "sites": {k: sorted({p.site for p in v}) for k, v in parts.items()}},
        "protocol": (f"sites split train/validation/test {list(fractions)} (assign_splits, seed {seed}); "
                     f"thresholds from pooled out-of-fold scores of {max(cv.folds.values()) + 1}-fold "
                     f"cross-validation by site over the train+validation sites ({len(dev)} pages); the model "
                     "trains on the seed + every train+validation page; the test sites are scored once"),
        "cv": cv.report(dev),
        "operating_points": {
            name: {"cv": pt.to_dict(), "test": page_report(ts, test, pt.threshold) if test else None}
            for name, pt in points.items()},
        "threshold": round(cv.final.threshold, 6),
        "threshold_rule": cv.final.rule + " on the train+validation sites",
    }


CV_TIE = 0.005  # one dev page moves the pooled CV F1 of ~120 math pages by about 0.004: closer rows are ties


def choose_row(rows: Mapping[str, Mapping], speed_goal: float | None = None, tie: float = CV_TIE) -> str:
    """The setting to keep, from CV numbers only: among the rows whose ``speed_ratio`` keeps ``speed_goal`` (all
    rows if none does), those within ``tie`` of the best ``cv_f1`` are tied; of them, the better weaker language
    (``cv_f1_en``/``cv_f1_zh``), then fewer general pages at the high-recall point, then the faster, then CV F1."""
    ok = [n for n, r in rows.items() if speed_goal is None or (r.get("speed_ratio") or 0) <= speed_goal]
    ok = ok or list(rows)
    best = max(rows[n]["cv_f1"] for n in ok)
    tied = [n for n in ok if rows[n]["cv_f1"] >= best - tie]
    return max(tied, key=lambda n: (min(rows[n]["cv_f1_en"], rows[n]["cv_f1_zh"]), -rows[n]["hr_cv_general_pass"],
                                    -(rows[n].get("speed_ratio") or 0), rows[n]["cv_f1"]))

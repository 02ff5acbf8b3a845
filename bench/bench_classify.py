"""Benchmark the fastText math classifiers on real web pages split by site, and their scoring speed vs datatrove.

Data: the seed text (``../shared/data/seed``: math_text + math_text_zh vs general_text + general_text_zh) and the
real pages of ``../shared/data/web`` and ``web2`` (571 pages), text by our extract code. The pages are split by
SITE with :func:`classifiers.pages.assign_splits` (60/20/20 %, the split ``classify train --pages`` uses and
records in the model card): no site is on two sides. The train and validation sites together are the *dev*
sites; the test sites are only scored.

Protocol (:mod:`classifiers.cv`, the one ``classify train --pages`` runs): every row is cross-validated by site
over the dev sites (5 folds; each fold model trains on the seed + the other folds' pages), the out-of-fold scores
are pooled and give the thresholds: the final point (best pooled F1, middle of the tied range) and the
high-recall point (highest threshold keeping >= 99.5 % of the dev math pages, at most the final threshold). The
row's model then trains on the seed + every dev page and is scored on the test sites with those thresholds. The
row is chosen by :func:`classifiers.cv.choose_row` among the rows whose scoring keeps the speed goal (<= 0.8x
datatrove's CPU time, measured per row: :func:`quick_ratio`, 11 paired repeats): rows within
:data:`classifiers.cv.CV_TIE` (0.005, about one dev page) of the best CV F1 are tied, and of them the better weaker
language wins, then fewer general pages at the high-recall point, then the faster; the test-site numbers of every
row are printed beside their CV numbers, never used to choose.
The misclassified lists (out-of-fold on dev, and test), the code model, the quality filters on every real math
page (by split) and the speed rows follow.

Nested CV (the chosen row; ``--no-nested`` skips it, ~2 min): the test split holds ~30 math pages from ~25 sites,
so one page moves its F1 by ~0.015. The chosen row's whole protocol is also run on every site
(:func:`classifiers.cv.nested_cross_validate`): 5 outer folds by site over all pages; per outer fold, thresholds
by 5-fold CV on the other sites and a model on the seed + those pages, scoring the held-out sites. Every page is
a test page once, and nothing about its site was seen. Reported beside the fixed test split, never used to choose.

First pass (always run; ``--only-first-pass``: alone, under a minute): the crawl scan's high-recall first pass
(:mod:`classifiers.firstpass`: HTML -> fast view -> fastText + markup rule) trained on the train sites of this same
split, its threshold the highest keeping >= 99.5 % of the validation (and training) math pages, reported on the
test sites: math pages kept and general pages let through.

Speed: the same documents (all pages + the held-out seed texts, at most 600) scored by datatrove's
``FastTextClassifierFilter`` (raw text, one ``predict`` per document) and by our batched scorer (preprocessing
included), with the chosen row's input caps and with full-text input (no caps; its own model, trained without
caps, its own CV); CPU seconds of the process, 11 paired repeats (:func:`paired_times`; median seconds, ratio =
median of the per-repeat ratios), each side's test-site F1 beside it
(datatrove's: the chosen model on raw text, threshold from the fold models' raw-text out-of-fold scores).

    python bench/bench_classify.py [--quick] [--more] [--rows SUBSTR ...] [--folds 5] [--only-first-pass]
                                   [--no-speed] [--no-nested] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

from classifiers.cv import (  # noqa: E402
    CV_TIE,
    CVResult,
    choose_row,
    cross_validate,
    fasttext_fit,
    nested_cross_validate,
    operating_points,
    repeated,
)
from classifiers.data import MATH, OTHER, Example, load_examples, split  # noqa: E402
from classifiers.metrics import metrics_at  # noqa: E402
from classifiers.model import MathClassifier, TrainParams, train_model  # noqa: E402
from classifiers.pages import Page, assign_splits, read_pages, split_pages  # noqa: E402
from classifiers.preprocess import Features  # noqa: E402

KEYWORDS = re.compile(
    r"\\(?:frac|sum|int|sqrt|alpha|beta|theta|lambda|mathbb|mathcal|begin\{(?:equation|align))|\$\$|\\\(|\\\[|"
    r"\b(?:theorem|lemma|proof|equation|integral|derivative|matrix|polynomial|eigenvalue|probability)\b|"
    r"定理|方程|函数|矩阵|证明|积分|导数",
    re.IGNORECASE,
)
WEB = TrainParams(dim=64, epoch=20, lr=0.5, bucket=200_000, threads=1)  # the README's web settings
V2 = Features(density=False, strip_code=False)
HIGH_RECALL = 0.995
SPEED_GOAL = 0.8  # scoring CPU time vs datatrove's FastTextClassifierFilter, with our caps
SPEED_REPEATS = 11  # per row (the choice) and the speed table


def keyword_scores(texts: list[str], min_hits: int = 3) -> np.ndarray:
    return np.array([len(KEYWORDS.findall(t)) >= min_hits for t in texts], dtype=np.float32)


def _y(pages: list[Page]) -> list[bool]:
    return [p.label == MATH for p in pages]


def _lang_f1(scores, pages: list[Page], threshold: float, lang: str) -> float:
    idx = [i for i, p in enumerate(pages) if p.lang == lang]
    return metrics_at(np.asarray(scores)[idx], [pages[i].label == MATH for i in idx], threshold).f1


def evaluate(name: str, oof, ts, dev: list[Page], test: list[Page]) -> dict:
    """Thresholds from the pooled out-of-fold scores ``oof`` of the dev pages, reported on the test scores."""
    final, high = operating_points(oof, _y(dev), HIGH_RECALL)
    m, h = metrics_at(ts, _y(test), final.threshold), metrics_at(ts, _y(test), high.threshold)
    r4 = lambda x: round(float(x), 4)  # noqa: E731
    row = {"row": name, "threshold": r4(final.threshold), "cv_p": r4(final.metrics.precision),
           "cv_r": r4(final.metrics.recall), "cv_f1": r4(final.metrics.f1),
           "cv_f1_en": r4(_lang_f1(oof, dev, final.threshold, "en")),
           "cv_f1_zh": r4(_lang_f1(oof, dev, final.threshold, "zh")),
           "test_p": r4(m.precision), "test_r": r4(m.recall), "test_f1": r4(m.f1),
           "test_f1_en": r4(_lang_f1(ts, test, final.threshold, "en")),
           "test_f1_zh": r4(_lang_f1(ts, test, final.threshold, "zh")),
           "hr_threshold": r4(high.threshold), "hr_cv_general_pass": r4(high.general_pass),
           "hr_test_recall": r4(h.recall), "hr_test_general_pass": r4(h.fp / max(h.fp + h.tn, 1))}
    print(f"  {name:50s} CV F1 {row['cv_f1']:.3f} (en {row['cv_f1_en']:.3f}, zh {row['cv_f1_zh']:.3f}) | test P "
          f"{m.precision:.3f} R {m.recall:.3f} F1 {m.f1:.3f} (en {row['test_f1_en']:.3f}, zh {row['test_f1_zh']:.3f})"
          f" @ {final.threshold:.3f} | high-recall: R {h.recall:.3f}, general pass {row['hr_test_general_pass']:.3f} "
          f"(CV {row['hr_cv_general_pass']:.3f})", flush=True)
    return row


class Recorder:
    """A :data:`classifiers.cv.Fit` that also keeps what datatrove's raw-text scoring gives with each fold model."""

    def __init__(self, params: TrainParams):
        self.fit_one, self.raw = fasttext_fit(params), {}

    def __call__(self, out: str, train):
        score = self.fit_one(out, train)
        clf = MathClassifier(out)

        def both(texts):
            self.raw.update(zip(texts, raw_scores(clf, texts), strict=True))
            return score(texts)
        return both


def raw_scores(clf: MathClassifier, texts) -> np.ndarray:
    """What datatrove's ``FastTextClassifierFilter`` computes: one ``predict`` on the raw text per document."""
    out = []
    for t in texts:
        labels, probs = clf.model.predict(t.replace("\n", " "), k=-1)
        out.append(dict(zip(labels, probs, strict=True)).get("__label__math", 0.0))
    return np.clip(np.array(out, dtype=np.float32), 0, 1)


def paired_times(scorers: dict, repeats: int) -> dict[str, list[float]]:
    """CPU seconds of each scorer (a set-up returning the timed call) per repeat; within a repeat the scorers
    run back to back, in turned order every other repeat (load that changes between repeats hits them alike)."""
    times: dict[str, list[float]] = {k: [] for k in scorers}
    for r in range(repeats):
        for name in (list(scorers) if r % 2 == 0 else list(scorers)[::-1]):
            run = scorers[name]()  # set-up (datatrove's documents) outside the clock
            t0 = time.process_time()
            run()
            times[name].append(time.process_time() - t0)
    return times


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over the repeats of ours / theirs (same repeat): steadier than a ratio of medians on a
    machine whose load changes between repeats."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def datatrove_scorer(clf: MathClassifier, texts: list[str]):
    """datatrove's ``FastTextClassifierFilter`` with the same model, one ``filter`` per document."""
    from datatrove.data import Document
    from datatrove.pipeline.filters.fasttext_filter import FastTextClassifierFilter

    peer = FastTextClassifierFilter(str(clf.bin_path), keep_labels=("math", 0.5))

    def setup():
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]  # the filter rewrites doc.text
        return lambda: [peer.filter(d) for d in docs]
    return setup


def quick_ratio(clf: MathClassifier, texts: list[str], repeats: int = SPEED_REPEATS) -> float:
    """CPU-time ratio ours (caps) / datatrove's filter, same model and documents (:func:`paired_ratio`)."""
    t = paired_times({"datatrove": datatrove_scorer(clf, texts),
                      "ours": lambda: lambda: clf.score(texts, batch_size=512)}, repeats)
    return paired_ratio(t["ours"], t["datatrove"])


def run_row(tmp: Path, name: str, base: list[Example], params: TrainParams, repeat: int, dev: list[Page],
            test: list[Page], folds: int, speed_texts: list[str] | None = None
            ) -> tuple[dict, CVResult, MathClassifier, dict]:
    """Cross-validate one setting by site over ``dev``, train it on seed + every dev page, score ``test``;
    also the fold models' raw-text (datatrove-style) scores of their held-out pages."""
    fit = Recorder(params)
    cv = cross_validate(base, dev, fit, folds=folds, page_repeat=repeat, target_recall=HIGH_RECALL,
                        workdir=str(tmp), workers=2) if repeat else None
    out = tmp / re.sub(r"\W+", "_", name)[:60]
    train_model(str(out), [*base, *repeated(dev, repeat)], [], params)
    clf = MathClassifier(str(out))
    if cv is None:  # no pages in training: every fold model would be this one
        scores = clf.score([p.text for p in dev])
        cv = CVResult({}, scores, *operating_points(scores, _y(dev), HIGH_RECALL))
        fit.raw.update(zip([p.text for p in dev], raw_scores(clf, [p.text for p in dev]), strict=True))
    row = evaluate(name, cv.scores, clf.score([p.text for p in test]), dev, test)
    row["speed_ratio"] = round(quick_ratio(clf, speed_texts), 3) if speed_texts else None
    if speed_texts:
        print(f"    speed ratio (CPU, ours with caps / datatrove, median of {SPEED_REPEATS} paired repeats): "
              f"{row['speed_ratio']:.2f}", flush=True)
    row["params"] = {"page_repeat": repeat, "seed_examples": len(base), "dim": params.dim, "epoch": params.epoch,
                     "lr": params.lr, "word_ngrams": params.word_ngrams, "minn": params.minn, "maxn": params.maxn,
                     "features": params.features.to_dict(), "max_chars": params.max_chars}
    return row, cv, clf, fit.raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="three ablation rows, 3 speed repeats (exploring)")
    ap.add_argument("--rows", nargs="*", help="only the ablation rows whose name holds one of these (exploring)")
    ap.add_argument("--more", action="store_true", help="also the rows explored on CV only (slow or tied)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (by site) over the dev sites")
    ap.add_argument("--no-speed", action="store_true", help="skip the code model, filters and speed (exploring)")
    ap.add_argument("--no-nested", action="store_true", help="skip the chosen row's nested CV over all sites")
    ap.add_argument("--only-first-pass", action="store_true", help="only the split and the crawl's first pass")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    t_start = time.time()
    seed = SHARED / "seed"
    pos_en = load_examples(str(seed / "math_text.jsonl"), MATH)
    pos_zh = load_examples(str(seed / "math_text_zh.jsonl"), MATH)
    neg_en = load_examples(str(seed / "general_text.jsonl"), OTHER)
    neg_zh = load_examples(str(seed / "general_text_zh.jsonl"), OTHER)
    seed_all, seed_en = pos_en + pos_zh + neg_en + neg_zh, pos_en + neg_en
    # the seed code files on both sides (math code vs general code), loaded as `classify train -p TEXT -p CODE
    # -n TEXT -n CODE` loads them (one call per side: the same examples in the same order, so the same model)
    code_pos = load_examples(str(seed / "math_code.jsonl"), MATH)
    code_neg = load_examples(str(seed / "general_code.jsonl"), OTHER)
    seed_code = (load_examples([str(seed / "math_text.jsonl"), str(seed / "math_code.jsonl")], MATH)
                 + load_examples([str(seed / "general_text.jsonl"), str(seed / "general_code.jsonl")], OTHER))
    rejects: list[str] = []
    pages = read_pages([str(SHARED / "web" / "pages.jsonl"), str(SHARED / "web2" / "pages.jsonl")], rejects)
    splits = assign_splits(pages)
    parts = split_pages(pages, splits)
    for k, v in parts.items():
        print(f"{k}: {len(v)} pages ({sum(_y(v))} math; en {sum(p.lang == 'en' for p in v)}, "
              f"zh {sum(p.lang == 'zh' for p in v)}) from {len({p.site for p in v})} sites")
    dev, test = parts["train"] + parts["validation"], parts["test"]
    texts = [p.text for p in pages] + [e.text for e in split(seed_all, 0.1, seed=5)[1][:600]]
    tmp = Path(tempfile.mkdtemp(prefix="bench_classify_"))
    results: dict = {"split": {k: {"pages": len(v), "math": sum(_y(v)), "sites": len({p.site for p in v})}
                               for k, v in parts.items()}, "folds": args.folds, "rejects": rejects,
                     "ablation": [], "speed": {}}
    results["first_pass"] = first_pass(tmp, splits)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if args.only_first_pass:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    rows = results["ablation"]
    print(f"ablation ({args.folds}-fold CV by site over the {len(dev)} dev pages: thresholds from pooled "
          "out-of-fold scores; test: the row trained on seed + every dev page):")
    kw = lambda ps: keyword_scores([p.text for p in ps])  # noqa: E731
    rows.append(evaluate("keyword prefilter (>= 3 hits)", kw(dev), kw(test), dev, test))
    R = dataclasses.replace
    C15 = {"max_chars": 1500, "max_tokens": 288}  # a longer window: 1 500 characters / 288 tokens
    CH = "v3, pages x8, no Chinese seed, 1 500 chars / 288 tokens"  # the setting of the English rows below
    C16 = "v3, pages x16, 1 500 chars / 288 tokens"
    ablation = {
        "seed only (v3 features)": (seed_all, WEB, 0),
        "seed + pages x8, no markup tokens": (seed_all, R(WEB, features=Features(False, False, False)), 8),
        "seed + pages x8, v2 markup tokens": (seed_all, R(WEB, features=V2), 8),
        "  + code blocks left out": (seed_all, R(WEB, features=Features(density=False)), 8),
        "  + densities, prices, program tokens (v3)": (seed_all, WEB, 8),
        "v3, pages x1": (seed_all, WEB, 1),
        "v3, pages x8, no Chinese seed": (seed_en, WEB, 8),
        "v3, pages x2, no Chinese seed": (seed_en, WEB, 2),
        "v3, pages x4, no Chinese seed": (seed_en, WEB, 4),
        "v3, pages x8, no Chinese seed, wordNgrams 2": (seed_en, R(WEB, word_ngrams=2), 8),
        "v3, pages x4, no Chinese seed, 1 500 chars / 288 tokens": (seed_en, R(WEB, **C15), 4),
        "v3, pages x8, no Chinese seed, 1 500 chars / 288 tokens": (seed_en, R(WEB, **C15), 8),
        "v3, pages x16, no Chinese seed, 1 500 chars / 288 tokens": (seed_en, R(WEB, **C15), 16),
        "v3, pages x8, no Chinese seed, 2 000 chars / 384 tokens": (seed_en, R(WEB, max_chars=2000, max_tokens=384), 8),
        "v3, pages x4, no Chinese seed, + code seed": (seed_code, WEB, 4),
        "v3, pages x8, no Chinese seed, + code seed": (seed_code, WEB, 8),
        "v3, pages x8, no Chinese seed, + code seed, 1 500 chars / 288 tokens": (seed_code, R(WEB, **C15), 8),
        "v3, pages x16, no Chinese seed, + code seed, 1 500 chars / 288 tokens": (seed_code, R(WEB, **C15), 16),
        "v3, DeepSeekMath fastText defaults (dim 256, lr 0.1, 3 epochs)": (seed_all, TrainParams(threads=1), 8),
    }
    more = {  # explored on CV only (--more): slower, or tied with the rows above within a page or two
        "v3, pages x4, 1 500 chars / 288 tokens": (seed_all, R(WEB, **C15), 4),
        "v3, pages x4, no Chinese seed, 1 250 chars / 240 tokens": (seed_en, R(WEB, max_chars=1250, max_tokens=240), 4),
        "v3, pages x16, no Chinese seed": (seed_en, WEB, 16),
        "v3, pages x4": (seed_all, WEB, 4),
        "v3, pages x8, Chinese math seed only": (seed_en + pos_zh, WEB, 8),
        "v3, pages x8, no seed": ([], WEB, 8),
        "v3, pages x4, no Chinese seed, wordNgrams 2": (seed_en, R(WEB, word_ngrams=2), 4),
        "v3, pages x8, no Chinese seed, char n-grams 2-4": (seed_en, R(WEB, minn=2, maxn=4), 8),
        "v3, pages x8, no Chinese seed, dim 128": (seed_en, R(WEB, dim=128), 8),
        "v3, pages x8, no Chinese seed, 10 epochs": (seed_en, R(WEB, epoch=10), 8),
        "v3, pages x2, no Chinese seed, 1 500 chars / 288 tokens": (seed_en, R(WEB, **C15), 2),
        # English F1 (the weaker language on the test sites), explored on CV at the chosen setting
        f"{CH}, English pages x16": (seed_en, R(WEB, **C15), {"en": 16, "*": 8}),
        f"{CH}, 30 epochs": (seed_en, R(WEB, **C15, epoch=30), 8),
        f"{CH}, lr 1.0": (seed_en, R(WEB, **C15, lr=1.0), 8),
        f"{CH}, minCount 1": (seed_en, R(WEB, **C15, min_count=1), 8),
        f"{CH}, dim 32": (seed_en, R(WEB, **C15, dim=32), 8),  # faster, but so is the peer with the same model
        f"{CH}, wordNgrams 2": (seed_en, R(WEB, **C15, word_ngrams=2), 8),
        f"{CH}, char n-grams 3-5": (seed_en, R(WEB, **C15, minn=3, maxn=5), 8),
        # the seed's composition at the 1 500-character window, pages x16 (English F1, explored on CV)
        f"{C16}, no seed": ([], R(WEB, **C15), 16),
        f"{C16}, English math seed only": (pos_en, R(WEB, **C15), 16),
        f"{C16}, English general seed only": (neg_en, R(WEB, **C15), 16),
        f"{C16}, every 2nd English seed text": (pos_en[::2] + neg_en[::2], R(WEB, **C15), 16),
        f"{C16}, the other half of the English seed": (pos_en[1::2] + neg_en[1::2], R(WEB, **C15), 16),
        f"{C16}, + math code seed only": (seed_en + code_pos, R(WEB, **C15), 16),
        f"{C16}, + general code seed only": (seed_en + code_neg, R(WEB, **C15), 16),
        f"{C16}, code seed only (no text seed)": (code_pos + code_neg, R(WEB, **C15), 16),
    }
    if args.more:
        ablation |= more
    if args.quick:
        quick = ("seed + pages x8, v2 markup tokens", "v3, pages x8, no Chinese seed",
                 "v3, pages x4, no Chinese seed, 1 500 chars / 288 tokens")
        ablation = {k: v for k, v in ablation.items() if k in quick}
    if args.rows:
        ablation = {k: v for k, v in ablation.items() if any(r in k for r in args.rows)}
    fitted = {}
    for name, (base, params, repeat) in ablation.items():
        row, cv, clf, raw = run_row(tmp, name, base, params, repeat, dev, test, args.folds, texts)
        rows.append(row)
        fitted[name] = (row, cv, clf, base, params, repeat, raw)
    # the choice is made on the dev sites' out-of-fold scores only, among rows that keep the speed goal
    chosen = choose_row({n: f[0] for n, f in fitted.items()}, SPEED_GOAL)
    row, cv, clf, base, params, repeat, raw = fitted[chosen]
    results["chosen"] = chosen
    print(f"chosen on the CV of the dev sites (rows at speed ratio <= {SPEED_GOAL}; CV F1 within {CV_TIE} of the "
          f"best are ties): {chosen}")
    results["misclassified_cv"] = _errors(dev, cv.scores, row["threshold"], "out-of-fold")
    results["misclassified"] = _errors(test, clf.score([p.text for p in test]), row["threshold"], "test-site")
    if args.json:  # the ablation is kept even if a later part fails
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if not args.no_nested:
        results["nested"] = nested(tmp, pages, base, params, repeat, args.folds)
    if not args.no_speed:
        results["code"] = code_model(tmp, seed)
        results["filters"] = filter_removals(parts)
        results["speed"] = speed(tmp, (row, clf, raw), base, params, repeat, dev, test, texts, args)
    results["seconds"] = round(time.time() - t_start, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    shutil.rmtree(tmp, ignore_errors=True)
    _drop_peer_copies(tmp)


def nested(tmp: Path, pages: list[Page], base, params: TrainParams, repeat, folds: int) -> dict:
    """The chosen row's whole protocol measured on every site (:func:`classifiers.cv.nested_cross_validate`)."""
    t0 = time.time()
    report = nested_cross_validate(base, pages, fasttext_fit(params), folds=folds, inner_folds=folds,
                                   page_repeat=repeat, target_recall=HIGH_RECALL, workdir=str(tmp),
                                   workers=2).report(pages)
    m, hr = report["final"], report["high_recall"]
    langs = ", ".join(f"{r['group']} {r['f1']:.3f} ({r['math']} math: {r['fn']} missed, {r['fp']} general kept)"
                      for r in report["per_language"] if r["group"] in ("en", "zh"))
    print(f"nested CV by site over all {report['pages']} pages ({report['sites']} sites, {folds} outer folds, "
          f"thresholds by {folds}-fold CV on the other sites): P {m['precision']:.3f} R {m['recall']:.3f} "
          f"F1 {m['f1']:.3f}; {langs}; high-recall: R {hr['recall']:.3f}, general pass {hr['general_pass']:.3f}; "
          f"outer thresholds {[t['final'] for t in report['thresholds']]} ({time.time() - t0:.0f} s)", flush=True)
    for e in report["errors"]:
        print(f"    nested error: {e}")
    return report


def _drop_peer_copies(tmp: Path) -> None:
    """datatrove's filter copies each model it loads into its asset cache: drop this run's copies (~50 MB each)."""
    cache = Path.home() / ".cache" / "huggingface" / "assets" / "datatrove" / "filters" / "fasttext"
    for f in cache.glob(f"{str(tmp).replace('/', '_')}_*"):
        f.unlink(missing_ok=True)


def _errors(pages: list[Page], scores, threshold: float, what: str) -> list[dict]:
    out = []
    for p, s in zip(pages, np.asarray(scores).tolist(), strict=True):
        if (s >= threshold) != (p.label == MATH):
            out.append({"page": p.key.rsplit("/", 1)[-1], "site": p.site, "lang": p.lang, "label": p.label,
                        "score": round(s, 4)})
            print(f"    {what} error: {out[-1]}")
    return out


def first_pass(tmp: Path, splits: dict[str, str]) -> dict:
    """The crawl's first pass (:func:`classifiers.firstpass.train_first_pass`) on this split: the whole rule's
    math pages kept and general pages let through on the validation sites (threshold) and the test sites."""
    from classifiers.firstpass import train_first_pass

    card = train_first_pass(str(tmp / "firstpass"), [str(SHARED / "web"), str(SHARED / "web2")], split=splits,
                            split_name="classify bench: classifiers.pages.assign_splits")
    fp = card["first_pass"]
    out = {"threshold": card["threshold"], "target_recall": fp["target_recall"],
           "min_markup": fp["test_rule"]["min_markup"]}
    for name, m in (("validation", card["validation_rule"]), ("test", fp["test_rule"])):
        out[name] = {"recall": round(m["recall"], 4), "math_kept": m["tp"], "math": m["tp"] + m["fn"],
                     "general_pass": round(m["fp"] / max(m["fp"] + m["tn"], 1), 4), "general_passed": m["fp"],
                     "general": m["fp"] + m["tn"]}
    out["test_misses"] = [k.rsplit("/", 1)[-1] for k in fp["test_misses"]]
    out["test_general_passed"] = [k.rsplit("/", 1)[-1] for k in fp["test_general_passed"]]
    v, t = out["validation"], out["test"]
    print(f"first pass (classifiers.firstpass on this split; threshold {out['threshold']:.4f}: highest keeping >= "
          f"{out['target_recall']:.1%} of the validation and training math pages; or markup >= {out['min_markup']}): "
          f"validation {v['math_kept']}/{v['math']} math kept, {v['general_passed']}/{v['general']} general let "
          f"through | test recall {t['recall']:.4f} ({t['math_kept']}/{t['math']}), general let through "
          f"{t['general_pass']:.3f} ({t['general_passed']}/{t['general']}); test misses {out['test_misses']}, "
          f"general let through {out['test_general_passed']}", flush=True)
    return out


def code_model(tmp: Path, seed: Path) -> dict:
    cpos = load_examples(str(seed / "math_code.jsonl"), MATH)
    cneg = load_examples(str(seed / "general_code.jsonl"), OTHER)
    ctr, cte = split(cpos + cneg, 0.2, seed=123)
    train_model(str(tmp / "code"), ctr, [], WEB)
    clf = MathClassifier(str(tmp / "code"))
    m = metrics_at(clf.score([e.text for e in cte]), [e.label == MATH for e in cte], 0.5)
    print(f"code model (math code vs general code, held-out files, 0.5): P {m.precision:.3f} R {m.recall:.3f} "
          f"F1 {m.f1:.3f}")
    return m.to_dict()


def filter_removals(parts: dict[str, list[Page]]) -> dict:
    """The quality filters (default settings) on every real math page, by split."""
    from corpus.filters.heuristics import check_text

    out = {}
    for name, pages in parts.items():
        math = [p for p in pages if p.label == MATH]
        removed = {p.key.rsplit("/", 1)[-1]: check_text(p.text, lang=p.lang).reason for p in math}
        removed = {k: v for k, v in removed.items() if v}
        out[name] = {"math_pages": len(math), "removed": len(removed), "reasons": removed}
        print(f"quality filters, {name} sites: {len(removed)} of {len(math)} math pages removed {removed}")
    return out


def speed(tmp: Path, chosen: tuple, base, params: TrainParams, repeat: int, dev: list[Page], test: list[Page],
          texts: list[str], args) -> dict:
    """CPU seconds to score ``texts`` (median of the repeats) and each scorer's test-site F1 (its own CV
    thresholds: datatrove's from the fold models' raw-text scores, full text from its own CV)."""
    caps, clf, raw = chosen
    peer_row = evaluate("speed row: datatrove (raw text)", np.array([raw[p.text] for p in dev]),
                        raw_scores(clf, [p.text for p in test]), dev, test)
    full_row, _, full, _ = run_row(tmp, "speed row: full text (no caps)", base,
                                   dataclasses.replace(params, max_chars=10**9, max_tokens=10**9), repeat, dev, test,
                                   args.folds)
    f1 = {"datatrove": peer_row, "caps": caps, "full text": full_row}
    repeats = 3 if args.quick else 11
    times = paired_times({"datatrove": datatrove_scorer(clf, texts),
                          "caps": lambda: lambda: clf.score(texts, batch_size=512),
                          "full text": lambda: lambda: full.score(texts, batch_size=512)}, repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"scoring {len(texts)} docs ({mb:.1f} MB), {repeats} paired repeats (median seconds; ratio: median of "
          "the per-repeat ratios):")
    out = {"docs": len(texts), "mb": round(mb, 2), "repeats": repeats}
    for k in times:
        ratio = paired_ratio(times[k], times["datatrove"])
        out[k] = {"s": round(med[k], 3), "ratio": round(ratio, 3),
                  "ratio_of_medians": round(med[k] / med["datatrove"], 3),
                  "runs": [round(x, 3) for x in times[k]], "test_f1": f1[k]["test_f1"], "cv_f1": f1[k]["cv_f1"]}
        print(f"  {k:10s} {med[k]:.3f}s  ratio {ratio:.2f} (of medians {med[k] / med['datatrove']:.2f})  test-site "
              f"F1 {f1[k]['test_f1']:.3f} (CV {f1[k]['cv_f1']:.3f})")
    out["caps_setting"] = {"max_chars": clf.max_chars, "max_tokens": clf.max_tokens}  # the chosen model's caps
    return out


if __name__ == "__main__":
    main()

"""Benchmark the fastText math classifiers on real data (../shared/data), against baselines and datatrove.

Quality: train on the seed data (English + Chinese math vs general text; math vs general code), evaluate on
held-out seed documents and on the real web pages (text extracted with plain trafilatura; 5-fold cross
validation: each fold's pages are scored by a model that never saw them). Thresholds are picked on the
model's own validation split (target recall 0.95), never on the test documents. Beside it, a keyword/regex
prefilter in the spirit of OpenWebMath's.

Speed: scoring throughput of our batched scorer (preprocessing included) vs datatrove's
``FastTextClassifierFilter`` (one ``predict`` per document) with the same model on the same documents.

    python bench/bench_classify.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

from classifiers.data import MATH, OTHER, Example, load_examples, split  # noqa: E402
from classifiers.metrics import metrics_at  # noqa: E402
from classifiers.model import MathClassifier, TrainParams, train_model  # noqa: E402
from classifiers.preprocess import MAX_CHARS, MAX_TOKENS  # noqa: E402

# OpenWebMath-style prefilter: math markup or math vocabulary anywhere in the text.
KEYWORDS = re.compile(
    r"\\(?:frac|sum|int|sqrt|alpha|beta|theta|lambda|mathbb|mathcal|begin\{(?:equation|align))|\$\$|\\\(|\\\[|"
    r"\b(?:theorem|lemma|proof|equation|integral|derivative|matrix|polynomial|eigenvalue|probability)\b|"
    r"定理|方程|函数|矩阵|证明|积分|导数",
    re.IGNORECASE,
)


def keyword_scores(texts: list[str], min_hits: int = 3) -> np.ndarray:
    return np.array([len(KEYWORDS.findall(t)) >= min_hits for t in texts], dtype=np.float32)


def web_examples() -> list[Example]:
    import trafilatura

    out = []
    for line in (SHARED / "web" / "pages.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        html = (SHARED / "web" / r["file"]).read_bytes().decode("utf-8", "replace")
        text = trafilatura.extract(html, include_tables=True) or ""
        out.append(Example(text, MATH if r["label"] == "math" else OTHER, r["file"]))
    return out


def report(name: str, scores, labels, threshold: float) -> dict:
    m = metrics_at(scores, labels, threshold)
    row = {"set": name, "n_math": int(np.sum(labels)), "n_other": int(len(labels) - np.sum(labels)),
           "threshold": round(threshold, 4), "precision": round(m.precision, 4), "recall": round(m.recall, 4),
           "f1": round(m.f1, 4)}
    print(f"  {name:38s} P={m.precision:.4f} R={m.recall:.4f} F1={m.f1:.4f} @ {threshold:.3f} "
          f"({row['n_math']} math / {row['n_other']} other)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller models and fewer repeats")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    seed = SHARED / "seed"
    pos = load_examples([str(seed / "math_text.jsonl"), str(seed / "math_text_zh.jsonl")], MATH)
    neg = load_examples([str(seed / "general_text.jsonl"), str(seed / "general_text_zh.jsonl")], OTHER)
    train_seed, test_seed = split(pos + neg, 0.2, seed=123)  # held out: never used for training or thresholds
    web = web_examples()
    configs = {
        "deepseekmath": TrainParams(threads=1, target_recall=0.95),  # dim 256, lr 0.1, ngrams 3, minCount 3, 3 ep
        "small-data": TrainParams(dim=64, epoch=20, lr=0.5, bucket=200_000, threads=1, target_recall=0.95),
    }
    if args.quick:
        configs = {"small-data": TrainParams(dim=32, epoch=15, lr=0.5, bucket=100_000, threads=1, target_recall=0.95)}
    results: dict = {"quality": [], "speed": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench_classify_"))
    y_seed = [e.label == MATH for e in test_seed]
    y_web = [e.label == MATH for e in web]
    print("keyword/regex prefilter (OpenWebMath-style, >= 3 hits):")
    results["quality"].append({"model": "keyword-prefilter", **report("held-out seed text", keyword_scores(
        [e.text for e in test_seed]), y_seed, 0.5)})
    results["quality"].append({"model": "keyword-prefilter", **report("web pages", keyword_scores(
        [e.text for e in web]), y_web, 0.5)})
    for name, params in configs.items():
        print(f"fastText {name}: {params.fasttext_kwargs()}")
        tr, va = split(train_seed, 0.1, seed=7)
        card = train_model(str(tmp / name), tr, va, params)
        clf = MathClassifier(str(tmp / name))
        thr = card["threshold"]
        results["quality"].append({"model": name, **report("held-out seed text", clf.score(
            [e.text for e in test_seed]), y_seed, thr)})
        results["quality"].append({"model": name, **report("web pages, seed-only model", clf.score(
            [e.text for e in web]), y_web, thr)})
        if name != "small-data":
            continue
        folds, scores, labels, raw = 5, [], [], []
        for f in range(folds):
            wtr = [e for i, e in enumerate(web) if i % folds != f]
            wte = [e for i, e in enumerate(web) if i % folds == f]
            wva = wtr[::4]  # a quarter of the training pages joins the validation split (threshold choice)
            wtr = [e for i, e in enumerate(wtr) if i % 4]
            fold_card = train_model(str(tmp / f"{name}_f{f}"), tr + wtr, va + wva, params)
            fclf = MathClassifier(str(tmp / f"{name}_f{f}"))
            s = fclf.score([e.text for e in wte])
            # the fold model's own validation threshold, never chosen on the test pages
            scores += list((s >= fold_card["threshold"]).astype(np.float32))
            raw += list(s)
            labels += [e.label == MATH for e in wte]
        results["quality"].append({"model": name, **report("web pages, 5-fold CV, card threshold", scores, labels,
                                                           0.5)})
        results["quality"].append({"model": name, **report("web pages, 5-fold CV, threshold 0.5", raw, labels, 0.5)})
    # code model
    cpos = load_examples(str(seed / "math_code.jsonl"), MATH)
    cneg = load_examples(str(seed / "general_code.jsonl"), OTHER)
    ctr, cte = split(cpos + cneg, 0.2, seed=123)
    ctr, cva = split(ctr, 0.1, seed=7)
    cparams = configs.get("small-data")
    ccard = train_model(str(tmp / "code"), ctr, cva, cparams)
    print("code model (math code vs general code), small-data params:")
    results["quality"].append({"model": "code", **report("held-out code files", MathClassifier(str(tmp / "code"))
                                                        .score([e.text for e in cte]),
                                                        [e.label == MATH for e in cte], ccard["threshold"])})
    caps = {"default caps": (MAX_CHARS, MAX_TOKENS), "long caps": (20_000, 2_048)}
    small = MathClassifier(str(tmp / "small-data"))
    for name, (max_chars, max_tokens) in caps.items():  # quality of the same model when scoring with each cap
        small.max_chars, small.max_tokens = max_chars, max_tokens
        results["quality"].append({"model": f"small-data, {name}", **report(
            f"held-out seed text, {name}", small.score([e.text for e in test_seed]), y_seed,
            small.card["threshold"])})
    results["speed"] = speed(str(tmp / "small-data" / "model.bin"), [e.text for e in test_seed + web],
                             repeats=1 if args.quick else 3, caps=caps)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def speed(model_bin: str, texts: list[str], repeats: int, caps: dict[str, tuple[int, int]]) -> dict:
    """Seconds to score ``texts``: datatrove's filter (raw text, one predict per document) vs our batched
    scorer (preprocessing included) at each ``(max_chars, max_tokens)`` cap; best of ``repeats``."""
    from datatrove.data import Document
    from datatrove.pipeline.filters.fasttext_filter import FastTextClassifierFilter

    peer = FastTextClassifierFilter(model_bin, keep_labels=("math", 0.5))
    _ = peer.model
    ours = {name: MathClassifier(model_bin, threshold=0.5) for name in caps}
    for name, (max_chars, max_tokens) in caps.items():
        ours[name].max_chars, ours[name].max_tokens = max_chars, max_tokens
        _ = ours[name].model
    mb = sum(len(t.encode()) for t in texts) / 1e6
    best = {"datatrove": float("inf"), **{name: float("inf") for name in caps}}
    for _ in range(repeats):
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]  # the filter rewrites doc.text
        t0 = time.perf_counter()
        for d in docs:
            peer.filter(d)
        best["datatrove"] = min(best["datatrove"], time.perf_counter() - t0)
        for name, clf in ours.items():
            t0 = time.perf_counter()
            clf.score(texts, batch_size=512)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"scoring {len(texts)} docs ({mb:.1f} MB): datatrove FastTextClassifierFilter {best['datatrove']:.3f}s")
    out = {"docs": len(texts), "mb": round(mb, 2), "datatrove_s": round(best["datatrove"], 3)}
    for name, (max_chars, max_tokens) in caps.items():
        ratio = best[name] / best["datatrove"]
        print(f"  ours, cap {max_chars} chars / {max_tokens} tokens: {best[name]:.3f}s; "
              f"time ratio ours/datatrove = {ratio:.2f}")
        out[name] = {"max_chars": max_chars, "max_tokens": max_tokens, "s": round(best[name], 3),
                     "ratio": round(ratio, 3)}
    return out


if __name__ == "__main__":
    main()

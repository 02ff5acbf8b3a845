"""Benchmark the fastText math classifiers on real data (../shared/data), against baselines and datatrove.

Quality. Text of the real web pages (``web/``, 45 math / 323 general) and of the WARC records (``warc/``) is
extracted with our extract code (``corpus.extract``: formulas kept as LaTeX). Rows:

* a keyword/regex prefilter in the spirit of OpenWebMath's (>= 3 hits), on the same texts;
* seed-only models (seed math text vs seed general text, 20 % of the seed held out): held-out seed and all web
  pages; then seed + the WARC pages as negatives;
* web pages, 5-fold cross validation split by SITE (registered domain; pages without a URL are grouped by
  the site their file name names): each fold's pages are scored by a model that never saw a page of their
  site. Supervised, DeepSeekMath hyperparameters: the seed text + WARC + the other folds' pages. Threshold 0.5,
  or chosen on web-like validation data: the pages of one more held-out fold of sites (best F1 there), never
  the test fold;
* the recall-round path without page labels: a seed + WARC model, 2 recall rounds (``classifiers.recall``) over
  the other folds' pages + WARC as the unlabeled pool (domain expansion adds pages of math URL paths as
  positives), the last round's model scores the test fold;
* the code model (math code vs general code, held-out code files).

WARC labels: the records with >= 3 keyword hits were looked at by hand; only ``localhost/math.html`` (a
hand-made MathJax page in dolma's test data) is math, every other record is general (academic homepages,
iana.org, Common Crawl excerpts). Exact duplicate texts are dropped.

Speed: scoring time of our batched scorer (preprocessing included) vs datatrove's ``FastTextClassifierFilter``
(raw text, one ``predict`` per document) with the same model on the same documents, in one run; CPU seconds
of the process (both are single-threaded), best of N.

    python bench/bench_classify.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

from classifiers.data import MATH, OTHER, Example, load_examples, split  # noqa: E402
from classifiers.metrics import best_f1_threshold, metrics_at  # noqa: E402
from classifiers.model import MathClassifier, TrainParams, train_model  # noqa: E402
from classifiers.preprocess import MAX_CHARS, MAX_TOKENS  # noqa: E402

# OpenWebMath-style prefilter: math markup or math vocabulary anywhere in the text.
KEYWORDS = re.compile(
    r"\\(?:frac|sum|int|sqrt|alpha|beta|theta|lambda|mathbb|mathcal|begin\{(?:equation|align))|\$\$|\\\(|\\\[|"
    r"\b(?:theorem|lemma|proof|equation|integral|derivative|matrix|polynomial|eigenvalue|probability)\b|"
    r"定理|方程|函数|矩阵|证明|积分|导数",
    re.IGNORECASE,
)
WARC_MATH_URLS = {"http://localhost:8000/math.html"}  # the hand check of the keyword-flagged WARC records
SMALL = TrainParams(dim=64, epoch=20, lr=0.5, bucket=200_000, threads=1, target_recall=0.95)
FOLDS = 5
PUBLIC_SUFFIXES = {"github.io", "wordpress.com", "blogspot.com"}
SECOND_LEVEL = {"co", "com", "ac", "org", "net", "gov", "edu", "ne", "or"}


def keyword_scores(texts: list[str], min_hits: int = 3) -> np.ndarray:
    return np.array([len(KEYWORDS.findall(t)) >= min_hits for t in texts], dtype=np.float32)


def site_of(file: str, url: str | None) -> str:
    """Registered domain of a page (``math.stackexchange.com`` -> ``stackexchange.com``); pages without a URL:
    the site their file name names (``trafilatura__zeit.de.x.html``, ``distill__*``, ``mil__*``)."""
    host = (urlsplit(url).hostname or "").lower() if url else ""
    if not host:
        src, _, name = Path(file).stem.partition("__")
        if src == "trafilatura" and name.count(".") > 1:
            host = name.rsplit(".", 1)[0]
        elif src in ("distill", "mil"):
            return {"distill": "distill.pub", "mil": "mathematics-in-lean"}[src]
        elif src == "readability":
            name = re.sub(r"-\d+$", "", name)
            return "wikipedia.org" if name == "wikipedia" else f"readability:{name}"
        else:
            return Path(file).stem
    parts = host.removeprefix("www.").split(".")
    keep = 3 if (len(parts) >= 3 and parts[-2] in SECOND_LEVEL and len(parts[-1]) == 2) or \
        ".".join(parts[-2:]) in PUBLIC_SUFFIXES else 2
    return ".".join(parts[-keep:])


def web_pages() -> tuple[list[Example], list[str], list[str | None]]:
    """``(examples, sites, urls)`` of the real web pages, text by our extract code."""
    from corpus.extract.web import read_html_file
    from corpus.io import Reject
    from corpus.records import FileContext

    out, sites, urls = [], [], []
    for line in (SHARED / "web" / "pages.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        row = next(read_html_file(str(SHARED / "web" / r["file"]), FileContext("web", "web", r["file"])))
        text = "" if isinstance(row, Reject) else row["text"]
        url = r.get("url") or (None if isinstance(row, Reject) else row.get("url"))
        out.append(Example(text, MATH if r["label"] == "math" else OTHER, r["file"]))
        sites.append(site_of(r["file"], url))
        urls.append(url)
    return out, sites, urls


def warc_pages() -> list[Example]:
    from corpus.extract.web import read_warc
    from corpus.io import Reject
    from corpus.records import FileContext

    out, seen = [], set()
    for path in sorted((SHARED / "warc").iterdir()):
        if path.suffix in (".md", ".jsonl") or ".wat" in path.name:
            continue
        for row in read_warc(str(path), FileContext("warc", "web", path.name)):
            if isinstance(row, Reject) or not row["text"].strip() or row["text"] in seen:
                continue  # the truncated / hand-made invalid files end with a Reject; duplicates dropped
            seen.add(row["text"])
            out.append(Example(row["text"], MATH if row.get("url") in WARC_MATH_URLS else OTHER, row["id"]))
    return out


def report(name: str, scores, labels, threshold: float) -> dict:
    m = metrics_at(scores, labels, threshold)
    row = {"set": name, "n_math": int(np.sum(labels)), "n_other": int(len(labels) - np.sum(labels)),
           "threshold": round(float(threshold), 4), "precision": round(m.precision, 4),
           "recall": round(m.recall, 4), "f1": round(m.f1, 4), "fp": m.fp, "fn": m.fn}
    print(f"  {name:58s} P={m.precision:.3f} R={m.recall:.3f} F1={m.f1:.3f} @ {threshold:.3f} "
          f"(fp {m.fp}, fn {m.fn}; {row['n_math']} math / {row['n_other']} other)", flush=True)
    return row


def _frac(key: str, salt: str) -> float:
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest(), "big") / 2**64


def site_folds(sites: list[str], labels: list[bool]) -> dict[str, int]:
    """Sites in a fixed hash order, math sites and other sites each dealt round robin over the folds."""
    order = sorted(set(sites), key=lambda s: _frac(s, "fold"))
    math_sites = {s for s, y in zip(sites, labels, strict=True) if y}
    fold = {s: i % FOLDS for i, s in enumerate(x for x in order if x in math_sites)}
    fold.update({s: i % FOLDS for i, s in enumerate(x for x in order if x not in math_sites)})
    return fold


def domain_cv(tmp: Path, web, sites, seed_tr, seed_va, warc, params, *, recall_pool: bool = False,
              urls=None) -> dict:
    """Scores of every web page by a model of the fold that holds out its site (see the module docstring)."""
    labels = [e.label == MATH for e in web]
    fold = site_folds(sites, labels)
    raw = np.zeros(len(web))
    thr = np.zeros(len(web))
    for f in range(FOLDS):
        test = [i for i, s in enumerate(sites) if fold[s] == f]
        train = [i for i, s in enumerate(sites) if fold[s] != f]
        if recall_pool:
            model = recall_model(tmp / f"recall_f{f}", [web[i] for i in train], [sites[i] for i in train],
                                 [urls[i] for i in train], warc, params)
            raw[test] = model.score([web[i].text for i in test])
            thr[test] = 0.5
            continue
        vf = (f + 1) % FOLDS  # validation: one more held-out fold of sites, web-like, never the test fold
        inner = [i for i in train if fold[sites[i]] != vf]
        valid = [i for i in train if fold[sites[i]] == vf]
        vmodel = _fit(tmp / f"cv{f}_val", seed_tr + warc + [web[i] for i in inner], seed_va, params)
        vs = vmodel.score([web[i].text for i in valid])
        thr[test] = best_f1_threshold(vs, [labels[i] for i in valid])
        model = _fit(tmp / f"cv{f}", seed_tr + warc + [web[i] for i in train], seed_va, params)
        raw[test] = model.score([web[i].text for i in test])
    return {"scores": raw, "thresholds": thr, "labels": labels}


def _fit(out: Path, train, valid, params) -> MathClassifier:
    train_model(str(out), train, valid, params)
    return MathClassifier(str(out))


def recall_model(out: Path, pool: list[Example], sites: list[str], urls: list, warc: list[Example],
                 params: TrainParams) -> MathClassifier:
    """Two recall rounds over an unlabeled pool; the last round's model."""
    from classifiers.recall import RecallConfig, run_rounds

    out.mkdir(parents=True, exist_ok=True)
    pool_file, warc_file = out / "pool.jsonl", out / "warc_negatives.jsonl"
    with pool_file.open("w", encoding="utf-8") as fh:
        for e, s, u in zip([*pool, *warc], [*sites, *["warc"] * len(warc)], [*urls, *[None] * len(warc)],
                           strict=True):
            fh.write(json.dumps({"id": e.key, "text": e.text, "url": u, "domain": s}, ensure_ascii=False) + "\n")
    with warc_file.open("w", encoding="utf-8") as fh:
        for e in warc:
            if e.label == OTHER:
                fh.write(json.dumps({"id": e.key, "text": e.text}, ensure_ascii=False) + "\n")
    seed = SHARED / "seed"
    cfg = RecallConfig(rounds=2, threshold=0.5, params=dataclasses.replace(params, target_recall=None),
                       negative_ratio=2.0)
    summary = run_rounds(str(out / "rounds"), [str(pool_file)],
                         [str(seed / "math_text.jsonl"), str(seed / "math_text_zh.jsonl")],
                         [str(seed / "general_text.jsonl"), str(seed / "general_text_zh.jsonl"), str(warc_file)], cfg)
    return MathClassifier(summary["rounds"][-1]["model"], threshold=0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="no DeepSeekMath-size model, no recall path, fewer repeats")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    t_start = time.time()
    seed = SHARED / "seed"
    pos = load_examples([str(seed / "math_text.jsonl"), str(seed / "math_text_zh.jsonl")], MATH)
    neg = load_examples([str(seed / "general_text.jsonl"), str(seed / "general_text_zh.jsonl")], OTHER)
    train_seed, test_seed = split(pos + neg, 0.2, seed=123)  # held out: never used for training or thresholds
    tr, va = split(train_seed, 0.1, seed=7)
    web, sites, urls = web_pages()
    warc = warc_pages()
    print(f"web pages: {len(web)} ({sum(e.label == MATH for e in web)} math) from {len(set(sites))} sites; "
          f"WARC pages: {len(warc)} ({sum(e.label == MATH for e in warc)} math)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_classify_"))
    y_seed = [e.label == MATH for e in test_seed]
    y_web = [e.label == MATH for e in web]
    results: dict = {"quality": [], "misclassified": [], "speed": {},
                     "caps": {"max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS}}
    q = results["quality"]
    print("keyword/regex prefilter (OpenWebMath-style, >= 3 hits):")
    q.append({"model": "keyword", **report("held-out seed text", keyword_scores([e.text for e in test_seed]),
                                            y_seed, 0.5)})
    q.append({"model": "keyword", **report("web pages", keyword_scores([e.text for e in web]), y_web, 0.5)})
    configs = {"small-data": SMALL}
    if not args.quick:
        configs["deepseekmath"] = TrainParams(threads=1, target_recall=0.95)  # dim 256, lr 0.1, ngrams 3, 3 ep
    for name, params in configs.items():
        print(f"fastText {name}, seed only: {params.fasttext_kwargs()}")
        card = train_model(str(tmp / name), tr, va, params)
        clf = MathClassifier(str(tmp / name))
        q.append({"model": f"{name}, seed only", **report("held-out seed text", clf.score(
            [e.text for e in test_seed]), y_seed, card["threshold"])})
        s = clf.score([e.text for e in web])
        q.append({"model": f"{name}, seed only", **report("web pages, card threshold", s, y_web, card["threshold"])})
        q.append({"model": f"{name}, seed only", **report("web pages, threshold 0.5", s, y_web, 0.5)})
    print("small-data, seed + WARC negatives:")
    clf = _fit(tmp / "seed_warc", tr + warc, va, SMALL)
    s = clf.score([e.text for e in web])
    q.append({"model": "small-data, seed + WARC", **report("web pages, threshold 0.5", s, y_web, 0.5)})
    cv_params = configs.get("deepseekmath", SMALL)
    cv_name = "deepseekmath" if "deepseekmath" in configs else "small-data"
    print(f"web pages, {FOLDS}-fold CV by site, {cv_name}, seed + WARC + the other folds' pages:")
    cv = domain_cv(tmp, web, sites, tr, va, warc, cv_params)
    q.append({"model": f"{cv_name}, domain CV", **report("web pages, threshold 0.5", cv["scores"], y_web, 0.5)})
    chosen = (cv["scores"] >= cv["thresholds"]).astype(np.float32)
    q.append({"model": f"{cv_name}, domain CV", **report("web pages, threshold from held-out validation sites",
                                                          chosen, y_web, 0.5)})
    for i in np.argsort(-cv["scores"]):
        if (cv["scores"][i] >= 0.5) != y_web[i]:
            row = {"page": web[i].key, "site": sites[i], "label": web[i].label,
                   "score": round(float(cv["scores"][i]), 4), "chars": len(web[i].text)}
            results["misclassified"].append(row)
            print(f"    {'missed' if y_web[i] else 'false positive'}: {row}")
    if not args.quick:
        print(f"web pages, {FOLDS}-fold CV by site, recall path (seed + WARC model, 2 rounds over the other folds' "
              "pages + WARC, no page labels):")
        rc = domain_cv(tmp, web, sites, tr, va, warc, SMALL, recall_pool=True, urls=urls)
        q.append({"model": "small-data, recall rounds", **report("web pages, threshold 0.5", rc["scores"], y_web,
                                                                 0.5)})
    cpos = load_examples(str(seed / "math_code.jsonl"), MATH)
    cneg = load_examples(str(seed / "general_code.jsonl"), OTHER)
    ctr, cte = split(cpos + cneg, 0.2, seed=123)
    ctr, cva = split(ctr, 0.1, seed=7)
    ccard = train_model(str(tmp / "code"), ctr, cva, SMALL)
    print("code model (math code vs general code), small-data params:")
    q.append({"model": "code", **report("held-out code files", MathClassifier(str(tmp / "code")).score(
        [e.text for e in cte]), [e.label == MATH for e in cte], ccard["threshold"])})
    caps = {"default caps": (MAX_CHARS, MAX_TOKENS), "caps 3000 / 512": (3_000, 512)}
    results["speed"] = speed(str(tmp / "small-data" / "model.bin"), [e.text for e in test_seed + web],
                             repeats=3 if args.quick else 7, caps=caps)
    results["seconds"] = round(time.time() - t_start, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)  # the models (DeepSeekMath size: 0.5 GB each)


def speed(model_bin: str, texts: list[str], repeats: int, caps: dict[str, tuple[int, int]]) -> dict:
    """CPU seconds to score ``texts``: datatrove's filter (raw text, one predict per document) vs our batched
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
    clock = time.process_time
    for _ in range(repeats):
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]  # the filter rewrites doc.text
        t0 = clock()
        for d in docs:
            peer.filter(d)
        best["datatrove"] = min(best["datatrove"], clock() - t0)
        for name, clf in ours.items():
            t0 = clock()
            clf.score(texts, batch_size=512)
            best[name] = min(best[name], clock() - t0)
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

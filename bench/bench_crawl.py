"""Crawl benchmark: the two-pass crawl reader vs single-pass extract + classify vs a datatrove pipeline.

    python bench/bench_crawl.py [--records 5000] [--sample 250] [--shares 0.02,0.10] [--repeats 3]
                                [--data ../shared/data] [--work /tmp/bench_crawl]

1. A benchmark WARC (gzip member per record, HTTP response records) is built from real pages only: the labelled
   pages of ``web/`` and ``web2/`` and the HTML records of ``warc/`` (general; ``math.html`` of dolma science-0
   is math). Math pages make ``share`` of the records; general pages repeat to reach ``--records``.
2. Models, trained here from files: the first-pass model (``classifiers.firstpass``: web + web2 pages, site split,
   threshold for 99.5 % recall on the validation sites) and the *final* math classifier (``shared/data/seed``
   math vs general text), used by all three paths.
3. Throughput, records in per CPU-second (one process, one core; the datatrove extractor's sandbox process is
   counted as a child): two-pass (FastWARC + first pass, math-aware extraction + final classifier on the
   candidates only) on the whole WARC; single-pass (today's ``read_warc`` extraction of every page + final
   classifier) and datatrove (``WarcReader`` + ``Trafilatura`` + ``FastTextClassifierFilter`` with the final
   model) on every k-th record of the same WARC (``--sample`` records: they take 10-20x longer per record).
   Each path runs ``--repeats`` times, interleaved; rates and ratios are medians.
4. Recall on the distinct pages of the WARC: of the math pages that single-pass extract + classify keeps, the
   share the two-pass path keeps; and how many non-math pages reach full extraction.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def load_pages(data: Path) -> list[dict]:
    """``{html, label, url}`` for every real page: web/, web2/ and the HTML records of warc/."""
    from corpus.extract.warc import WarcRecord, iter_archive

    pages = []
    for root in ("web", "web2"):
        for line in (data / root / "pages.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r.get("label") in ("math", "general"):
                url = r.get("url") or f"https://{r.get('site') or 'pages.example'}/{r['file']}"
                pages.append({"html": (data / root / r["file"]).read_bytes(), "label": r["label"], "url": url})
    for f in sorted((data / "warc").glob("*.warc*")):
        for rec in iter_archive(str(f)):
            if isinstance(rec, WarcRecord) and rec.rec_type != "conversion" and rec.payload:
                label = "math" if (rec.url or "").endswith("/math.html") else "general"
                pages.append({"html": rec.payload, "label": label, "url": rec.url or f"https://{f.name}/"})
    return pages


def write_warc(path: Path, records: list[dict]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for i, p in enumerate(records):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            url = f"{p['url']}#r{i}" if i else p["url"]
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(p["html"]), http_headers=http))


def build_warc(pages: list[dict], n: int, share: float, path: Path, seed: int = 0) -> list[int]:
    """The benchmark WARC; returns the page index of every record."""
    rng = random.Random(seed)
    math_i = [i for i, p in enumerate(pages) if p["label"] == "math"]
    gen_i = [i for i, p in enumerate(pages) if p["label"] == "general"]
    n_math = round(n * share)
    order = [math_i[k % len(math_i)] for k in range(n_math)] + [gen_i[k % len(gen_i)] for k in range(n - n_math)]
    rng.shuffle(order)
    write_warc(path, [pages[i] for i in order])
    return order


def train_models(data: Path, work: Path) -> tuple[str, str]:
    from classifiers.firstpass import train_first_pass
    from classifiers.model import TrainParams, train_from_files

    fp_dir, final_dir = work / "firstpass", work / "final"
    if not (fp_dir / "model.json").exists():
        train_first_pass(str(fp_dir), [str(data / "web"), str(data / "web2")])
    seed = data / "seed"
    train_from_files(str(final_dir), [str(seed / "math_text.jsonl"), str(seed / "math_text_zh.jsonl")],
                     [str(seed / "general_text.jsonl"), str(seed / "general_text_zh.jsonl")],
                     TrainParams(dim=64, epoch=5, bucket=200_000, threads=1), reuse=True)
    return str(fp_dir), str(final_dir)


def run_ours(path: Path, final, firstpass=None) -> dict:
    """Two-pass (with ``firstpass``) or single-pass: read_warc + final classifier on the extracted documents."""
    from corpus.extract.web import read_warc
    from corpus.io import Reject
    from corpus.records import FileContext

    opts = {"timeout": 20.0} | ({"_firstpass": firstpass} if firstpass is not None else {})
    ctx = FileContext("bench", "web", path.name, opts)
    t0, w0 = cpu(), time.perf_counter()
    records = extracted = kept = 0
    kept_urls = set()
    for item in read_warc(str(path), ctx):
        records += 1
        if isinstance(item, Reject) or item.get("_removed"):
            continue
        extracted += 1
        if final.score([item["text"]])[0] >= final.threshold:
            kept += 1
            kept_urls.add(item["url"])
    return {"records": records, "extracted": extracted, "kept": kept, "cpu": cpu() - t0,
            "wall": time.perf_counter() - w0}


def run_datatrove(path: Path, final_dir: str, threshold: float) -> dict:
    """WarcReader + Trafilatura + FastTextClassifierFilter (our final model on datatrove's raw text: the same
    model file, not our preprocessing; ``records`` counts the documents its reader yields)."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from datatrove.pipeline.readers import WarcReader

    t0, w0 = cpu(), time.perf_counter()
    reader = WarcReader(str(path.parent), glob_pattern=path.name)
    extractor = Trafilatura(favour_precision=True, timeout=20.0)
    clf = FastTextClassifierFilter(f"{final_dir}/model.bin", keep_labels=("math", threshold))
    records = kept = 0

    def count(docs):
        nonlocal records
        for d in docs:
            records += 1
            yield d

    for _ in clf.run(extractor.run(count(reader.run(rank=0, world_size=1)), rank=0, world_size=1), rank=0,
                     world_size=1):
        kept += 1
    return {"records": records, "kept": kept, "cpu": cpu() - t0, "wall": time.perf_counter() - w0}


def recall(pages: list[dict], used: set[int], firstpass, final) -> dict:
    """Per distinct page: single-pass keeps it? two-pass keeps it? non-math pages reaching full extraction."""
    from corpus.extract.html import ExtractError, decode_with_evidence, domain_of, extract_page
    from corpus.extract.prefilter import decide, first_pass_signals

    single_math = two_math = 0
    nonmath_candidates = nonmath = 0
    missed, let_through = [], []
    for i in sorted(used):
        p = pages[i]
        try:
            text = extract_page(p["html"], p["url"], timeout=20.0).text
            single = final.score([text])[0] >= final.threshold
        except ExtractError:
            text, single = None, False
        raw = p["html"]
        html, _ = decode_with_evidence(raw)
        sig, _ = first_pass_signals(raw, html, firstpass.score, firstpass.settings.text_chars,
                                    min_cues=firstpass.settings.min_cues)
        decide(sig, domain_of(p["url"]), firstpass.threshold, firstpass.settings)
        if p["label"] != "math":
            nonmath += 1
            nonmath_candidates += sig.candidate
            if sig.candidate:
                let_through.append(f"{sig.reason}: {p['url']}")
        if p["label"] == "math" and single:
            single_math += 1
            if sig.candidate:  # the same extraction + classifier then runs on it
                two_math += 1
            else:
                missed.append(p["url"])
    return {"single_pass_kept_math": single_math, "two_pass_kept_of_those": two_math,
            "recall": two_math / single_math if single_math else float("nan"), "missed": missed,
            "nonmath_pages": nonmath, "nonmath_candidates": nonmath_candidates, "nonmath_let_through": let_through}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--work", default="/tmp/bench_crawl")
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--sample", type=int, default=250)
    ap.add_argument("--shares", default="0.02,0.10")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each path (interleaved); medians reported")
    a = ap.parse_args()
    from classifiers.firstpass import FirstPass
    from classifiers.model import MathClassifier

    data, work = Path(a.data), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    pages = load_pages(data)
    print(f"pages: {len(pages)} ({sum(p['label'] == 'math' for p in pages)} math)")
    fp_dir, final_dir = train_models(data, work)
    firstpass, final = FirstPass(fp_dir), MathClassifier(final_dir)
    card = json.loads((Path(fp_dir) / "model.json").read_text())
    print(f"first-pass model: threshold {firstpass.threshold:.4f}, {card['model_bytes'] / 1e6:.1f} MB; "
          f"sites train / validation / test {card['first_pass']['sites']}")
    for name, res in (("training sites, whole rule", card["train_rule"]),
                      ("validation sites, whole rule", card["validation_rule"]),
                      ("test sites, whole rule", card["first_pass"]["test_rule"]),
                      ("test sites, model alone at the threshold", card["first_pass"]["test_at_threshold"])):
        print(f"  {name}: math {res['tp']}/{res['tp'] + res['fn']}, general let through {res['fp']}/"
              f"{res['fp'] + res['tn']}, precision {res['precision']:.2f}")
    results = {}
    for share in (float(s) for s in a.shares.split(",")):
        full, sample = work / f"crawl_{share:.2f}.warc.gz", work / f"crawl_{share:.2f}_sample" / "s.warc.gz"
        order = build_warc(pages, a.records, share, full)
        step = max(1, a.records // a.sample)
        sample.parent.mkdir(exist_ok=True)
        sub = order[::step]
        write_warc(sample, [dict(pages[i], url=pages[i]["url"]) for i in sub])
        print(f"\nshare {share:.0%}: {len(order)} records ({full.stat().st_size / 1e6:.1f} MB), sample {len(sub)} "
              f"records ({sum(pages[i]['label'] == 'math' for i in sub)} math)")
        runs: dict[str, list[dict]] = {"two": [], "two_s": [], "one": [], "dt": []}
        for rep in range(a.repeats):
            runs["two"].append(run_ours(full, final, firstpass))
            runs["two_s"].append(run_ours(sample, final, firstpass))
            runs["one"].append(run_ours(sample, final))
            runs["dt"].append(run_datatrove(sample, final_dir, final.threshold))
            for k, name in (("two", "two-pass"), ("two_s", "two-pass (sample)"), ("one", "single-pass (sample)"),
                            ("dt", "datatrove (sample)")):
                print(f"  [{rep + 1}/{a.repeats}] {name:21s} {runs[k][-1]}")
        two = runs["two"][-1]
        # records in = the WARC's records (datatrove's reader drops some it cannot decode: still work done)
        n_in = {"two": len(order), "two_s": len(sub), "one": len(sub), "dt": len(sub)}
        rates = {k: [n_in[k] / r["cpu"] for r in v] for k, v in runs.items()}
        rate = {k: statistics.median(v) for k, v in rates.items()}
        ratios = {"single": [t / o for t, o in zip(rates["two"], rates["one"], strict=True)],
                  "datatrove": [t / d for t, d in zip(rates["two"], rates["dt"], strict=True)]}
        res = {"records_per_cpu_s": {k: round(v, 2) for k, v in rate.items()},
               "ratio_vs_single": round(statistics.median(ratios["single"]), 2),
               "ratio_vs_datatrove": round(statistics.median(ratios["datatrove"]), 2),
               "ratios_vs_single_each_run": [round(x, 2) for x in ratios["single"]],
               "ratios_vs_datatrove_each_run": [round(x, 2) for x in ratios["datatrove"]],
               "ratio_vs_single_same_sample": round(rate["two_s"] / rate["one"], 2),
               "extracted_share": round(two["extracted"] / two["records"], 4)}
        results[share] = res
        print(f"  => {res}")
    rec = recall(pages, set(range(len(pages))), firstpass, final)
    print(f"\nrecall on the {len(pages)} distinct pages: {rec}")
    (work / "results.json").write_text(json.dumps({"shares": results, "recall": rec}, indent=1))


if __name__ == "__main__":
    main()

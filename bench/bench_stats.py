"""corpus-stats vs a datatrove stats job configured to compute the same per-document statistics.

Documents are generated from the real seed text in ../shared/data/seed (random slices of real documents,
50..2000 characters, with sources, languages, domains, scores, token counts; 2% planted exact duplicates, and
short seed documents taken whole repeat too: the printed duplicate share is ~23%), written
as zstd Parquet shards of 100k rows. Both tools read the same shards, in the same run, alternating, ``--repeats``
times each; the printed times and the ratio are medians.

What each side computes (the peer is configured for the statistics datatrove can express; ours does more):

* peer: datatrove ``ParquetReader -> EqualStats`` (a ``BaseStats`` step defined here: per document the
  character length, UTF-8 bytes, ``n_tokens`` and ``math_score``; groups ``summary`` = count/total/mean/min/max
  and ``histogram`` = the exact value counts, from which length quantiles and the math_score histogram follow),
  2 tasks of ``LocalPipelineExecutor``, then ``StatsMerger``;
* ours: ``corpus.stats.corpus_stats(by="source")``: the same totals, exact quantiles of characters and tokens and
  the math_score histogram, plus per-source groups, the top domains and the exact-duplicate share (64-bit text
  hashes), which the peer does not compute.

datatrove's stock ``DocStats`` (which the previous table used) computes five per-character ratios
(whitespace, digits, upper case, ellipsis, punctuation) that corpus-stats does not; ``--docstats`` times it too,
for reference only.

    python bench/bench_stats.py                 # 400k documents, 3 repeats
    python bench/bench_stats.py --docs 1000000  # 1M documents
    python bench/bench_stats.py --full --no-peer --keep DIR   # ours on 1M and 10M (scaling), data kept in DIR
    python bench/bench_stats.py --hll-only      # HyperLogLog++ estimate vs the exact count (as tests/test_stats.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARD_ROWS = 100_000


def load_seed() -> list[tuple[str, str, str]]:
    out = []
    for name, source, lang in (("math_text", "book", "en"), ("math_text_zh", "web", "zh"),
                               ("math_code", "code", "en"), ("general_text", "web", "en"),
                               ("general_text_zh", "web", "zh"), ("general_code", "code", "en")):
        with open(SHARED / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            out += [(json.loads(line)["text"], source, lang) for line in fh]
    return out


def generate(folder: Path, n: int, seed: int = 0) -> int:
    """Write ``n`` documents (shards of SHARD_ROWS) sliced from real text; returns total text bytes."""
    rng = np.random.default_rng(seed)
    docs = load_seed()
    total = 0
    for start in range(0, n, SHARD_ROWS):
        m = min(SHARD_ROWS, n - start)
        pick = rng.integers(0, len(docs), m)
        lengths = rng.integers(50, 2000, m)
        texts, sources, langs = [], [], []
        for i, ln in zip(pick.tolist(), lengths.tolist(), strict=True):
            text, source, lang = docs[i]
            off = int(rng.integers(0, max(1, len(text) - ln)))
            texts.append(text[off:off + ln])
            sources.append(source)
            langs.append(lang)
        dup = rng.random(m) < 0.02
        for j in np.nonzero(dup)[0].tolist():
            texts[j] = texts[j - 1] if j else texts[j]
        table = pa.table({
            "id": [f"d{start + k}" for k in range(m)], "text": pa.array(texts, pa.large_string()),
            "source": sources, "lang": langs,
            "domain": [f"site{int(x)}.org" for x in rng.zipf(1.5, m) % 5000],
            "math_score": pa.array(rng.random(m), pa.float32()),
            "n_tokens": pa.array((lengths * 0.3).astype(np.int64)),
        })
        total += sum(len(t.encode()) for t in texts)
        pq.write_table(table, folder / f"{start // SHARD_ROWS:05d}.parquet", compression="zstd",
                       row_group_size=20_000)
    return total


def run_ours(folder: Path) -> tuple[float, dict]:
    from corpus.stats import corpus_stats

    t0 = time.perf_counter()
    result = corpus_stats(str(folder), by="source")
    return time.perf_counter() - t0, result


def _peer_step(output: str):
    from datatrove.pipeline.stats.base import BaseStats

    class EqualStats(BaseStats):
        """The per-document numbers corpus-stats aggregates: characters, bytes, tokens, math_score."""

        name = "equal-work stats"

        def extract_stats(self, doc) -> dict[str, int | float]:
            out = {"length": len(doc.text), "bytes": len(doc.text.encode("utf-8"))}
            if doc.metadata.get("n_tokens") is not None:
                out["tokens"] = int(doc.metadata["n_tokens"])
            if doc.metadata.get("math_score") is not None:
                out["math_score"] = float(doc.metadata["math_score"])
            return out

    return EqualStats(output, groups_to_compute=["summary", "histogram"])


def run_datatrove(folder: Path, work: Path, tasks: int = 2, docstats: bool = False) -> tuple[float, dict]:
    """Seconds for the peer job, and its merged summary (count and totals) to check it did the work."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.stats import DocStats, StatsMerger
    from loguru import logger

    logger.remove()  # datatrove's per-task logs go to the logging_dir; keep the terminal readable
    os.environ.setdefault("TQDM_DISABLE", "1")
    shutil.rmtree(work, ignore_errors=True)
    step = (DocStats(str(work / "stats"), groups_to_compute=["summary", "histogram"]) if docstats
            else _peer_step(str(work / "stats")))
    t0 = time.perf_counter()
    LocalPipelineExecutor([ParquetReader(str(folder), text_key="text", id_key="id"), step],
                          tasks=tasks, workers=tasks, logging_dir=str(work / "logs1")).run()
    LocalPipelineExecutor([StatsMerger(str(work / "stats"), str(work / "merged"))], tasks=1,
                          logging_dir=str(work / "logs2")).run()
    seconds = time.perf_counter() - t0
    summary = {}
    for stat in ("length", "bytes", "tokens"):
        path = work / "merged" / "summary" / stat / "metric.json"
        if path.exists():
            summary[stat] = json.loads(path.read_text())["summary"]
    return seconds, summary


def hll_check(root: Path, n: int = 260_000, repeats: int = 40_000) -> None:
    """The distinct-text count of ``corpus_stats`` with HyperLogLog++ forced (``exact_limit=0``, 3 chunks merged by
    register max) vs the exact count, on the texts of ``tests/test_stats.py`` (n distinct + repeats, 3 shards)."""
    import polars as pl

    from corpus.stats import HLL_P, corpus_stats

    texts = pl.Series("text", [f"doc {i}: x^{i % 97} + {i * 7919 % 100_003} = y_{i // 13}" for i in range(n)])
    texts = pl.concat([texts, texts.gather(np.arange(0, 4 * repeats, 4))])
    df = pl.DataFrame({"id": [f"t{i}" for i in range(len(texts))], "text": texts}).sample(fraction=1.0, seed=1,
                                                                                        shuffle=True)
    folder = root / "hll"
    folder.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(df.iter_slices(100_000)):
        part.write_parquet(folder / f"{k}.parquet")
    exact = corpus_stats(str(folder))["duplicates"]["distinct_texts"]
    got = corpus_stats(str(folder), exact_limit=0, chunk_rows=120_000)["duplicates"]["distinct_texts"]
    bound = 3 * 1.04 / (1 << HLL_P) ** 0.5
    print(f"HyperLogLog++ (p={HLL_P}) on {len(df):,} texts: estimate {got:,} vs exact {exact:,} distinct: "
          f"{(got - exact) / exact:+.2%} (3 standard errors: {bound:.1%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400_000, help="documents (default 400k: 4 shards for 2 tasks)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side; medians are printed")
    ap.add_argument("--full", action="store_true", help="also time ours on 10M documents")
    ap.add_argument("--keep", help="generate into this folder and keep it")
    ap.add_argument("--no-peer", action="store_true", help="skip datatrove (e.g. with --full, peer measured before)")
    ap.add_argument("--docstats", action="store_true", help="also time datatrove's stock DocStats (unequal work)")
    ap.add_argument("--hll-only", action="store_true", help="only the HyperLogLog++ estimate vs the exact count")
    args = ap.parse_args()
    n = args.docs
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_stats_"))
    if args.hll_only:
        try:
            return hll_check(root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    data = root / f"docs_{n}"
    try:
        if not data.exists():
            data.mkdir(parents=True)
            t0 = time.perf_counter()
            nbytes = generate(data, n)
            print(f"generated {n:,} docs ({nbytes / 1e9:.2f} GB text) in {time.perf_counter() - t0:.1f}s")
        times: dict[str, list[float]] = {"ours": [], "peer": [], "docstats": []}
        result, summary = None, None
        for r in range(args.repeats):
            order = ["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]
            for side in order:
                if side == "ours":
                    t, result = run_ours(data)
                    times["ours"].append(t)
                elif not args.no_peer:
                    t, summary = run_datatrove(data, root / "dt")
                    times["peer"].append(t)
            if args.docstats:
                times["docstats"].append(run_datatrove(data, root / "dt", docstats=True)[0])
        ours = statistics.median(times["ours"])
        total = result["total"]
        print(f"ours  corpus_stats: median {ours:.2f}s of {_fmt(times['ours'])}  ({n / ours:,.0f} docs/s)  "
              f"{total['documents']:,} docs, {total['chars']:,} chars, {total['tokens']:,} tokens, "
              f"dup share {result['duplicates']['exact_duplicate_share']:.4f}")
        peer = None
        if times["peer"]:
            peer = statistics.median(times["peer"])
            agree = (summary["length"]["n"] == total["documents"] and summary["length"]["total"] == total["chars"]
                     and summary["bytes"]["total"] == total["bytes"] and summary["tokens"]["total"] == total["tokens"])
            print(f"peer  datatrove ParquetReader -> EqualStats -> StatsMerger: median {peer:.2f}s of "
                  f"{_fmt(times['peer'])}  ({n / peer:,.0f} docs/s); documents/chars/bytes/tokens totals "
                  f"{'agree with ours' if agree else 'DIFFER from ours'}")
            print(f"ratio ours/peer = {ours / peer:.3f} (medians, {args.repeats} repeats; goal <= 0.1)")
        if times["docstats"]:
            ds = statistics.median(times["docstats"])
            print(f"(reference, unequal work) datatrove DocStats + StatsMerger: median {ds:.2f}s of "
                  f"{_fmt(times['docstats'])}; ratio ours/DocStats {ours / ds:.3f}")
        if args.full:
            big = root / "docs_10M"
            if not big.exists():
                big.mkdir(parents=True)
                gb = generate(big, 10_000_000, seed=1) / 1e9
                print(f"generated 10,000,000 docs ({gb:.2f} GB text)")
            t10, _ = run_ours(big)
            print(f"ours on 10M: {t10:.2f}s ({10_000_000 / t10:,.0f} docs/s; {t10 / ours:.1f}x the {n:,}-row time)"
                  + (f"; peer extrapolated linearly: {peer * 10_000_000 / n:.0f}s" if peer else ""))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()

"""corpus-stats vs datatrove's DocStats + StatsMerger on the same generated shards.

Documents are generated from the real seed text in ../shared/data/seed (random slices of real documents,
50..2000 characters, with sources, languages, domains, scores, token counts and ~2% exact duplicates), written
as zstd Parquet shards of 100k rows. Both tools read the same shards:

* ours: ``corpus.stats.corpus_stats`` (polars lazy scans; groups, quantiles, histogram, domains, duplicates);
* peer: datatrove ``ParquetReader -> DocStats`` (2 tasks, LocalPipelineExecutor) then ``StatsMerger``.

    python bench/bench_stats.py            # 1M documents
    python bench/bench_stats.py --quick    # 100k documents
    python bench/bench_stats.py --full     # also ours on 10M documents (peer extrapolated, not run)
    python bench/bench_stats.py --full --no-peer --keep DIR   # 1M -> 10M scaling only, data kept in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def run_datatrove(folder: Path, work: Path, tasks: int = 2) -> float:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.stats import DocStats, StatsMerger
    from loguru import logger

    logger.remove()  # datatrove's per-task logs go to the logging_dir; keep the terminal readable
    os.environ.setdefault("TQDM_DISABLE", "1")
    t0 = time.perf_counter()
    LocalPipelineExecutor([
        ParquetReader(str(folder), text_key="text", id_key="id"),
        DocStats(str(work / "stats"), groups_to_compute=["summary", "histogram"]),
    ], tasks=tasks, workers=tasks, logging_dir=str(work / "logs1")).run()
    LocalPipelineExecutor([StatsMerger(str(work / "stats"), str(work / "merged"))], tasks=1,
                          logging_dir=str(work / "logs2")).run()
    return time.perf_counter() - t0


def n_scale(n: int) -> float:
    return 10_000_000 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k documents")
    ap.add_argument("--full", action="store_true", help="also time ours on 10M documents")
    ap.add_argument("--keep", help="generate into this folder and keep it")
    ap.add_argument("--no-peer", action="store_true", help="skip datatrove (e.g. with --full, peer measured before)")
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_stats_"))
    data = root / f"docs_{n}"
    try:
        if not data.exists():
            data.mkdir(parents=True)
            t0 = time.perf_counter()
            nbytes = generate(data, n)
            print(f"generated {n:,} docs ({nbytes / 1e9:.2f} GB text) in {time.perf_counter() - t0:.1f}s")
        ours, result = run_ours(data)
        print(f"ours  corpus_stats: {ours:.2f}s  ({n / ours:,.0f} docs/s)  "
              f"dup share {result['duplicates']['exact_duplicate_share']:.4f}")
        peer = None
        if not args.no_peer:
            peer = run_datatrove(data, root / "dt")
            print(f"peer  datatrove DocStats+StatsMerger: {peer:.2f}s  ({n / peer:,.0f} docs/s)")
            print(f"ratio ours/peer = {ours / peer:.4f}  (goal <= 0.1)")
        if args.full:
            big = root / "docs_10M"
            if not big.exists():
                big.mkdir(parents=True)
                generate(big, 10_000_000, seed=1)
            t10, _ = run_ours(big)
            print(f"ours on 10M: {t10:.2f}s ({t10 / ours:.1f}x the {n:,}-row time)"
                  + (f"; peer extrapolated linearly: {peer * n_scale(n):.0f}s" if peer else ""))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()

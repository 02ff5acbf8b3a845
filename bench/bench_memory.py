"""Peak memory per worker as the input grows 10x, and documents/s per core of every stage.

    python bench/bench_memory.py [--quick] [--stages extract,dedup,...] [--tasks 2] [--sizes 1,10] [--repeats N]
                                 [--json F]
    python bench/bench_memory.py --cost-from F     # report + 1T-token cost model from a saved run
    python bench/bench_memory.py --cost-from F --crawl-from R   # + the two-pass cost (R: bench_crawl's results.json)

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
# stages tried after extract, with the settings they need on this data. dedup goes last: the 10x input is ten
# copies of the seed, so after dedup the later stages would see 1x again; it also is the one stage that is not a
# plain per-shard stream (its cluster phase holds the duplicate pairs of a partition)
CANDIDATES = ("langid", "filter", "classify", "decontam", "tokens", "dedup")
SETTINGS = {
    "decontam": {"evalsets_root": str(SHARED / "evalsets")},
    # a real fastText model trained in the driver on the seed's math vs general text; score only, keep all
    "classify": {"keep_all": True, "train": {"default": {
        "positives_paths": [str(SEED / "math_text.jsonl")], "negatives_paths": [str(SEED / "general_text.jsonl")]}}},
}


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
            "cpu_seconds": sum(r["cpu_seconds"] for r in recs),
            "bytes": {sub: folder_bytes(Path(st["dir"]) / sub) for sub in ("kept", "removed", "work")},
            "phase_peak_rss_mb": {d.parent.name: max(r["peak_rss_mb"] for r in task_records(d.parent))
                                  for d in sorted((Path(st["dir"]) / "logs").glob("*/tasks"))},
        }
    return per_stage


def median_run(runs: list[dict]) -> dict:
    """The run with the median CPU seconds (one whole record, so its numbers stay consistent), with every run's
    CPU seconds beside it."""
    ordered = sorted(runs, key=cpu)
    return {**ordered[(len(ordered) - 1) // 2], "cpu_runs": [round(cpu(r), 2) for r in runs]}


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def run_peer(inputs: Path, out: Path, tasks: int) -> dict:
    """datatrove's JsonlReader -> JsonlWriter on the same files, same executor and per-task records."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from pipelines.executors import make_executor

    steps = [JsonlReader(str(inputs), glob_pattern="*.jsonl"), JsonlWriter(str(out / "data"))]
    make_executor("local", steps, tasks=tasks, workers=tasks, logging_dir=str(out / "logs")).run()
    recs = task_records(out / "logs")
    return {"peak_rss_mb": [r["peak_rss_mb"] for r in recs], "task_seconds": sum(r["seconds"] for r in recs),
            "cpu_seconds": sum(r["cpu_seconds"] for r in recs)}


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
    from corpus.tokens import count_tokens
    from pipelines.steps.io import read_shards

    texts = read_shards(f"{st['dir']}/kept").column("text").to_pylist()
    return {"docs_out": st["documents_out"], "task_seconds": rec["seconds"], "cpu_seconds": rec["cpu_seconds"],
            "input_bytes": sum(map(os.path.getsize, paths)), "tokens_out": sum(count_tokens(texts)),
            "text_bytes": sum(len(t.encode()) for t in texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1x = one copy of the seed (default: two copies)")
    ap.add_argument("--stages", help="comma-separated stages (default: extract + stages runnable on defaults)")
    ap.add_argument("--tasks", type=int, default=2, help="tasks (processes) per phase")
    ap.add_argument("--sizes", default="1,10", help="input sizes in units of the 1x input (throughput: the last)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs per size (ours, then the peer); the run with the median CPU time is reported")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--memory-only", action="store_true",
                    help="peak memory table only: skip the HTML/WARC extraction runs, the throughput and cost report")
    ap.add_argument("--cost-from", help="print the report and 1T-token cost model from a saved --json file")
    ap.add_argument("--crawl-from", help="with --cost-from: also the two-pass cost model, from the results.json "
                    "that bench/bench_crawl.py writes to its --work folder")
    args = ap.parse_args()
    if args.cost_from:
        saved = json.loads(Path(args.cost_from).read_text())
        report(saved)
        single = cost_model(saved)
        if args.crawl_from:
            two_pass_cost(saved, json.loads(Path(args.crawl_from).read_text()), single)
        return

    from pipelines.executors import quiet_logs

    quiet_logs(False)
    stages = args.stages.split(",") if args.stages else default_stages()
    base = 1 if args.quick else 2
    from corpus.tokens import count_tokens

    seed_texts = [json.loads(line)["text"] for f in sorted(SEED.glob("*.jsonl"))
                  for line in f.read_text(encoding="utf-8").splitlines()]
    results: dict = {"stages": stages, "tasks": args.tasks, "runs": {},
                     "seed": {"documents": len(seed_texts), "tokens": sum(count_tokens(seed_texts)),
                              "bytes": sum(len(t.encode()) for t in seed_texts)}}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        for factor in map(int, args.sizes.split(",")):
            inputs = tmp / f"in-{factor}x"
            n = make_inputs(inputs, base * factor)
            t0 = time.time()
            reps = [(run_ours(inputs, tmp / f"ours-{factor}x-{r}", stages, args.tasks),
                     run_peer(inputs, tmp / f"peer-{factor}x-{r}", args.tasks)) for r in range(args.repeats)]
            ours = {name: median_run([o[name] for o, _ in reps]) for name in reps[0][0]}
            peer = median_run([p for _, p in reps])
            results["runs"][f"{factor}x"] = {"documents": n, "bytes": sum(f.stat().st_size for f in inputs.iterdir()),
                                             "ours": ours, "peer": peer, "wall_seconds": round(time.time() - t0, 1)}
            print(f"{factor}x: {n} documents ({results['runs'][f'{factor}x']['bytes'] / 2**20:.0f} MiB) "
                  f"in {time.time() - t0:.0f}s", file=sys.stderr)
        web = sorted(str(p) for p in (SHARED / "web").glob("*/*.html"))
        warc = sorted(str(p) for p in (SHARED / "warc").glob("*.warc.gz"))
        for kind, paths in () if args.memory_only else (("html", web), ("warc", warc)):
            results[kind] = median_run([run_extract_only(kind, paths, tmp / f"{kind}-{r}")
                                        for r in range(args.repeats)])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    report(results)
    if "html" in results:
        cost_model(results)


def report(r: dict) -> None:
    one, ten = r["runs"]["1x"], largest(r)
    if ten is not one:
        report_memory(r)
    if "html" in r:  # not with --memory-only
        report_throughput(r, ten)


def largest(r: dict) -> dict:
    return max(r["runs"].values(), key=lambda run: run["documents"])


def report_memory(r: dict) -> None:
    """Peak RSS per task at every input size (columns in the order of ``--sizes``), and each size / 1x."""
    sizes = list(r["runs"])
    print(f"\nPeak RSS per task (MiB, max over {r['tasks']} tasks), input "
          + " -> ".join(f"{r['runs'][k]['documents']}" for k in sizes) + " documents ("
          + " -> ".join(f"{r['runs'][k]['bytes'] / 2**20:.0f}" for k in sizes) + " MiB)")
    others = [k for k in sizes if k != "1x"]
    print(f"{'stage':<24}" + "".join(f"{k:>10}" for k in sizes) + "".join(f"{k + '/1x':>10}" for k in others))

    def row(name: str, peaks: dict[str, float]) -> None:
        print(f"{name:<24}" + "".join(f"{peaks[k]:>10.0f}" for k in sizes)
              + "".join(f"{peaks[k] / peaks['1x']:>10.2f}" for k in others))

    for name in r["stages"]:
        row(name, {k: max(r["runs"][k]["ours"][name]["peak_rss_mb"]) for k in sizes})
        phases = r["runs"]["1x"]["ours"][name].get("phase_peak_rss_mb", {})
        if len(phases) > 1:  # per phase of a multi-phase stage (dedup: signatures, buckets, verify, ...)
            for phase in phases:
                row(f"  {name}: {phase}", {k: r["runs"][k]["ours"][name]["phase_peak_rss_mb"][phase] for k in sizes})
    row("datatrove jsonl->jsonl", {k: max(r["runs"][k]["peer"]["peak_rss_mb"]) for k in sizes})
    last = r["runs"][sizes[-1]]
    print(f"extract / datatrove peak RSS at {sizes[-1]}: "
          f"{max(last['ours']['extract']['peak_rss_mb']) / max(last['peer']['peak_rss_mb']):.2f}")


def cpu(s: dict) -> float:
    """CPU seconds of a run's tasks (wall seconds for results saved before CPU time was recorded)."""
    return s.get("cpu_seconds") or s["task_seconds"]


def _runs(s: dict) -> str:
    runs = s.get("cpu_runs") or []
    return f"; median of {len(runs)} runs: {' / '.join(f'{c:.1f}' for c in runs)} CPU-s" if len(runs) > 1 else ""


def report_throughput(r: dict, ten: dict) -> None:
    seed = r.get("seed") or {}
    per_doc = seed["tokens"] / seed["documents"] if seed.get("documents") else 0.0
    print(f"\nThroughput (documents per CPU-second = per core, {ten['documents']}-document run; tokens/s = docs/s x "
          f"{per_doc:,.0f} Qwen2 tokens per seed document)")
    for name in r["stages"]:
        s = ten["ours"][name]
        print(f"{name:<22}{s['docs_in'] / cpu(s):>10.0f}{s['docs_in'] / cpu(s) * per_doc:>12,.0f} tok/s   "
              f"({s['docs_in']} docs, {s['tasks']} tasks, "
              f"{cpu(s):.1f} CPU-s, {s['task_seconds']:.1f} wall-s{_runs(s)})")
    p = ten["peer"]
    print(f"{'datatrove jsonl->jsonl':<22}{ten['documents'] / cpu(p):>10.0f}   ({cpu(p):.1f} CPU-s{_runs(p)})")
    ex = ten["ours"]["extract"]
    print(f"extract / datatrove throughput: "
          f"{(ex['docs_in'] / cpu(ex)) / (ten['documents'] / cpu(p)):.2f}")
    for kind in ("html", "warc"):
        s = r[kind]
        tok = f"{s['tokens_out'] / cpu(s):>12,.0f} tok/s" if s.get("tokens_out") else ""
        per_doc = (f", {s['input_bytes'] / s['docs_out'] / 1e3:.0f} KB in and {s['tokens_out'] / s['docs_out']:,.0f} "
                   f"tokens out per document" if s.get("tokens_out") else "")
        print(f"extract from {kind:<9}{s['docs_out'] / cpu(s):>10.1f}{tok}   ({s['docs_out']} docs{per_doc}, "
              f"{cpu(s):.1f} CPU-s, {s['task_seconds']:.1f} wall-s{_runs(s)})")
    print(f"median task peak RSS, {ten['documents']} documents, all stages: "
          f"{statistics.median(x for n in r['stages'] for x in ten['ours'][n]['peak_rss_mb']):.0f} MiB")


# --- 1T-token cost model --------------------------------------------------------------------------------------
# Assumptions (not measured here; change them and rerun with --cost-from): the share of documents each stage
# keeps, in pipeline order, and the Common Crawl snapshot size.
FUNNEL = {"langid": 0.5, "filter": 0.6, "classify": 0.1, "dedup": 0.5, "decontam": 0.999}
OUTPUT_TOKENS = 1e12
CC_PAGES_PER_SNAPSHOT = 3.0e9
CC_WARC_TIB_PER_SNAPSHOT = 90.0
NODE_CORES = 32
ORDER = ("extract", "langid", "filter", "classify", "dedup", "decontam", "tokens")


def cost_model(r: dict) -> dict:
    """Core-hours, storage and dedup traffic for OUTPUT_TOKENS, from the measured throughputs of ``r``."""
    ten = largest(r)["ours"]
    seed_tpd = r["seed"]["tokens"] / r["seed"]["documents"]  # tokens per benchmark document
    html = r["html"]
    tokens_per_page = html["tokens_out"] / html["docs_out"]
    keep_all = 1.0
    for k in FUNNEL.values():
        keep_all *= k
    pages = OUTPUT_TOKENS / (tokens_per_page * keep_all)
    docs, rows = pages, []
    for stage in ORDER:
        if stage == "extract":
            rate = html["docs_out"] / cpu(html)  # pages/s per core, real HTML
            core_s = pages / rate
        elif stage in ten:
            s = ten[stage]
            tok_rate = s["docs_in"] / cpu(s) * seed_tpd  # tokens/s per core
            core_s = docs * tokens_per_page / tok_rate
        else:
            core_s = None
        rows.append((stage, docs, core_s))
        docs *= FUNNEL.get(stage, 1.0)
    snapshots = pages / CC_PAGES_PER_SNAPSHOT
    print(f"\n1T-token cost model: {tokens_per_page:.0f} tokens per extracted page (measured), keep rates {FUNNEL}"
          f" -> overall {keep_all:.4f}; {pages / 1e9:.1f} B pages scanned = {snapshots:.1f} Common Crawl "
          f"snapshots (~{snapshots * CC_WARC_TIB_PER_SNAPSHOT:,.0f} TiB WARC read)")
    total = sum(c for _, _, c in rows if c)
    print(f"{'stage':<10}{'docs in':>12}{'core-hours':>14}{'share':>8}")
    for stage, d, c in rows:
        ch = f"{c / 3600:>14,.0f}{c / total:>8.1%}" if c else f"{'not measured':>14}"
        print(f"{stage:<10}{d / 1e9:>11.2f}B{ch}")
    print(f"total {total / 3600:,.0f} core-hours = {total / 3600 / NODE_CORES:,.0f} node-hours of {NODE_CORES} cores "
          f"(= {total / 3600 / NODE_CORES / 64:,.0f} h on 64 nodes)")
    # storage: bytes per token of the stage outputs, measured on the 10x run
    ex = ten["extract"]
    tokens_10x = largest(r)["documents"] * seed_tpd
    b_tok = ex["bytes"]["kept"] / tokens_10x
    out_tok = {st: d * tokens_per_page for st, d, _ in rows}
    stage_out = sum(out_tok[st] * b_tok for st in ORDER if st in ten or st == "extract")
    print(f"storage: {b_tok:.2f} B/token in Parquet (zstd): final corpus {OUTPUT_TOKENS * b_tok / 2**40:.1f} TiB; "
          f"extract output {out_tok['extract'] * b_tok / 2**40:,.0f} TiB; all stage outputs kept+removed "
          f"{stage_out / 2**40:,.0f} TiB")
    if "dedup" in ten:
        d = ten["dedup"]
        work_tok = d["bytes"]["work"] / (d["docs_in"] * seed_tpd)
        dedup_tokens = out_tok["dedup"]
        print(f"dedup work files: {work_tok:.2f} B/token measured -> {dedup_tokens * work_tok / 2**40:,.0f} TiB for "
              f"{dedup_tokens / 1e12:.1f} T tokens in; written by one rank, read by others: crosses nodes")
    return {"pages": pages, "rows": rows, "total_core_hours": total / 3600, "tokens_per_page": tokens_per_page}


def two_pass_cost(r: dict, crawl: dict, single: dict, share: str = "0.02") -> dict:
    """Core-hours of the same 1T-token build read in two passes (``extract --prefilter``), from bench_crawl's
    measured two-pass rate (WARC records in per CPU-second, first pass on every record + full extraction of its
    candidates) at ``share`` math, its share of non-math pages let through, and this run's per-stage rates.

    Pages extracted = what classify keeps in the funnel + the let-through share of the rest; extraction beyond the
    benchmark's own extracted share is charged at the HTML extraction rate. langid, filter and classify are charged
    on every extracted page (an upper bound); dedup, decontam and tokens as in the single-pass model."""
    c = crawl["shares"][share]
    rate, bench_share = c["records_per_cpu_s"]["two"], c["extracted_share"]
    rc = crawl["recall"]
    let_through = rc["nonmath_candidates"] / rc["nonmath_pages"]
    pages = single["pages"]
    kept = FUNNEL["langid"] * FUNNEL["filter"] * FUNNEL["classify"]  # share of pages classify keeps
    extracted = kept + let_through * (1 - kept)
    html = r["html"]
    html_rate = html["docs_out"] / cpu(html)
    first = pages * (1 / rate + max(0.0, extracted - bench_share) / html_rate)
    rows = [("first pass + extraction of the candidates", pages, first)]
    ten = largest(r)["ours"]
    seed_tpd = r["seed"]["tokens"] / r["seed"]["documents"]
    text = sum(pages * extracted * single["tokens_per_page"] / (ten[st]["docs_in"] / cpu(ten[st]) * seed_tpd)
               for st in ("langid", "filter", "classify") if st in ten)
    rows.append(("langid, filter, classify (every extracted page)", pages * extracted, text))
    rows.append(("dedup, decontam, tokens (as single-pass)", None,
                 sum(c_s for st, _, c_s in single["rows"] if st in ("dedup", "decontam", "tokens") and c_s)))
    total = sum(c_s for _, _, c_s in rows) / 3600
    print(f"\ntwo-pass read ({float(share):.0%} math benchmark: {rate:.0f} records/CPU-s with {bench_share:.1%} "
          f"extracted; {let_through:.1%} of non-math pages let through): {extracted:.1%} of {pages / 1e9:.1f} B pages "
          f"extracted")
    for name, d, c_s in rows:
        docs = f"{d / 1e9:>8.2f}B" if d else f"{'':>9}"
        print(f"  {name:<50}{docs}{c_s / 3600:>12,.0f} core-hours{c_s / 3600 / total:>8.1%}")
    print(f"  total {total:,.0f} core-hours ({single['total_core_hours'] / total:.1f}x fewer than single-pass "
          f"{single['total_core_hours']:,.0f}) = {total / NODE_CORES:,.0f} node-hours of {NODE_CORES} cores "
          f"(= {total / NODE_CORES / 64:,.0f} h on 64 nodes)")
    return {"total_core_hours": total, "rows": rows}


if __name__ == "__main__":
    main()

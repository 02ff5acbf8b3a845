"""Dedup benchmark: planted near-duplicates, distinct eval problems, time and memory vs datatrove/datasketch.

    python bench/bench_dedup.py [--quick] [--full] [--workdir DIR]

1. Planted set from real text (``seed/`` + web ground truth): every base document gets an exact copy, a
   reformatted one, one with boilerplate, word edits at 2/5/8 % and a heavy rewrite (a hard negative).
   Share of copies merged with their original per kind, and pair precision, for ours and for datatrove's
   default MinHash (its 4 steps, run for real with LocalPipelineExecutor on the same input).
2. GSM8K train + MATH train problems (all distinct): how many each system removes.
3. Time and peak memory on 100k documents (1M with ``--full``) built from real text plus planted copies:
   ours, datatrove's 4 steps and datasketch's ``MinHashLSH``, each in its own process; ratios printed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
SEED_FILES = ("math_text", "general_text", "math_code", "general_code", "math_text_zh", "general_text_zh")


# ---- inputs ------------------------------------------------------------------------------------------


def jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def base_documents(per_file: int, max_chars: int = 6000, min_words: int = 60) -> list[tuple[str, str]]:
    out = []
    for name in SEED_FILES:
        rows = jsonl(SHARED / "seed" / f"{name}.jsonl")
        rows = [r for r in rows if len(r["text"].split()) >= min_words or name.endswith("_zh")]
        for r in random.Random(1).sample(rows, min(per_file, len(rows))):
            out.append((f"{name}/{r['id']}", r["text"][:max_chars]))
    for i, r in enumerate(jsonl(SHARED / "web" / "ground_truth.jsonl")):
        if len(r["text"].split()) >= min_words:
            out.append((f"web/{i}", r["text"][:max_chars]))
    return out


def _evalset_rows() -> tuple[list[dict], list[dict]]:
    return jsonl(SHARED / "evalsets/gsm8k/train.jsonl"), jsonl(SHARED / "evalsets/math/train.partial.jsonl")


def eval_problems() -> list[tuple[str, str]]:
    gsm8k, math = _evalset_rows()
    return [(f"gsm8k/{i}", r["question"]) for i, r in enumerate(gsm8k)] + \
        [(f"math/{i}", r["problem"]) for i, r in enumerate(math)]


def eval_answers() -> dict[str, str]:
    """Reference answers: GSM8K's text after ``####``, MATH's ``answer`` field; spaces and commas removed."""
    gsm8k, math = _evalset_rows()
    out = {f"gsm8k/{i}": r["answer"].split("####")[-1] for i, r in enumerate(gsm8k)}
    out |= {f"math/{i}": r["answer"] for i, r in enumerate(math)}
    return {k: "".join(v.split()).replace(",", "") for k, v in out.items()}


def scale_documents(n: int) -> list[tuple[str, str]]:
    """``n`` documents: real text cut in ~1k-char pieces, then planted copies of them up to ``n``."""
    from corpus.dedup.planted import KINDS, make_vocab, variant

    pool: list[str] = []
    for name in SEED_FILES:
        for r in jsonl(SHARED / "seed" / f"{name}.jsonl"):
            text = r["text"]
            pool += [text[i : i + 1000] for i in range(0, len(text), 1000)]
    pool += [t for _, t in eval_problems()]
    pool += [r["text"] for r in jsonl(SHARED / "web" / "ground_truth.jsonl")]
    rng = random.Random(0)
    vocab = make_vocab(pool[::20])
    docs = [(f"u{i}", t) for i, t in enumerate(pool[:n])]
    for i in range(len(docs), n):
        docs.append((f"v{i}", variant(pool[rng.randrange(len(pool))], KINDS[i % len(KINDS)], rng, vocab)))
    return docs


def write_inputs(docs: list[tuple[str, str]], folder: str, shards: int) -> None:
    """The same documents as JSONL shards (datatrove, datasketch) and schema Parquet shards (ours)."""
    from corpus.schema import normalize_row
    from pipelines.steps.io import DocSink

    os.makedirs(f"{folder}/jsonl", exist_ok=True)
    lines: list[list[str]] = [[] for _ in range(shards)]
    sinks = [DocSink(f"{folder}/parquet/{i:05d}.parquet", write_empty=True) for i in range(shards)]
    for i, (doc_id, text) in enumerate(docs):
        lines[i % shards].append(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False))
        sinks[i % shards].write_row(normalize_row({"id": doc_id, "text": text, "source": "web"}))
    for i, shard in enumerate(lines):
        with open(f"{folder}/jsonl/{i:05d}.jsonl", "w", encoding="utf-8") as fh:
            fh.write("\n".join(shard) + "\n")
    for s in sinks:
        s.close()


# ---- systems (each returns {doc id: cluster key}) ----------------------------------------------------


def run_ours(folder: str, out: str, workers: int, shards: int, **settings) -> dict[str, str]:
    from pipelines.stages.dedup import DedupSettings, run_standalone
    from pipelines.steps.io import read_shards

    run_standalone(DedupSettings(tasks=shards, **settings), f"{folder}/parquet", out, workers=workers)
    cluster = {}
    kept = read_shards(f"{out}/kept").column("id").to_pylist()
    cluster.update({i: i for i in kept})
    removed = read_shards(f"{out}/removed")
    if removed.num_rows:
        cluster.update(zip(removed.column("id").to_pylist(), removed.column("kept_id").to_pylist(), strict=True))
    return cluster


def run_datatrove(folder: str, out: str, workers: int, shards: int) -> dict[str, str]:
    """datatrove's default MinHash (MinhashConfig(): 5-grams, 14 x 8, default TextNormConfig), 4 steps."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from pyarrow import parquet as pq

    cfg = MinhashConfig()

    def reader():
        return ParquetReader(f"{folder}/parquet", glob_pattern="*.parquet", id_key="id", text_key="text")

    def ex(steps, tasks, name, w=workers):
        LocalPipelineExecutor(steps, tasks=tasks, workers=min(w, tasks), logging_dir=f"{out}/logs/{name}",
                              start_method="spawn").run()

    ex([reader(), MinhashDedupSignature(f"{out}/sigs", config=cfg)], shards, "sigs")
    ex([MinhashDedupBuckets(f"{out}/sigs", f"{out}/buckets", config=cfg)], cfg.num_buckets, "buckets")
    ex([MinhashDedupCluster(f"{out}/buckets", f"{out}/remove", config=cfg, save_cluster_id=True)], 1, "cluster", 1)
    ex([reader(), MinhashDedupFilter(f"{out}/remove", load_cluster_ids=True,
                                     exclusion_writer=ParquetWriter(f"{out}/removed")),
        ParquetWriter(f"{out}/kept")], shards, "filter")
    # every member of a cluster carries its id, the kept one too: map members to the kept document
    cluster, survivor = {}, {}
    for part in ("kept", "removed"):
        for f in glob.glob(f"{out}/{part}/*.parquet"):
            for r in pq.read_table(f, columns=["id", "metadata"]).to_pylist():
                cid = r["metadata"].get("minhash_cluster_id", -1)
                cluster[r["id"]] = cid
                if part == "kept" and cid != -1:
                    survivor[cid] = r["id"]
    return {i: i if cid == -1 else survivor.get(cid, f"dt-{cid}") for i, cid in cluster.items()}


def run_datasketch(folder: str, out: str, threshold: float = 0.5, num_perm: int = 128) -> dict[str, str]:
    """datasketch ``MinHashLSH`` on the same math-safe 3-gram shingles, single process, union-find."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    from corpus.dedup.minhash import doc_features

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    ids, pairs = [], []
    for f in sorted(glob.glob(f"{folder}/jsonl/*.jsonl")):
        for r in jsonl(f):
            sh = doc_features(r["text"], 3).shingles
            if not len(sh):
                continue
            m = MinHash(num_perm=num_perm)
            m.update_batch(list(np.asarray(sh).astype(np.uint32).view(np.uint8).reshape(-1, 4)))
            for other in lsh.query(m):
                pairs.append((other, r["id"]))
            lsh.insert(r["id"], m)
            ids.append(r["id"])
    return union_find(ids, pairs)


def union_find(ids, pairs) -> dict:
    """Connected components of ``pairs``: each id -> the smallest id of its component."""
    parent = {i: i for i in ids}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


# ---- child process mode: one system, timed, peak memory -------------------------------------------------


def child(system: str, folder: str, out: str, workers: int, shards: int) -> None:
    t0 = time.perf_counter()
    if system == "ours":
        cluster = run_ours(folder, out, workers, shards)
    elif system == "datatrove":
        cluster = run_datatrove(folder, out, workers, shards)
    else:
        cluster = run_datasketch(folder, out)
    seconds = time.perf_counter() - t0
    peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    removed = sum(1 for k, v in cluster.items() if k != v)
    with open(f"{out}.result.json", "w") as fh:
        json.dump({"seconds": seconds, "peak_mb": peak_kb / 1024, "documents": len(cluster), "removed": removed,
                   "cluster": cluster}, fh)


IN_MEMORY_LIMIT_GB = 16  # datasketch keeps everything in one process: cap it before it takes the machine down


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (IN_MEMORY_LIMIT_GB << 30, IN_MEMORY_LIMIT_GB << 30))


def timed(system: str, folder: str, out: str, workers: int, shards: int) -> dict:
    """Run one system in a child process; a child that fails (e.g. out of memory) is reported, not fatal."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", system, folder, out, str(workers), str(shards)]
    t0 = time.perf_counter()
    proc = subprocess.run(["nice", "-n", "5", *cmd], preexec_fn=_cap_memory if system == "datasketch" else None,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        why = f"out of memory at the {IN_MEMORY_LIMIT_GB} GiB cap" if "MemoryError" in proc.stderr else last[:120]
        return {"seconds": float("nan"), "peak_mb": float("nan"), "removed": 0, "failed": why,
                "after_seconds": time.perf_counter() - t0}
    with open(f"{out}.result.json") as fh:
        return json.load(fh)


# ---- reports -----------------------------------------------------------------------------------------


def planted_benchmark(work: str, per_file: int, workers: int) -> dict:
    from corpus.dedup.planted import KINDS, planted_set, score

    base = base_documents(per_file)
    planted = list(planted_set(base))
    write_inputs([(p.id, p.text) for p in planted], f"{work}/planted", 2)
    res = {}
    for system in ("ours", "datatrove"):
        r = timed(system, f"{work}/planted", f"{work}/planted_{system}", workers, 2)
        res[system] = score(planted, r["cluster"])
    print(f"\n## planted near-duplicates: {len(base)} base documents x {len(KINDS)} variants "
          f"({len(planted)} documents)\n")
    print("| variant | ours | datatrove default |\n|---|---|---|")
    for kind in KINDS:
        label = f"{kind} (hard negative: false merges)" if kind == "rewrite" else kind
        print(f"| {label} | {res['ours'][kind]['merged']:.1%} | {res['datatrove'][kind]['merged']:.1%} |")
    print(f"| pair precision | {res['ours']['all']['precision']:.2%} | {res['datatrove']['all']['precision']:.2%} |")
    return res


def evalset_benchmark(work: str, workers: int) -> dict:
    """Every removal counts (strict); beside it, the removals whose reference answer differs from the kept
    problem's (certainly a different problem) and those whose normalized text is identical (certainly not)."""
    from corpus.normalize import normalize_text

    docs = eval_problems()
    text, answer = dict(docs), eval_answers()
    write_inputs(docs, f"{work}/evalsets", 2)
    res = {s: timed(s, f"{work}/evalsets", f"{work}/evalsets_{s}", workers, 2) for s in ("ours", "datatrove")}
    exact = len(docs) - len({" ".join(t.split()) for _, t in docs})
    print(f"\n## distinct problems merged: GSM8K train + MATH train.partial ({len(docs):,} problems, "
          f"{exact} exact repeats by whitespace-normalized text)\n")
    sizes = {p: sum(i.startswith(p) for i, _ in docs) for p in ("gsm8k/", "math/")}
    print("| system | GSM8K train removed | MATH train removed | all (strict) | share | answer differs | "
          "same normalized text |\n|---|---|---|---|---|---|---|")
    out = {}
    for s, r in res.items():
        cluster = r["cluster"]
        removed = sorted(k for k, v in cluster.items() if k != v)
        per = {p: sum(k.startswith(p) for k in removed) for p in sizes}
        wrong = [k for k in removed if answer[k] != answer[cluster[k]]]
        same = [k for k in removed if normalize_text(text[k]) == normalize_text(text[cluster[k]])]
        print(f"| {s} | {per['gsm8k/']} / {sizes['gsm8k/']:,} | {per['math/']} / {sizes['math/']:,} | "
              f"{len(removed)} / {len(docs):,} | {len(removed) / len(docs):.3%} | {len(wrong)} | {len(same)} |")
        out[s] = {"removed": len(removed), "docs": len(docs), "answer_differs": len(wrong),
                  "same_normalized": len(same), **per,
                  "pairs": [{"removed": k, "kept": cluster[k], "answers": [answer[k], answer[cluster[k]]]}
                            for k in removed]}
    print("\nOur merges, pair by pair (removed -> kept, reference answers):\n")
    for p in out["ours"]["pairs"]:
        print(f"- {p['removed']} -> {p['kept']}, answers {p['answers'][0]!r} / {p['answers'][1]!r}")
        for k in (p["removed"], p["kept"]):
            print(f"  - `{' '.join(text[k].split())[:300]}`")
    return out


SWEEP = [{}, {"edit_rate": 0.15}, {"edit_rate": 0.25}, {"exact_tokens": 20}, {"exact_tokens": 30}, {"exact_tokens": 50},
         {"symbol_change_rate": 0.0}, {"symbol_change_rate": 0.005}, {"symbol_change_rate": -1},
         {"verify_threshold": 0.4}, {"edit_rate": -1}]


def verification_sweep(per_file: int) -> dict:
    """The verification settings around the defaults, on the same LSH candidates, in one process: planted
    recall per kind, pair precision and evalset merges for each (the stage runs exactly this verification)."""
    from corpus.dedup.buckets import bucket_pairs
    from corpus.dedup.minhash import band_keys, doc_features, signatures
    from corpus.dedup.params import DedupConfig
    from corpus.dedup.planted import KINDS, planted_set, score
    from corpus.dedup.verify import is_duplicate

    planted = list(planted_set(base_documents(per_file)))
    sets = {"planted": [(p.id, p.text) for p in planted], "evalsets": eval_problems()}
    base = DedupConfig()
    prepared = {}
    for name, docs in sets.items():
        feats = [doc_features(t, base.shingle_size) for _, t in docs]
        keys = band_keys(signatures([f.shingles for f in feats], base), base)
        exact = np.array([f.exact[0] for f in feats], dtype=np.uint64)[:, None]
        keys = np.hstack([keys, exact])
        gids = np.arange(len(docs), dtype=np.uint64)
        pairs = np.unique(np.concatenate([bucket_pairs(keys[:, b], gids, base.max_bucket_pairs)
                                          for b in range(keys.shape[1])]))
        prepared[name] = (docs, feats, [(int(a), int(b)) for a, b in pairs])
    print("\n## verification settings (same candidates; planted % merged per kind, precision, evalset merges)\n")
    print("| setting | " + " | ".join(KINDS) + " | precision | evalset merges |\n|" + "---|" * (len(KINDS) + 3))
    out = {}
    for change in SWEEP:
        cfg = DedupConfig(**change)
        merged = {}
        for name, (docs, feats, pairs) in prepared.items():
            edges = [(a, b) for a, b in pairs if is_duplicate(feats[a].shingles, feats[b].shingles, feats[a].tokens,
                                                              feats[b].tokens, cfg)[0]]
            merged[name] = list(union_find(range(len(docs)), edges).values())
        r = score(planted, {p.id: str(c) for p, c in zip(planted, merged["planted"], strict=True)})
        ev = sum(c != i for i, c in enumerate(merged["evalsets"]))
        label = ", ".join(f"{k}={v}" for k, v in change.items()) or "defaults"
        print(f"| {label} | " + " | ".join(f"{r[k]['merged']:.1%}" for k in KINDS) +
              f" | {r['all']['precision']:.2%} | {ev} |")
        out[label] = {"planted": r, "evalset_merges": ev}
    return out


def speed_benchmark(work: str, sizes: list[int], workers: int) -> dict:
    out: dict = {}
    print("\n## time and peak memory (2 shards, 2 workers; each system in its own process)\n")
    print("| documents | system | seconds | peak MiB | removed | time ratio ours/peer |\n|---|---|---|---|---|---|")
    for n in sizes:
        folder = f"{work}/scale_{n}"
        if not os.path.exists(f"{folder}/parquet"):
            write_inputs(scale_documents(n), folder, 2)
        res = {s: timed(s, folder, f"{work}/scale_{n}_{s}", workers, 2) for s in ("ours", "datatrove", "datasketch")}
        for s, r in res.items():
            if "failed" in r:
                print(f"| {n:,} | {s} | did not finish: {r['failed']} (after {r['after_seconds']:.0f} s) | | | |")
                continue
            ratio = "" if s == "ours" else f"{res['ours']['seconds'] / r['seconds']:.2f}"
            print(f"| {n:,} | {s} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['removed']:,} | {ratio} |")
        out[n] = {s: {k: r[k] for k in ("seconds", "peak_mb", "removed", "failed") if k in r} for s, r in res.items()}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        system, folder, out, workers, shards = sys.argv[2:7]
        child(system, folder, out, int(workers), int(shards))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small planted set, 20k documents for speed")
    ap.add_argument("--full", action="store_true", help="also 1M documents (slow)")
    ap.add_argument("--workdir", default="/tmp/bench_dedup")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=("planted", "evalsets", "speed", "sweep"), default=None,
                    help="one part (sweep: verification settings around the defaults, in-process; not in the default)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    results = {}
    if args.only in (None, "planted"):
        results["planted"] = planted_benchmark(args.workdir, 30 if args.quick else 120, args.workers)
    if args.only in (None, "evalsets"):
        results["evalsets"] = evalset_benchmark(args.workdir, args.workers)
    if args.only == "sweep":
        results["sweep"] = verification_sweep(30 if args.quick else 120)
    if args.only in (None, "speed"):
        sizes = [20_000] if args.quick else [100_000] + ([1_000_000] if args.full else [])
        results["speed"] = speed_benchmark(args.workdir, sizes, args.workers)
    with open(f"{args.workdir}/results.json", "w") as fh:
        json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()

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


SPLITS = ("dev", "test")


def split_of(key: str) -> str:
    """``dev`` or ``test`` by a hash of a base document's / problem's id (half each): settings are chosen on
    dev and reported on test, which they were not chosen on."""
    import xxhash

    return SPLITS[xxhash.xxh64_intdigest(key.encode("utf-8")) & 1]


def by_split(docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    return {sp: [d for d in docs if split_of(d[0]) == sp] for sp in SPLITS}


def distinct_documents(docs: list[tuple[str, str]], max_jaccard: float = 0.3) -> list[tuple[str, str]]:
    """``docs`` without the ones whose word 5-gram set overlaps an earlier one's by Jaccard >= ``max_jaccard``
    (exact, over an inverted index; plain whitespace words, not our tokenizer). Real corpora hold their own
    near-duplicates (two copies of the same program in a repository): as planted bases they would count as false
    merges of *distinct* families."""
    from collections import Counter

    grams, postings, kept = [], {}, []
    for text in (t for _, t in docs):
        w = text.split()
        grams.append({hash(tuple(w[i : i + 5])) for i in range(max(1, len(w) - 4))})
    for i, g in enumerate(grams):
        shared = Counter(j for h in g for j in postings.get(h, ()))
        if any(n / (len(g) + len(grams[j]) - n) >= max_jaccard for j, n in shared.items()):
            continue
        kept.append(docs[i])
        for h in g:
            postings.setdefault(h, []).append(i)
    return kept


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
    return distinct_documents(out)


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
    ours_stage(folder, out, workers, shards, **settings)
    return ours_clusters(out)


def ours_stage(folder: str, out: str, workers: int, shards: int, **settings) -> None:
    from pipelines.stages.dedup import DedupSettings, run_standalone

    run_standalone(DedupSettings(tasks=shards, **settings), f"{folder}/parquet", out, workers=workers)


def ours_clusters(out: str) -> dict[str, str]:
    from pipelines.steps.io import read_shards

    cluster = {}
    kept = read_shards(f"{out}/kept").column("id").to_pylist()
    cluster.update({i: i for i in kept})
    removed = read_shards(f"{out}/removed")
    if removed.num_rows:
        cluster.update(zip(removed.column("id").to_pylist(), removed.column("kept_id").to_pylist(), strict=True))
    return cluster


def ours_phase_peaks(out: str) -> dict[str, float]:
    """Largest task peak (MiB) per phase, from the task records (label rounds: in the driver)."""
    peaks: dict[str, float] = {}
    for f in glob.glob(f"{out}/work/logs/*/tasks/*.json"):
        phase = Path(f).parents[1].name
        phase = "cluster rounds" if phase.startswith("cluster_") else phase
        with open(f) as fh:
            peaks[phase] = max(peaks.get(phase, 0.0), json.load(fh)["peak_rss_mb"])
    return peaks


def run_datatrove(folder: str, out: str, workers: int, shards: int) -> dict[str, str]:
    datatrove_steps(folder, out, workers, shards)
    return datatrove_clusters(out)


def datatrove_steps(folder: str, out: str, workers: int, shards: int) -> None:
    """datatrove's default MinHash (MinhashConfig(): 5-grams, 14 x 8, default TextNormConfig), 4 steps (its
    cluster step is one task: datatrove runs it in the driver process)."""
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


def datatrove_clusters(out: str) -> dict[str, str]:
    from pyarrow import parquet as pq

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
    """Time one system: wall and CPU seconds (this process + every worker it waited for) and peak memory of
    the driver (this process) and of the largest worker, taken when the run ends, before its output is read
    back for scoring."""
    from pipelines.executors import peak_rss_mb

    t0 = time.perf_counter()
    if system == "ours":
        ours_stage(folder, out, workers, shards)
    elif system == "datatrove":
        datatrove_steps(folder, out, workers, shards)
    else:
        cluster = run_datasketch(folder, out)
    seconds = time.perf_counter() - t0
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    phases = ours_phase_peaks(out) if system == "ours" else {}
    # maxrss of children: the largest worker. Our label rounds run in the driver and reset its peak counter
    # per task (the task records keep each one's peak), so the driver's peak is the largest of those and now
    driver_mb, worker_mb = max(peak_rss_mb(), phases.get("cluster rounds", 0.0)), usage[1].ru_maxrss / 1024
    if system == "ours":
        cluster = ours_clusters(out)
    elif system == "datatrove":
        cluster = datatrove_clusters(out)
    removed = sum(1 for k, v in cluster.items() if k != v)
    with open(f"{out}.result.json", "w") as fh:
        json.dump({"seconds": seconds, "cpu_seconds": cpu, "peak_mb": max(driver_mb, worker_mb),
                   "worker_mb": worker_mb, "driver_mb": driver_mb, "phases": phases, "documents": len(cluster),
                   "removed": removed, "cluster": cluster}, fh)


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
        return {"seconds": float("nan"), "cpu_seconds": float("nan"), "peak_mb": float("nan"),
                "worker_mb": float("nan"), "driver_mb": float("nan"), "removed": 0,
                "failed": why,
                "after_seconds": time.perf_counter() - t0}
    with open(f"{out}.result.json") as fh:
        return json.load(fh)


# ---- reports -----------------------------------------------------------------------------------------


def planted_benchmark(work: str, per_file: int, workers: int) -> dict:
    """Planted copies per split (base documents split by id), each split its own run, ours and datatrove."""
    from corpus.dedup.planted import KINDS, planted_set, score

    base = by_split(base_documents(per_file))
    res: dict = {sp: {} for sp in SPLITS}
    for sp in SPLITS:
        planted = list(planted_set(base[sp]))
        write_inputs([(p.id, p.text) for p in planted], f"{work}/planted_{sp}", 2)
        for system in ("ours", "datatrove"):
            r = timed(system, f"{work}/planted_{sp}", f"{work}/planted_{sp}_{system}", workers, 2)
            res[sp][system] = score(planted, r["cluster"])
    sizes = " / ".join(f"{sp} {len(base[sp])}" for sp in SPLITS)
    print(f"\n## planted near-duplicates: base documents {sizes}, x {len(KINDS)} variants each\n")
    print("| variant | ours dev | **ours test** | datatrove dev | datatrove test |\n|---|---|---|---|---|")
    for kind in KINDS:
        label = f"{kind} (hard negative: false merges)" if kind == "rewrite" else kind
        print(f"| {label} | " + " | ".join(f"{res[sp][s][kind]['merged']:.1%}" for s in ("ours", "datatrove")
                                            for sp in SPLITS) + " |")
    print("| pair precision | " + " | ".join(f"{res[sp][s]['all']['precision']:.2%}" for s in ("ours", "datatrove")
                                           for sp in SPLITS) + " |")
    return res


def evalset_merges(docs: list[tuple[str, str]], cluster: dict[str, str], answer: dict[str, str]) -> dict:
    """Removals (strict), those whose reference answer differs from the kept problem's (certainly distinct
    problems) and those whose normalized text is identical (certainly not)."""
    from corpus.normalize import normalize_text

    text = dict(docs)
    removed = sorted(k for k, v in cluster.items() if k != v)
    wrong = [k for k in removed if answer[k] != answer[cluster[k]]]
    same = [k for k in removed if normalize_text(text[k]) == normalize_text(text[cluster[k]])]
    per = {p: sum(k.startswith(p) for k in removed) for p in ("gsm8k/", "math/")}
    return {"removed": len(removed), "docs": len(docs), "answer_differs": len(wrong), "same_normalized": len(same),
            **per, "pairs": [{"removed": k, "kept": cluster[k], "answers": [answer[k], answer[cluster[k]]]}
                             for k in removed]}


def evalset_benchmark(work: str, workers: int) -> dict:
    """Distinct problems merged, per split (problems split by id; each split its own run)."""
    docs, answer = eval_problems(), eval_answers()
    text = dict(docs)
    out: dict = {}
    print("\n## distinct problems merged: GSM8K train + MATH train.partial (problems split by id)\n")
    print("| system | split | GSM8K train removed | MATH train removed | all (strict) | share | answer differs | "
          "same normalized text |\n|---|---|---|---|---|---|---|---|")
    for sp, part in by_split(docs).items():
        write_inputs(part, f"{work}/evalsets_{sp}", 2)
        sizes = {p: sum(i.startswith(p) for i, _ in part) for p in ("gsm8k/", "math/")}
        for s in ("ours", "datatrove"):
            r = timed(s, f"{work}/evalsets_{sp}", f"{work}/evalsets_{sp}_{s}", workers, 2)
            m = out.setdefault(s, {})[sp] = evalset_merges(part, r["cluster"], answer)
            print(f"| {s} | {sp} | {m['gsm8k/']} / {sizes['gsm8k/']:,} | {m['math/']} / {sizes['math/']:,} | "
                  f"{m['removed']} / {len(part):,} | {m['removed'] / len(part):.3%} | {m['answer_differs']} | "
                  f"{m['same_normalized']} |")
    print("\nOur merges, pair by pair (removed -> kept, reference answers):\n")
    for sp in SPLITS:
        for p in out["ours"][sp]["pairs"]:
            print(f"- {sp}: {p['removed']} -> {p['kept']}, answers {p['answers'][0]!r} / {p['answers'][1]!r}")
            for k in (p["removed"], p["kept"]):
                print(f"  - `{' '.join(text[k].split())[:300]}`")
    return out


# the verification settings searched on the dev split (every combination)
GRID = {"edit_rate": (0.2, 0.25, 0.3), "exact_tokens": (30, 40, 50), "symbol_change_rate": (0.002, 0.005, 0.01, 0.02),
        "symbol_exact_tokens": (0, 100, 200, 400), "frames": (True, False)}
# previous defaults (before the length-scaled symbol rule), for comparison
PREVIOUS = {"edit_rate": 0.2, "exact_tokens": 40, "symbol_change_rate": 0.002, "symbol_exact_tokens": 0,
            "frames": True}


def _candidates(docs: list[tuple[str, str]], cfg) -> tuple[list, list[tuple[int, int, float, object]]]:
    """Features and LSH candidate pairs ``(a, b, similarity, token diff)`` of ``docs`` (what the stage
    verifies), each pair's token diff computed once for every setting."""
    from corpus.dedup.buckets import bucket_pairs
    from corpus.dedup.minhash import band_keys, doc_features, signatures
    from corpus.dedup.verify import similarity, token_diff

    feats = [doc_features(t, cfg.shingle_size) for _, t in docs]
    keys = band_keys(signatures([f.shingles for f in feats], cfg), cfg)
    keys = np.hstack([keys, np.array([f.exact[0] for f in feats], dtype=np.uint64)[:, None]])
    gids = np.arange(len(docs), dtype=np.uint64)
    pairs = np.unique(np.concatenate([bucket_pairs(keys[:, b], gids, cfg.max_bucket_pairs)
                                      for b in range(keys.shape[1])]))
    out = []
    for a, b in pairs:
        a, b = int(a), int(b)
        sim = similarity(feats[a].shingles, feats[b].shingles, cfg.metric)
        out.append((a, b, sim, token_diff(feats[a].tokens, feats[b].tokens) if sim >= cfg.verify_threshold else None))
    return feats, out


def verification_sweep(per_file: int) -> dict:
    """Every combination of :data:`GRID` on the same LSH candidates, in one process (the stage runs exactly
    this verification: :func:`corpus.dedup.verify.accept`). The setting is chosen on the dev split: no
    distinct problem merged (reference answers differ), no rewrite merged, pair precision >= 99.5 %, then the
    best recall summed over the copy kinds, the fewest problem merges, the best precision, the strictest
    allowances; dev and test are printed side by side."""
    import itertools

    from corpus.dedup.params import DedupConfig
    from corpus.dedup.planted import COPY_KINDS, KINDS, planted_set, score
    from corpus.dedup.verify import accept, edits_allowed, symbols_allowed

    base = DedupConfig()
    answer = eval_answers()
    prepared = {}
    for sp in SPLITS:
        planted = list(planted_set(by_split(base_documents(per_file))[sp]))
        problems = by_split(eval_problems())[sp]
        prepared[sp] = {"planted": (planted, *_candidates([(p.id, p.text) for p in planted], base)),
                        "evalsets": (problems, *_candidates(problems, base))}

    def evaluate(change: dict, sp: str) -> dict:
        cfg = DedupConfig(**change)
        res = {}
        for name, (docs, _, pairs) in prepared[sp].items():
            edges = [(a, b) for a, b, sim, diff in pairs if diff is not None and accept(diff, cfg)]
            ids = [d.id for d in docs] if name == "planted" else [d[0] for d in docs]
            res[name] = {ids[i]: ids[c] for i, c in union_find(range(len(docs)), edges).items()}
        r = score(prepared[sp]["planted"][0], res["planted"])
        ev = evalset_merges(prepared[sp]["evalsets"][0], res["evalsets"], answer)
        return {"planted": {k: v["merged"] for k, v in r.items() if k != "all"},
                "precision": r["all"]["precision"], "merges": ev["removed"], "answer_differs": ev["answer_differs"]}

    names = list(GRID)
    settings = [dict(zip(names, values, strict=True)) for values in itertools.product(*GRID.values())]
    dev = [(s, evaluate(s, "dev")) for s in settings]
    ok = [(s, r) for s, r in dev if r["answer_differs"] == 0 and r["planted"]["rewrite"] == 0
          and r["precision"] >= 0.995]
    def strictness(s: dict) -> tuple:  # ties: the stricter setting (fewer symbols / edits allowed at 200 tokens)
        cfg = DedupConfig(**s)
        return symbols_allowed(200, cfg), edits_allowed(200, cfg), s["frames"]

    ok.sort(key=lambda sr: (-sum(sr[1]["planted"][k] for k in COPY_KINDS), sr[1]["merges"], -sr[1]["precision"],
                            strictness(sr[0])))
    chosen = ok[0][0] if ok else PREVIOUS
    shown = [("**chosen on dev**", chosen), ("previous defaults", PREVIOUS)] + \
        [(f"dev rank {i + 2}", s) for i, (s, _) in enumerate(ok[1:6])]
    print(f"\n## verification settings: {len(settings)} combinations of {', '.join(names)} searched on dev "
          f"({len(ok)} meet the constraints); dev | test\n")
    shown_kinds = ("boilerplate", "edit2", "edit5", "edit8", "rewrite")
    print("| setting | " + " | ".join(f"{k} dev / test" for k in shown_kinds) +
          " | precision dev / test | problems merged dev / test (answer differs) |\n|---" + "|---" * 7 + "|")
    out = {"chosen": chosen, "rows": []}
    for label, s in shown:
        rd, rt = evaluate(s, "dev"), evaluate(s, "test")
        desc = ", ".join(f"{k}={v}" for k, v in s.items())
        print(f"| {label}: {desc} | " + " | ".join(f"{rd['planted'][k]:.1%} / {rt['planted'][k]:.1%}"
                                                  for k in shown_kinds) +
              f" | {rd['precision']:.2%} / {rt['precision']:.2%} | {rd['merges']} ({rd['answer_differs']}) / "
              f"{rt['merges']} ({rt['answer_differs']}) |")
        out["rows"].append({"label": label, "setting": s, "dev": rd, "test": rt})
    print("\nplanted kinds, chosen setting, test split: " +
          ", ".join(f"{k} {v:.1%}" for k, v in out["rows"][0]["test"]["planted"].items() if k in KINDS))
    return out


SYSTEMS = ("ours", "datatrove", "datasketch")


def speed_benchmark(work: str, sizes: list[int], workers: int, repeats: int = 1,
                    systems: tuple[str, ...] = SYSTEMS) -> dict:
    """Each system in its own process, one after another, ``repeats`` times (median reported). Wall time and
    CPU time (the process and every worker it waited for): on a machine shared with other jobs the CPU ratio
    is the steadier one."""
    out: dict = {}
    print("\n## time and peak memory (2 shards, 2 workers; each system in its own process)\n")
    print("| documents | system | seconds (wall) | CPU seconds | peak MiB: largest worker | peak MiB: driver | "
          "removed | wall ratio ours/peer | CPU ratio ours/peer |\n|---|---|---|---|---|---|---|---|---|")
    keys = ("seconds", "cpu_seconds", "peak_mb", "worker_mb", "driver_mb")
    for n in sizes:
        folder = f"{work}/scale_{n}"
        if not os.path.exists(f"{folder}/parquet"):
            write_inputs(scale_documents(n), folder, 2)
        runs: dict[str, list[dict]] = {s: [] for s in systems}
        for _ in range(repeats):
            for s in runs:
                if runs[s] and "failed" in runs[s][-1]:
                    continue
                runs[s].append(timed(s, folder, f"{work}/scale_{n}_{s}", workers, 2))
        res = {}
        for s, rs in runs.items():
            ok = [r for r in rs if "failed" not in r]
            res[s] = {k: float(np.median([r[k] for r in ok])) for k in keys} | \
                {"removed": ok[0]["removed"], "phases": ok[-1].get("phases", {})} if ok else rs[-1]
        for s, r in res.items():
            if "failed" in r:
                print(f"| {n:,} | {s} | did not finish: {r['failed']} (after {r['after_seconds']:.0f} s) | | | | | | |")
                continue
            ratios = ("", "") if s == "ours" or "failed" in res.get("ours", {"failed": 1}) else \
                (f"{res['ours']['seconds'] / r['seconds']:.2f}", f"{res['ours']['cpu_seconds'] / r['cpu_seconds']:.2f}")
            print(f"| {n:,} | {s} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['worker_mb']:.0f} | "
                  f"{r['driver_mb']:.0f} | {r['removed']:,} | {ratios[0]} | {ratios[1]} |")
        if res.get("ours", {}).get("phases"):
            print(f"\n{n:,} ours, largest task peak per phase (MiB): " +
                  ", ".join(f"{k} {v:.0f}" for k, v in sorted(res["ours"]["phases"].items())) + "\n")
        out[n] = {s: {k: r[k] for k in (*keys, "removed", "phases", "failed") if k in r} for s, r in res.items()}
    return out


SIGNATURE_CODE = """
import json, sys, time
import pyarrow.parquet as pq
from corpus.dedup import DedupConfig
from corpus.dedup.minhash import band_keys, doc_features, signatures
try:  # batches of 512 as the signatures step takes them (older trees: one document at a time)
    from corpus.dedup.minhash import batch_features
except ImportError:
    batch_features = None
texts = pq.read_table(sys.argv[1], columns=["text"]).column("text").to_pylist()[: int(sys.argv[2])]
cfg = DedupConfig()
t0 = time.process_time()
if batch_features is None:
    feats = [doc_features(x, cfg.shingle_size) for x in texts]
else:
    feats = [f for i in range(0, len(texts), 512) for f in batch_features(texts[i : i + 512], cfg.shingle_size)]
t1 = time.process_time()
keys = band_keys(signatures([f.shingles for f in feats], cfg), cfg)
t2 = time.process_time()
import xxhash
print(json.dumps({"features": t1 - t0, "minhash": t2 - t1, "digest": xxhash.xxh64_hexdigest(keys.tobytes())}))
"""


def signature_cost(work: str, n: int, trees: list[str], repeats: int = 3) -> dict:
    """CPU of the signature computation (features, then MinHash + band keys) on the first ``n`` documents of
    the 100k speed input, for this checkout and for other source trees (e.g. ``git archive COMMIT corpus | tar
    -x -C DIR``), alternating, each in its own process; medians. Equal band-key digests = identical signatures."""
    folder = f"{work}/scale_100000"
    if not os.path.exists(f"{folder}/parquet"):
        write_inputs(scale_documents(100_000), folder, 2)
    runs: dict[str, list[dict]] = {t: [] for t in [str(REPO), *trees]}
    for _ in range(repeats):
        for tree in runs:
            p = subprocess.run([sys.executable, "-c", SIGNATURE_CODE, f"{folder}/parquet/00000.parquet", str(n)],
                               env={**os.environ, "PYTHONPATH": tree}, cwd=tree, capture_output=True, text=True,
                               check=True)
            runs[tree].append(json.loads(p.stdout))
    print(f"\n## signature computation, {n:,} documents, CPU seconds (median of {repeats})\n")
    print("| source tree | features | MinHash + band keys | total | band-key digest |\n|---|---|---|---|---|")
    out = {}
    for tree, rs in runs.items():
        f, m = (float(np.median([r[k] for r in rs])) for k in ("features", "minhash"))
        print(f"| {'this checkout' if tree == str(REPO) else tree} | {f:.2f} | {m:.2f} | {f + m:.2f} | "
              f"{rs[0]['digest']} |")
        out[tree] = {"features": f, "minhash": m, "digest": rs[0]["digest"]}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        system, folder, out, workers, shards = sys.argv[2:7]
        child(system, folder, out, int(workers), int(shards))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small planted set, 20k documents for speed")
    ap.add_argument("--full", action="store_true", help="also 1M documents (slow)")
    ap.add_argument("--sizes", default="", help="speed: document counts (comma-separated; overrides --full)")
    ap.add_argument("--workdir", default="/tmp/bench_dedup")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="speed runs per system (median reported)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="speed: systems to run (comma-separated)")
    ap.add_argument("--trees", default="", help="signatures: other source trees to compare (comma-separated)")
    ap.add_argument("--only", choices=("planted", "evalsets", "speed", "sweep", "signatures"), default=None,
                    help="one part (sweep: verification settings around the defaults, in-process; not in the default)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    results = {}
    if args.only in (None, "planted"):
        results["planted"] = planted_benchmark(args.workdir, 30 if args.quick else 120, args.workers)
    if args.only in (None, "evalsets"):
        results["evalsets"] = evalset_benchmark(args.workdir, args.workers)
    if args.only == "signatures":
        results["signatures"] = signature_cost(args.workdir, 10_000, [t for t in args.trees.split(",") if t])
    if args.only == "sweep":
        results["sweep"] = verification_sweep(30 if args.quick else 120)
    if args.only in (None, "speed"):
        sizes = [20_000] if args.quick else [100_000] + ([1_000_000] if args.full else [])
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else sizes
        results["speed"] = speed_benchmark(args.workdir, sizes, args.workers, args.repeats,
                                           tuple(args.systems.split(",")))
    with open(f"{args.workdir}/results.json", "w") as fh:
        json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()

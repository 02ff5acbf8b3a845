"""Dedup: math-safe features, LSH, verification, priority, components, the stage (local + Ray), index, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from corpus.dedup.buckets import bucket_pairs
from corpus.dedup.components import LABEL_DTYPE, connected_labels
from corpus.dedup.minhash import band_keys, doc_features, signatures
from corpus.dedup.params import DedupConfig
from corpus.dedup.planted import COPY_KINDS, planted_set, score
from corpus.dedup.priority import PriorityConfig, priority_key
from corpus.dedup.verify import is_duplicate, similarity
from corpus.schema import normalize_row
from pipelines.steps.io import DocSink, read_shards

CFG = DedupConfig()


def seed_base(shared_data: Path, n: int = 4, max_chars: int = 3000) -> list[tuple[str, str]]:
    out = []
    for name in ("math_text", "general_text", "math_code"):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            for line in list(fh)[:n]:
                r = json.loads(line)
                out.append((f"{name}/{r['id']}", r["text"][:max_chars]))
    return out


def write_shards(rows: list[dict], folder: Path, shards: int = 2) -> None:
    sinks = [DocSink(f"{folder}/{i:05d}.parquet", write_empty=True) for i in range(shards)]
    for i, r in enumerate(rows):
        sinks[i % shards].write_row(normalize_row(r))
    for s in sinks:
        s.close()


def cluster_of(out: Path) -> dict[str, str]:
    kept = read_shards(str(out / "kept")).column("id").to_pylist()
    removed = read_shards(str(out / "removed"))
    c = {i: i for i in kept}
    if removed.num_rows:
        c.update(zip(removed.column("id").to_pylist(), removed.column("kept_id").to_pylist(), strict=True))
    return c


def run(input_dir: Path, out: Path, executor: str = "local", **settings) -> dict:
    from pipelines.stages.dedup import DedupSettings, run_standalone

    settings.setdefault("tasks", 2)
    return run_standalone(DedupSettings(**settings), str(input_dir), str(out), executor=executor, workers=1)


# ---- pure logic --------------------------------------------------------------------------------------------


def test_features_are_math_safe():
    a, b = doc_features("Solve x^2+3x=10 for x.", 3), doc_features("Solve  X ^ 2 + 3 x = 10 for x", 3)
    assert a.exact == b.exact and np.array_equal(a.shingles, b.shingles)
    c = doc_features("Solve x^2-5x=24 for x.", 3)
    assert a.exact != c.exact and similarity(a.shingles, c.shingles) < 0.5
    assert len(doc_features("x", 3).shingles) == 1  # shorter than a shingle: still one shingle
    assert len(doc_features("  ...  ", 3).shingles) == 0


def test_signatures_estimate_jaccard():
    rng = np.random.default_rng(0)
    common = rng.integers(0, 2**32, 600, dtype=np.uint64)
    a = np.unique(np.concatenate([common, rng.integers(0, 2**32, 200, dtype=np.uint64)])).astype(np.uint32)
    b = np.unique(np.concatenate([common, rng.integers(0, 2**32, 200, dtype=np.uint64)])).astype(np.uint32)
    cfg = DedupConfig(num_perm=256, bands=32, rows=8)
    sig = signatures([a, b, np.empty(0, np.uint32)], cfg)
    assert abs(np.mean(sig[0] == sig[1]) - similarity(a, b)) < 0.08
    assert (sig[2] == np.iinfo(np.uint32).max).all()
    keys = band_keys(sig, cfg)
    assert keys.shape == (3, 32) and (keys[0] == keys[1]).any() and not (keys[0] == keys[2]).any()


def test_bands_come_from_datasketch_optimizer_or_are_set():
    from datasketch.lsh import _optimal_param

    assert DedupConfig(lsh_threshold=0.7, fn_weight=0.5).band_shape == _optimal_param(0.7, 128, 0.5, 0.5)
    assert DedupConfig(bands=14, rows=8).band_shape == (14, 8)
    with pytest.raises(ValueError, match="exceeds num_perm"):
        DedupConfig(bands=20, rows=8)


def test_bucket_pairs_small_and_large_buckets():
    keys = np.array([5, 5, 5, 9, 1] + [7] * 50, dtype=np.uint64)
    gids = np.arange(len(keys), dtype=np.uint64)
    pairs = {(int(a), int(b)) for a, b in bucket_pairs(keys, gids, max_bucket_pairs=8)}
    assert {(0, 1), (0, 2), (1, 2)} <= pairs
    big = {p for p in pairs if p[0] >= 5}
    assert len(big) < 2 * 50 and all((5, g) in big for g in range(6, 55))  # star + chain, not 1225 pairs
    assert not any(3 in p or 4 in p for p in pairs)
    skip = np.zeros(len(keys), bool)
    skip[:2] = True
    assert (0, 1) not in {(int(a), int(b)) for a, b in bucket_pairs(keys, gids, 8, skip)}


def dup(a: str, b: str, cfg: DedupConfig = CFG) -> tuple[bool, float]:
    fa, fb = doc_features(a, 3), doc_features(b, 3)
    return is_duplicate(fa.shingles, fb.shingles, fa.tokens, fb.tokens, cfg)


def test_tokens_are_math_tokens_tagged_symbol_and_figure():
    from corpus.dedup.tokens import FIGURE_BIT, SYMBOL_BIT, classified_tokens
    from corpus.normalize import math_tokens

    text = r"Josie has $50 and $9. Find $QR$ if \(x+1\) = 5 in the box [asy]draw(A--B);[/asy] 主机Dreamcast上"
    tokens, flags = classified_tokens(text)
    assert tokens == math_tokens(text)
    sym = {t for t, f in zip(tokens, flags, strict=True) if f & int(SYMBOL_BIT)}
    fig = {t for t, f in zip(tokens, flags, strict=True) if f & int(FIGURE_BIT)}
    assert {"50", "9", "qr", "x", "+", "1", "="} <= sym
    assert not sym & {"josie", "has", "and", "find", "box", "dreamcast"}
    assert fig == {"[", "]", "asy", "draw", "(", ")", "a", "b", "-", "/"}
    assert "dreamcast" in tokens and "上" in tokens  # CJK after Latin letters is still one token per character
    assert math_tokens(r"\[x = -4\]then") == ["x", "=", "-", "4", "then"]  # no stray bracket from \]


def test_verification_rejects_changed_numbers_variables_and_words_in_short_problems():
    base = "Natalia sold clips to 48 of her friends in April and then half as many in May. How many in all?"
    assert dup(base, base.replace("  ", " ") + "\n")[0]
    ok, sim = dup(base, base.replace("48", "36"))
    assert sim > 0.7 and not ok
    assert not dup(base, base.replace("Natalia", "Amanda"))[0]  # short: must match token for token
    assert dup(base, base.replace("48", "36"), DedupConfig(edit_rate=-1))[0]  # shingle similarity alone merges
    q = r"Find the sum of the roots of \[(2x^3 + x^2 - 8x + 20)(5x^3 - 25x^2 + 19) = 0.\]"
    assert not dup(q, q.replace("sum", "product"))[0]
    assert not dup("In trapezoid $ABCD$, $\\angle C = 2\\angle D$. Find $\\angle C$.",
                   "In trapezoid $ABCD$, $\\angle C = 2\\angle D$. Find $\\angle B$.")[0]


def test_verification_tolerates_edits_in_proportion_to_length_but_not_symbol_swaps(shared_data):
    import random

    from corpus.dedup.planted import make_vocab, variant
    from corpus.dedup.verify import edits_allowed, token_diff

    text = seed_base(shared_data, n=1)[0][1]
    vocab, rng = make_vocab([text]), random.Random(3)
    edited = variant(text, "edit5", rng, vocab)
    fa, fb = doc_features(text, 3), doc_features(edited, 3)
    diff = token_diff(fa.tokens, fb.tokens)
    assert 0 < diff.edits <= edits_allowed(diff.text_tokens, CFG) and dup(text, edited)[0]
    assert edits_allowed(40, CFG) == 0 < edits_allowed(400, CFG) < edits_allowed(4000, CFG)
    # a header and footer around the same text are not edits; text inserted inside it is
    framed = "Home | Forums | Log in\n" + text + "\nShare this page. Terms of service"
    assert token_diff(fa.tokens, doc_features(framed, 3).tokens).edits == 0 and dup(text, framed)[0]
    cut = text.index(" ", len(text) // 2)
    middle = text[:cut] + " please subscribe to our newsletter today " + text[cut:]
    assert token_diff(fa.tokens, doc_features(middle, 3).tokens).edits == 6
    # one number swapped for another: a substitution, refused when the rate allows none
    n = next(t for t in text.split() if t.isdigit()) if any(t.isdigit() for t in text.split()) else None
    swapped = text + " 12345" if n is None else text.replace(f" {n} ", " 98765 ", 1)
    sub = token_diff(fa.tokens, doc_features(swapped, 3).tokens).substitutions
    assert sub == (0 if n is None else 1)
    # figure code does not count as text length
    fig = "Find $x$. [asy]" + " draw((0,0)--(1,1));" * 50 + "[/asy]"
    assert token_diff(doc_features(fig, 3).tokens, doc_features(fig.replace("$x$", "$y$"), 3).tokens).text_tokens < 10
    assert not dup(fig, fig.replace("$x$", "$y$"))[0]


def test_containment_counts_only_the_shorter_texts_missing_tokens(shared_data):
    from corpus.dedup.verify import token_diff

    text = seed_base(shared_data, n=1)[0][1]
    a, b = doc_features(text[: text.index(" ", 1500)], 3), doc_features(text, 3)
    assert token_diff(a.tokens, b.tokens, containment=True).edits == 0
    assert token_diff(a.tokens, b.tokens).edits > 0


def test_long_pairs_fall_back_to_distance_and_a_symbol_multiset_bound(monkeypatch):
    from corpus.dedup import verify

    a = doc_features("Let x = 5 and y = 7, so the total is 12 apples today.", 3).tokens
    b = doc_features("Let x = 6 and y = 7, so the total is 13 apples.", 3).tokens
    exact = verify.token_diff(a, b)
    monkeypatch.setattr(verify, "MAX_DIFF_CELLS", 10)
    bounded = verify.token_diff(a, b)
    assert (exact.edits, exact.substitutions) == (4, 2)  # 5/6 and 12/13; "today" at the end is a frame
    assert (bounded.edits, bounded.substitutions) == (5, 2)  # the fallback has no frames
    assert verify.token_diff(a, b, containment=True).edits == 2


def test_priority_order_is_configurable_and_deterministic():
    p = PriorityConfig()
    book = {"source": "book", "math_score": 0.1, "text": "short"}
    web = {"source": "web", "math_score": 0.9, "text": "a much longer text"}
    assert priority_key(book, p) < priority_key(web, p)
    by_score = PriorityConfig(order=("math_score", "length"))
    assert priority_key(web, by_score) < priority_key(book, by_score)
    assert priority_key({"text": "abc"}, p) == priority_key({"text": "abc"}, p)
    with pytest.raises(ValueError, match="unknown priority"):
        PriorityConfig(order=("colour",))


def test_components_converge_to_the_best_label_on_a_chain():
    n = 40
    src, dst = np.arange(n - 1, dtype=np.uint64), np.arange(1, n, dtype=np.uint64)
    src, dst = np.r_[src, np.uint64(100)], np.r_[dst, np.uint64(101)]  # plus a separate pair

    def self_label(g):
        out = np.empty(len(g), LABEL_DTYPE)
        out["key"], out["h"], out["gid"] = np.where(g == 17, 0, 5), g, g
        return out

    labels = connected_labels(src, dst, self_label)
    by = dict(zip(labels["node"].tolist(), labels["gid"].tolist(), strict=True))
    assert all(by[i] == 17 for i in range(n)) and by[100] == by[101] == 100


def test_label_round_in_node_groups_equals_one_round():
    from corpus.dedup.components import propagation_round, propagation_round_parts

    rng = np.random.default_rng(0)
    src = rng.integers(0, 300, 2000).astype(np.uint64)
    dst = rng.integers(0, 300, 2000).astype(np.uint64)
    src, dst = np.r_[src, dst], np.r_[dst, src]

    def lookup(g):
        out = np.empty(len(g), LABEL_DTYPE)
        out["key"], out["h"], out["gid"] = g % 7, g * 31 % 101, g
        return out

    whole, changed = propagation_round(src, dst, lookup)
    parts, changed_parts = propagation_round_parts(src, dst, lookup, max_edges=300)
    assert changed_parts == changed and parts.tobytes() == whole.tobytes()


def test_gather_from_a_mapped_file_reads_blocks_of_rows_and_releases_each(tmp_path):
    from corpus.dedup.store import MappedArray, gather, save_array

    rng = np.random.default_rng(1)
    rows = [rng.integers(0, 2**32, int(n), dtype=np.uint32) for n in rng.integers(0, 40, 500)]
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    save_array(np.concatenate(rows), str(tmp_path / "v.npy"))
    idx = rng.integers(0, len(rows), 300)  # unsorted, with repeats
    mapped, calls = MappedArray(str(tmp_path / "v.npy")), []

    def release():
        calls.append(1)
        mapped.release()

    values, off = gather(mapped.array, offsets, idx, block=10**6, release=release, block_rows=16)
    mapped.close()
    assert values.tobytes() == np.concatenate([rows[i] for i in idx]).tobytes()
    assert off.tolist() == np.r_[0, np.cumsum([len(rows[i]) for i in idx])].tolist()
    assert len(calls) == -(-len(idx) // 16)  # one release per block of at most 16 rows


def test_survivor_summaries_from_origin_codes_match_a_plain_count():
    from corpus.dedup.clusters import MAX_DOMAINS, summarize

    rng = np.random.default_rng(2)
    survivors = rng.integers(0, 50, 2000).astype(np.uint64) << np.uint64(32)
    source_names, domain_names = ["books", "code", "web"], sorted(f"d{i:03d}.org" for i in range(80))
    sources, domains = rng.integers(-1, 3, 2000), rng.integers(-1, 80, 2000)
    got = summarize(survivors, sources, source_names, domains, domain_names)
    for g in np.unique(survivors).tolist():
        sel = survivors == g
        srcs = sorted({source_names[c] for c in sources[sel] if c >= 0})
        doms = sorted({domain_names[c] for c in domains[sel] if c >= 0})[:MAX_DOMAINS]
        assert got[g] == [int(sel.sum()), srcs, doms]


def test_origin_codes_read_back_sorted_with_none_for_missing(tmp_path):
    from corpus.dedup.store import Shard
    from pipelines.steps.dedup import _ShardBuilder

    b = _ShardBuilder(str(tmp_path), 0, 1)
    origins = [("web", "b.org"), (None, "a.org"), ("books", None), ("web", ""), ("web", "b.org")]
    for batch in (origins[:2], origins[2:]):
        empty = [np.empty(0, np.uint32)] * len(batch)
        b.add([(0, 0, 0, 0)] * len(batch), empty, empty, np.empty((0, 1), np.uint64), ["x"] * len(batch), batch)
    b.save()
    b.close()
    src, src_names, dom, dom_names = Shard(str(tmp_path), 0).origin_codes()
    assert (src_names, dom_names) == (["books", "web"], ["a.org", "b.org"])
    assert [src_names[c] if c >= 0 else None for c in src] == [o[0] for o in origins]
    assert [dom_names[c] if c >= 0 else None for c in dom] == [o[1] or None for o in origins]


def test_pair_runs_and_parts_stay_under_their_bounds():
    from corpus.dedup.parts import budget_parts, next_range

    cols = [np.array([1, 1, 1, 1, 2, 5, 6, 9], np.uint64), np.array([0, 2, 3, 3, 8], np.uint64)]
    starts, runs = [0, 0], []
    while (ends := next_range(cols, starts, 4)) != starts:
        runs.append([c[i:j].tolist() for c, i, j in zip(cols, starts, ends, strict=True)])
        starts = ends
    assert sum(len(a) + len(b) for a, b in runs) == 13 and runs[0] == [[], [0]]
    assert [1, 1, 1, 1] in [r[0] for r in runs]  # one `a` with more pairs than the quota: kept whole
    for a, b in runs:  # consecutive, non-overlapping `a` ranges
        assert len(a) + len(b) <= 4 or len(set(a + b)) == 1
    pos_a, pos_b = np.arange(10), np.arange(10) + 10  # 10 pairs of distinct documents: 2 x 100 + 10 bytes each
    parts = budget_parts(pos_a, pos_b, np.full(20, 100), 10, budget=450)
    assert [(lo, hi) for lo, hi, _ in parts] == [(0, 2), (2, 3), (3, 5), (5, 7), (7, 8), (8, 10)]
    assert all(held <= 450 for *_, held in parts)
    shared = budget_parts(np.zeros(10, np.int64), pos_b, np.full(20, 100), 10, budget=450)  # one `a` for all
    assert [(lo, hi, held) for lo, hi, held in shared] == [(0, 2, 320), (2, 5, 430), (5, 7, 320), (7, 10, 430)]


def _write_ragged(arrays: list[np.ndarray], path_prefix: str) -> None:
    """The signature phase's former whole-shard writer: the file format saved indexes hold."""
    from corpus.dedup.store import save_array

    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    save_array(np.concatenate(arrays).astype(np.uint32), f"{path_prefix}.npy")
    save_array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), f"{path_prefix}_off.npy")


def test_spilled_ragged_arrays_are_the_same_files(tmp_path):
    from corpus.dedup.store import RaggedSpill

    rows = [np.arange(n, dtype=np.uint32) * 3 for n in (0, 5, 1, 0, 7)]
    _write_ragged(rows, str(tmp_path / "a"))
    spill = RaggedSpill(str(tmp_path))
    spill.append(rows[:2])
    spill.append([])
    spill.append(rows[2:])
    assert np.array_equal(spill.get(4), rows[4]) and len(spill.get(3)) == 0
    spill.save(str(tmp_path / "b"))
    spill.close()
    for suffix in (".npy", "_off.npy"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


# ---- the stage -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(shared_data, tmp_path_factory):
    docs = list(planted_set(seed_base(shared_data)))
    folder = tmp_path_factory.mktemp("planted")
    rows = [{"id": p.id, "text": p.text, "source": "web"} for p in docs]
    rows[0]["source"] = "book"  # a base document from a preferred source
    write_shards(rows, folder / "in")
    return docs, folder


@pytest.fixture(scope="module")
def local_run(planted):
    docs, folder = planted
    out = folder / "local"
    summary = run(folder / "in", out)
    return summary, out


def test_local_run_finds_planted_copies_and_keeps_negatives(planted, local_run):
    docs, _ = planted
    summary, out = local_run
    result = score(docs, cluster_of(out))
    assert all(result[k]["merged"] == 1.0 for k in ("exact", "reformat", "boilerplate", "edit2", "edit5"))
    assert result["edit8"]["merged"] >= 0.9
    assert result["rewrite"]["merged"] == 0.0 and result["all"]["precision"] == 1.0
    n_base = sum(p.kind == "base" for p in docs)
    assert summary["documents"] == len(docs) and summary["kept"] <= 2 * n_base + 1
    report = json.loads((out / "dedup_report.json").read_text())
    assert report["removed"] == len(docs) - report["kept"] and report["params"]["bands"] * report["params"]["rows"]


def test_removed_rows_carry_reason_cluster_and_kept_id(planted, local_run):
    docs, _ = planted
    _, out = local_run
    removed = read_shards(str(out / "removed")).to_pylist()
    kept = set(read_shards(str(out / "kept")).column("id").to_pylist())
    assert removed and {r["reason"] for r in removed} <= {"exact_duplicate", "near_duplicate"}
    assert all(r["kept_id"] in kept and len(r["cluster_id"]) == 16 for r in removed)
    assert any(r["reason"] == "exact_duplicate" for r in removed)
    # source rank wins over length: the book-sourced base document survives its longer copies
    assert docs[0].id in kept
    clusters = {}
    for r in removed:
        clusters.setdefault(r["cluster_id"], set()).add(r["kept_id"])
    assert all(len(v) == 1 for v in clusters.values())


def test_verify_in_parts_under_a_memory_budget_finds_the_same_duplicates(planted, local_run):
    docs, folder = planted
    _, out_default = local_run
    out = folder / "small_budget"
    run(folder / "in", out, verify_memory_mb=0.05)  # 52 kB: a few pairs per part
    counts = [json.loads(p.read_text()) for p in sorted((out / "work" / "verify").glob("*.json"))]
    assert all(c["parts"] > 3 and c["max_part_bytes"] <= c["budget_bytes"] == 52428 for c in counts)
    default = [json.loads(p.read_text()) for p in sorted((out_default / "work" / "verify").glob("*.json"))]
    assert all(c["parts"] == 1 for c in default)
    assert cluster_of(out) == cluster_of(out_default)
    for sub in ("edges", "labels"):  # the same edges and labels, byte for byte
        for f in sorted((out_default / "work" / sub).rglob("*.npy")):
            assert f.read_bytes() == (out / "work" / f.relative_to(out_default / "work")).read_bytes()


@pytest.mark.ray
def test_ray_run_keeps_the_same_ids_as_local(planted, local_run, ray_cluster):
    docs, folder = planted
    _, out_local = local_run
    out = folder / "ray"
    run(folder / "in", out, executor="ray")
    assert cluster_of(out) == cluster_of(out_local)


def test_dedup_against_a_saved_index(shared_data, tmp_path):
    base = seed_base(shared_data, n=3)
    old = [{"id": i, "text": t, "source": "web"} for i, t in base[:6]]
    write_shards(old, tmp_path / "old")
    run(tmp_path / "old", tmp_path / "run1", save_index_dir=str(tmp_path / "index"))
    info = json.loads((tmp_path / "index" / "index.json").read_text())
    assert info["alive"] == 6
    import random

    from corpus.dedup.planted import make_vocab, variant

    rng, vocab = random.Random(0), make_vocab(t for _, t in base)
    new = [{"id": f"{i}~copy", "text": variant(t, "edit2", rng, vocab), "source": "book"} for i, t in base[:3]]
    new += [{"id": i, "text": t, "source": "web"} for i, t in base[6:]]
    new += [{"id": "dup-of-new", "text": base[7][1], "source": "web"}]
    write_shards(new, tmp_path / "new")
    run(tmp_path / "new", tmp_path / "run2", against_index_dir=str(tmp_path / "index"),
        save_index_dir=str(tmp_path / "index"))
    removed = {r["id"]: r for r in read_shards(str(tmp_path / "run2" / "removed")).to_pylist()}
    # index documents win even over a better source; duplicates inside the new batch are still found
    assert {f"{i}~copy" for i, _ in base[:3]} <= set(removed)
    assert all(removed[f"{i}~copy"]["kept_id"] == i and removed[f"{i}~copy"]["reason"] == "index_near_duplicate"
               for i, _ in base[:3])
    assert len(removed) == 4 and {removed[k]["kept_id"] for k in removed if "copy" not in k} <= {base[7][0]}
    # the old corpus was not re-hashed: run2's work files hold only the new batch
    assert sum(len(json.loads(p.read_text())) for p in (tmp_path / "run2/work/shards").glob("*/ids.json")) == len(new)
    info = json.loads((tmp_path / "index" / "index.json").read_text())
    assert info["shards"] == 4 and info["alive"] == 6 + len(new) - 4


def test_index_with_other_parameters_is_refused(shared_data, tmp_path):
    from corpus.dedup.store import IndexError_

    write_shards([{"id": "a", "text": "some text here", "source": "web"}], tmp_path / "in", shards=1)
    run(tmp_path / "in", tmp_path / "r1", tasks=1, save_index_dir=str(tmp_path / "idx"))
    with pytest.raises(IndexError_, match="shingle_size"):
        run(tmp_path / "in", tmp_path / "r2", tasks=1, shingle_size=5, against_index_dir=str(tmp_path / "idx"))


def _extract_dedup_manifest(tmp_path: Path, rows: list[dict], *, tasks: int, cluster_rounds: int) -> Path:
    """A manifest (local executor) running extract then dedup over ``rows`` written to ``in.jsonl``."""
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({
        "name": "t", "output": "out", "executor": {"kind": "local", "tasks": tasks, "workers": 1},
        "inputs": [{"name": "seed", "source": "web", "paths": ["in.jsonl"]}],
        "stages": [{"stage": "extract"}, {"stage": "dedup", "cluster_rounds": cluster_rounds}]}))
    return m


def test_manifest_stage_runs_after_extract(shared_data, tmp_path):
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    rows = [{"id": i, "text": t} for i, t in seed_base(shared_data, n=2)]
    rows += [{"id": f"{r['id']}-copy", "text": r["text"]} for r in rows[:3]]
    m = _extract_dedup_manifest(tmp_path, rows, tasks=2, cluster_rounds=4)
    result = run_manifest(load_manifest(m), progress=lambda s: None)
    assert len(read_shards(result.corpus_dir)) == len(rows) - 3
    assert (Path(result.stages[1]["dir"]) / "dedup_report.json").exists()


def test_rerun_over_work_files_of_an_older_format_starts_clean_with_the_same_counts(planted, local_run):
    from pipelines.stages.dedup import WORK_FORMAT, DedupSettings, run_standalone

    _, folder = planted
    clean, clean_out = local_run
    out, said = folder / "old_format", []
    work, counts = out / "work", ("documents", "kept", "removed", "removed_by_reason")

    def rerun() -> dict:
        return run_standalone(DedupSettings(tasks=2), str(folder / "in"), str(out), workers=1, log=said.append)

    rerun()
    rerun()  # same settings and format: resumes, nothing said
    assert said == []
    # a run started before origins.npy existed: no marker, a shard without it, label rounds and filter not done
    (work / "format.json").unlink()
    (work / "shards" / "00000" / "origins.npy").unlink()
    for d in (work / "logs").iterdir():
        if d.name.startswith("cluster_") or d.name == "filter":
            shutil.rmtree(d)
    summary = rerun()
    assert len(said) == 1 and "no format marker" in said[0] and "starting clean" in said[0]
    assert (work / "shards" / "00000" / "origins.npy").exists()
    assert {k: summary[k] for k in counts} == {k: clean[k] for k in counts} and cluster_of(out) == cluster_of(clean_out)
    # a marker written by an older work format
    (work / "format.json").write_text(json.dumps({"hash": "0" * 16, "work_format": WORK_FORMAT - 1}))
    summary = rerun()
    assert len(said) == 2 and f"work format {WORK_FORMAT - 1} -> {WORK_FORMAT}" in said[1]
    assert {k: summary[k] for k in counts} == {k: clean[k] for k in counts} and cluster_of(out) == cluster_of(clean_out)
    assert json.loads((work / "format.json").read_text())["work_format"] == WORK_FORMAT


def test_manifest_run_recomputes_a_stage_made_with_another_work_format(shared_data, tmp_path, monkeypatch):
    from dataclasses import replace

    from pipelines.manifest import load_manifest
    from pipelines.registry import get_stage, stages
    from pipelines.runner import run_manifest

    rows = [{"id": i, "text": t} for i, t in seed_base(shared_data, n=1)]
    rows += [{"id": f"{rows[0]['id']}-copy", "text": rows[0]["text"]}]
    m = _extract_dedup_manifest(tmp_path, rows, tasks=1, cluster_rounds=2)
    first = run_manifest(load_manifest(m), progress=lambda s: None)
    extract_dir, dedup_dir = (Path(s["dir"]) for s in first.stages)
    for d in (extract_dir, dedup_dir):
        (d / "work_of_the_old_code").write_text("x")
    run_manifest(load_manifest(m), progress=lambda s: None)  # same format: both resumed, nothing removed
    assert (extract_dir / "work_of_the_old_code").exists() and (dedup_dir / "work_of_the_old_code").exists()
    fmt = get_stage("dedup").work_format + 1
    monkeypatch.setitem(stages(), "dedup", replace(get_stage("dedup"), work_format=fmt))
    second = run_manifest(load_manifest(m), progress=lambda s: None)
    assert (extract_dir / "work_of_the_old_code").exists() and not (dedup_dir / "work_of_the_old_code").exists()
    assert json.loads((dedup_dir / "config.json").read_text())["work_format"] == fmt
    assert [s["documents_out"] for s in second.stages] == [s["documents_out"] for s in first.stages] == [4, 3]


def test_cli_dedup_writes_kept_removed_report_and_rejects_bad_input(shared_data, tmp_path):
    rows = [{"id": i, "text": t, "source": "HoTT/book@1:x.tex"} for i, t in seed_base(shared_data, n=1)]
    rows.append({"id": "copy", "text": rows[0]["text"] + "\n\nShare this page."})
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    cmd = [sys.executable, "-m", "pipelines.cli", "dedup", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "rejected" in p.stderr and "in.jsonl:" in p.stderr
    report = json.loads((tmp_path / "o" / "dedup_report.json").read_text())
    assert report["documents"] == len(rows) and report["removed"] == 1
    p = subprocess.run([*cmd[:4], str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o2")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "missing.jsonl" in p.stderr and "Traceback" not in p.stderr


def test_copy_kinds_cover_the_issue():
    assert set(COPY_KINDS) == {"exact", "reformat", "boilerplate", "edit2", "edit5", "edit8"}


# ---- length-scaled symbol rule, survivor counts, dup_count in the mix ------------------------------------


def _change_math_digits(text: str, k: int) -> str:
    """``text`` with the first digit of its first ``k`` inline formulas holding one replaced by another digit."""
    from corpus.dedup.tokens import _MATH

    out, done, pos = [], 0, 0
    for m in _MATH.finditer(text):
        span = m.group()
        digit = next((i for i, c in enumerate(span) if c.isdigit()), None)
        if done == k or digit is None or m.group("fig") is not None:
            continue
        new = span[:digit] + str((int(span[digit]) + 3) % 10) + span[digit + 1:]
        out.append(text[pos : m.start()] + new)
        pos, done = m.end(), done + 1
    assert done == k, "the document has too few formulas with digits"
    return "".join(out) + text[pos:]


def test_symbol_rule_scales_with_length_on_real_documents(shared_data):
    from corpus.dedup.verify import symbols_allowed, token_diff

    assert symbols_allowed(CFG.symbol_exact_tokens, CFG) == 0 < symbols_allowed(CFG.symbol_exact_tokens + 400, CFG)
    assert symbols_allowed(2000, CFG) == pytest.approx(2 * symbols_allowed(1000 + CFG.symbol_exact_tokens / 2, CFG))
    previous = DedupConfig(symbol_change_rate=0.002, symbol_exact_tokens=0)
    # long real documents (LaTeX books) with two numbers changed inside formulas: still the same document
    long_docs = []
    with open(shared_data / "seed" / "math_text.jsonl", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"][:6000]
            f = doc_features(text, 3)
            if 600 <= len(f.tokens) <= 900 and sum(text.count(c) for c in "0123456789") >= 20:
                try:
                    long_docs.append((text, _change_math_digits(text, 2)))
                except AssertionError:
                    continue
            if len(long_docs) == 5:
                break
    assert len(long_docs) == 5
    for text, edited in long_docs:
        fa, fb = doc_features(text, 3), doc_features(edited, 3)
        assert token_diff(fa.tokens, fb.tokens).substitutions == 2
        assert dup(text, edited)[0]
        assert not dup(text, edited, previous)[0]  # n/500 allowed fewer than 2 below 1,000 tokens
    # short real problems (GSM8K train) with one number changed: distinct problems, never merged
    with open(shared_data / "evalsets" / "gsm8k" / "train.jsonl", encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for _, line in zip(range(200), fh, strict=False)]
    changed = 0
    for q in questions:
        i = next((j for j, c in enumerate(q) if c.isdigit()), None)
        if i is None:
            continue
        other = q[:i] + str((int(q[i]) + 1) % 10) + q[i + 1:]
        assert not dup(q, other)[0], q
        changed += 1
    assert changed > 150


def test_dup_weighted_copies_follow_the_counts_within_the_cap():
    from corpus.mix import dup_weighted_copies

    rng = np.random.default_rng(0)
    tokens = rng.integers(50, 500, 2000)
    dup = np.where(np.arange(2000) < 100, 5.0, 1.0)
    rnd = rng.integers(0, 2**63, 2000, dtype=np.uint64) * np.uint64(2)
    copies = dup_weighted_copies(tokens, dup, rnd, float(tokens.sum()), max_epochs=3)
    assert copies.max() == 3 and (copies[:100] == 3).all()  # 5x the share, capped at 3 epochs
    assert abs(int((copies * tokens).sum()) - tokens.sum()) < 0.02 * tokens.sum()
    assert copies[:100].mean() > 3 * copies[100:].mean()


def test_survivors_carry_dup_count_sources_and_domains_into_the_mix(shared_data, tmp_path):
    from corpus.tokens import count_tokens
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    base = seed_base(shared_data, n=3)
    rows = [{"id": i, "text": t, "source": "web", "url": f"https://site{k}.org/p", "domain": f"site{k}.org"}
            for k, (i, t) in enumerate(base)]
    copies = [{"id": f"{base[0][0]}~{k}", "text": base[0][1] + f"\n\nMirrored by mirror{k}.net",
               "url": f"https://mirror{k}.net/x", "domain": f"mirror{k}.net"} for k in range(3)]
    copies.append({**rows[1], "id": f"{base[1][0]}~copy", "domain": "copy.org", "url": "https://copy.org/y"})
    (tmp_path / "web.jsonl").write_text("\n".join(json.dumps(r) for r in rows + copies[3:]) + "\n")
    (tmp_path / "books.jsonl").write_text("\n".join(json.dumps(r) for r in copies[:3]) + "\n")
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({
        "name": "t", "output": "out", "executor": {"kind": "local", "tasks": 2, "workers": 1},
        "inputs": [{"name": "web", "source": "web", "paths": ["web.jsonl"]},
                   {"name": "books", "source": "book", "paths": ["books.jsonl"]}],
        "stages": [{"stage": "extract"}, {"stage": "dedup", "priority": ["length"]},
                   {"stage": "mix", "seed": 0, "total_tokens": sum(count_tokens([t for _, t in base])),
                    "fill_shortfall": True,
                    "sources": {"all": {"weight": 1, "max_epochs": 2, "dup_count_power": 1}}}]}))
    result = run_manifest(load_manifest(m), progress=lambda s: None)
    mixed = read_shards(result.corpus_dir).to_pylist()
    by_id: dict[str, list[dict]] = {}
    for r in mixed:
        by_id.setdefault(r["id"].split("#")[0], []).append(json.loads(r["metadata"]))
    kept0 = [k for k in by_id if k.startswith(base[0][0])]
    assert len(kept0) == 1  # the 4 copies of base[0] became one survivor ...
    meta0 = by_id[kept0[0]][0]
    assert meta0["dup_count"] == 4 and set(meta0["dup_sources"]) == {"web", "book"}
    assert set(meta0["dup_domains"]) == {"site0.org", "mirror0.net", "mirror1.net", "mirror2.net"}
    assert by_id[base[2][0]][0]["dup_count"] == 1 and by_id[base[2][0]][0]["dup_domains"] == ["site2.org"]
    kept1 = next(k for k in by_id if k.startswith(base[1][0]))
    assert by_id[kept1][0]["dup_count"] == 2
    # ... which the mix (one corpus' worth of tokens, weighted by dup_count) repeats up to its 2-epoch cap,
    # while the singletons give up their share: at most one copy each, some none
    assert len(by_id[kept0[0]]) == 2
    singles = [len(by_id.get(i, [])) for i, _ in base[2:]]
    assert max(singles) == 1 and min(singles) == 0


def _real_texts(shared_data: Path) -> list[str]:
    texts = []
    for name in ("math_text", "general_text", "math_code", "math_text_zh"):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"][:3000] for line in list(fh)[:20]]
    edge = ["", "x", "a b", "Solve $x^2$ for \\(y\\) [asy]draw((0,0));[/asy] ok", "\\[asy]x[/asy]", "中文字符 测试"]
    return texts + edge


def test_signatures_are_byte_identical_to_saved_indexes(shared_data):
    """Exact keys, shingles, packed tokens and band keys of real documents hash to the digest the per-document
    implementation (commit f6e24dd) gave: a change here invalidates every saved index."""
    import xxhash

    feats = [doc_features(t, CFG.shingle_size) for t in _real_texts(shared_data)]
    h = xxhash.xxh64()
    for f in feats:
        h.update(repr(f.exact).encode())
        h.update(f.shingles.tobytes())
        h.update(b"|")
        h.update(f.tokens.tobytes())
        h.update(b"#")
    h.update(band_keys(signatures([f.shingles for f in feats], CFG), CFG).tobytes())
    assert h.hexdigest() == "832b234d0484b7d7"


def test_batch_features_do_not_depend_on_the_batch(shared_data):
    from corpus.dedup.minhash import batch_features

    texts = _real_texts(shared_data)
    for n in (1, 3, 5):
        alone = [doc_features(t, n) for t in texts]
        together = batch_features(texts, n)
        for a, b in zip(alone, together, strict=True):
            assert a.exact == b.exact
            assert a.shingles.dtype == b.shingles.dtype == np.uint32 and np.array_equal(a.shingles, b.shingles)
            assert a.tokens.dtype == b.tokens.dtype == np.uint32 and np.array_equal(a.tokens, b.tokens)
        assert sum(len(f.shingles) == 0 for f in together) == 1  # only the empty text has no shingle
    assert batch_features([], 3) == []


def test_report_counts_missing_is_nothing_unreadable_is_an_error(tmp_path):
    from corpus.io import InputError
    from pipelines.stages.dedup import _sum_json

    assert _sum_json(str(tmp_path / "missing")) == {}
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "00000.json").write_text('{"kept": 2, "hist": [1, 2]}')
    (tmp_path / "c" / "00001.json").write_text('{"kept": 3, "hist": [0, 5]}')
    assert _sum_json(str(tmp_path / "c")) == {"kept": 5, "hist": [1, 7]}
    (tmp_path / "c" / "00002.json").write_text('{"kept": 3,')  # a task's count file cut short
    with pytest.raises(InputError, match="00002.json"):
        _sum_json(str(tmp_path / "c"))

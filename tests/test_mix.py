"""The mixer: token arithmetic, deterministic plan and shards, release manifest, readers, resume, CLI, stage."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.io import write_parquet
from corpus.mix import (
    MixConfig,
    MixError,
    allocate,
    assign_shards,
    build_plan,
    prepare,
    run_mix,
    scatter,
    select_copies,
    write_shard,
)
from corpus.schema import normalize_row, rows_to_table
from corpus.tokens import count_tokens


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, shared_data):
    """Two Parquet files from the real seed text: web en/zh and code, with real token counts."""
    rows = []
    for name, source, lang, n in (("math_text", "web", "en", 300), ("math_text_zh", "web", "zh", 250),
                                  ("math_code", "code", "en", 150)):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            for _, line in zip(range(n), fh, strict=False):
                rec = json.loads(line)
                rows.append(normalize_row({**rec, "lang": lang, "math_score": (len(rec["text"]) % 97) / 97}, source))
    counts = count_tokens([r["text"] for r in rows])
    for r, c in zip(rows, counts, strict=True):
        r["n_tokens"] = c
    table = rows_to_table(rows)
    folder = tmp_path_factory.mktemp("mixin")
    write_parquet(table.slice(0, 400), str(folder / "a.parquet"))
    write_parquet(table.slice(400), str(folder / "b.parquet"))
    return folder


def _cfg(**kw) -> MixConfig:
    base = {
        "sources": {
            "web_en": {"match": {"source": "web", "lang": "en"}, "weight": 0.5, "downsample": "score"},
            "web_zh": {"match": {"source": "web", "lang": "zh"}, "weight": 0.3, "max_epochs": 3},
            "code": {"match": {"source": "code"}, "weight": 0.2, "max_epochs": 2},
        },
        "shard_bytes": 400_000, "seed": 11,
    }
    return MixConfig.model_validate({**base, **kw})


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ---- arithmetic --------------------------------------------------------------------------------------------


def test_allocate_weights_largest_mix_within_caps():
    cfg = MixConfig.model_validate({"sources": {"a": {"weight": 3}, "b": {"weight": 1, "max_epochs": 2}}})
    t = allocate({"a": 900, "b": 100}, cfg)
    # b can give at most 200 tokens (2 epochs) -> total 800, a gets 600 (< its 900)
    assert t == pytest.approx({"a": 600, "b": 200})


def test_allocate_total_caps_and_fills_shortfall():
    src = {"a": {"weight": 1}, "b": {"weight": 1, "max_epochs": 1.5}}
    capped = allocate({"a": 1000, "b": 100}, MixConfig.model_validate({"sources": src, "total_tokens": 1000}))
    assert capped == pytest.approx({"a": 500, "b": 150})
    filled = allocate({"a": 1000, "b": 100},
                      MixConfig.model_validate({"sources": src, "total_tokens": 1000, "fill_shortfall": True}))
    assert filled == pytest.approx({"a": 850, "b": 150})


def test_allocate_token_targets_respect_cap():
    cfg = MixConfig.model_validate({"sources": {"a": {"tokens": 5000, "max_epochs": 2}, "b": {"tokens": 50}}})
    assert allocate({"a": 1000, "b": 100}, cfg) == pytest.approx({"a": 2000, "b": 50})


def test_select_copies_full_passes_plus_partial():
    tokens = np.array([10, 20, 30, 40])
    # two full passes, then the remaining 60 tokens from the priority order (docs 3, 2, ...): 40 + 30 is nearest
    assert select_copies(tokens, np.array([3, 2, 1, 0]), 100 * 2 + 60).tolist() == [2, 2, 3, 3]
    assert select_copies(tokens, np.array([3, 2, 1, 0]), 100 * 2 + 45).tolist() == [2, 2, 2, 3]  # 40 beats 70
    assert select_copies(tokens, np.arange(4), 0).sum() == 0


def test_assign_shards_by_rows_and_bytes():
    assert assign_shards(np.ones(10), 4, None).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert assign_shards(np.full(6, 10.0), None, 25).tolist() == [0, 0, 0, 1, 1, 2]
    assert assign_shards(np.full(6, 10.0), 2, 35).tolist() == [0, 0, 1, 1, 2, 2]


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="exactly one of 'weight' or 'tokens'"):
        MixConfig.model_validate({"sources": {"a": {"weight": 1, "tokens": 3}}})
    with pytest.raises(ValueError, match="all use 'weight' or all use 'tokens'"):
        MixConfig.model_validate({"sources": {"a": {"weight": 1}, "b": {"tokens": 3}}})


def test_source_selecting_nothing_names_it(inputs):
    cfg = MixConfig.model_validate({"sources": {"books": {"match": {"source": "book"}, "weight": 1}}})
    with pytest.raises(MixError, match="sources.books: selects no documents"):
        build_plan(cfg, str(inputs))


def test_overlapping_sources_are_rejected(inputs):
    cfg = MixConfig.model_validate({"sources": {"web": {"match": {"source": "web"}, "weight": 1},
                                                "zh": {"match": {"lang": "zh"}, "weight": 1}}})
    with pytest.raises(MixError, match="sources.web and sources.zh select the same"):
        build_plan(cfg, str(inputs))


def test_upsampled_and_plain_files_in_one_shard(inputs, tmp_path):
    """A shard gathering one file's repeated copies (renamed ids) and another file's plain rows still writes."""
    rows = pq.read_table(inputs / "a.parquet").slice(0, 300)  # English web only: no copies
    code = pq.read_table(inputs / "b.parquet").slice(150)  # code: upsampled below
    write_parquet(rows, str(tmp_path / "a.parquet"))
    write_parquet(code, str(tmp_path / "b.parquet"))
    cfg = MixConfig.model_validate({"sources": {
        "web_en": {"match": {"source": "web"}, "weight": 0.3},
        "code": {"match": {"source": "code"}, "weight": 0.7, "max_epochs": 4}}, "shard_bytes": 10**9, "seed": 3})
    m = run_mix(cfg, str(tmp_path / "out"), default_inputs=str(tmp_path))
    assert len(m["shards"]) == 1 and m["sources"]["code"]["epochs"] > 1
    ids = pq.read_table(tmp_path / "out" / m["shards"][0]["file"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == m["documents"]


# ---- the written mix ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "out"
    manifest = run_mix(_cfg(), str(out), default_inputs=str(inputs))
    return out, manifest


def test_shares_epochs_and_manifest(mixed, inputs):
    out, m = mixed
    for name, want in (("web_en", 0.5), ("web_zh", 0.3), ("code", 0.2)):
        s = m["sources"][name]
        assert s["requested_share"] == pytest.approx(want)
        assert abs(s["realized_share"] - want) < 0.02
        assert s["epochs"] <= m["config"]["sources"][name]["max_epochs"] + 1e-9
    # no total_tokens: the largest mix keeping the shares, so one source sits at its upsampling cap
    slack = [m["config"]["sources"][n]["max_epochs"] - s["epochs"] for n, s in m["sources"].items()]
    assert min(slack) == pytest.approx(0, abs=0.02)
    assert m["sources"]["web_zh"]["documents"] > m["sources"]["web_zh"]["unique_documents"]  # upsampled
    files = sorted(p.name for p in out.glob("*.parquet"))
    assert files == [s["file"] for s in m["shards"]] and len(files) > 1
    for s in m["shards"]:
        assert _sha(out / s["file"]) == s["sha256"]
        assert os.path.getsize(out / s["file"]) == s["bytes"]
        assert pq.ParquetFile(out / s["file"]).metadata.num_rows == s["rows"]
    for i in m["inputs"]:
        assert _sha(i["path"]) == i["sha256"]
    assert sum(s["rows"] for s in m["shards"]) == m["documents"]
    assert m["version"] and m["config"]["seed"] == 11 and m["plan_sha256"]


def test_shards_are_shuffled_across_sources_with_unique_ids(mixed):
    import polars as pl

    out, m = mixed
    df = pl.read_parquet(sorted(out.glob("*.parquet")))
    assert df["id"].n_unique() == df.height == m["documents"]
    assert df.filter(pl.col("id").str.contains("#")).height == m["documents"] - sum(
        s["unique_documents"] for s in m["sources"].values())
    first = df.head(60)
    assert first["source"].n_unique() == 2 and first["lang"].n_unique() == 2
    assert df["n_tokens"].null_count() == 0 and df["n_tokens"].sum() == m["tokens"]


def test_shards_load_with_pyarrow_polars_duckdb_datasets(mixed, tmp_path):
    import duckdb
    import polars as pl

    out, m = mixed
    files = sorted(str(p) for p in out.glob("*.parquet"))
    assert pq.ParquetDataset(files).read().num_rows == m["documents"]
    assert pl.scan_parquet(files).select(pl.len()).collect().item() == m["documents"]
    assert duckdb.sql(f"select count(*) from read_parquet({files!r})").fetchall()[0][0] == m["documents"]
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == m["documents"] and "text" in ds.column_names


def test_same_seed_byte_identical_other_seed_differs(mixed, inputs, tmp_path):
    out, m = mixed
    again = run_mix(_cfg(), str(tmp_path / "again"), default_inputs=str(inputs))
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in m["shards"]]
    assert _sha(tmp_path / "again" / "manifest.json") == _sha(out / "manifest.json")
    other = run_mix(_cfg(seed=12), str(tmp_path / "other"), default_inputs=str(inputs))
    assert [s["sha256"] for s in other["shards"]] != [s["sha256"] for s in m["shards"]]


def test_resume_after_a_kill_gives_identical_shards(mixed, inputs, tmp_path):
    out, m = mixed
    dst, work = tmp_path / "resumed", tmp_path / "resumed" / ".mix-work"
    cfg = _cfg()
    plan = prepare(cfg, str(work), str(inputs))
    scatter(plan, 0, str(work))  # "killed" after the first input file and the first shard
    scatter(plan, 1, str(work))
    write_shard(plan, 0, str(work), str(dst), cfg)
    (dst / f"{m['shards'][1]['file']}.tmp-123-deadbeef").write_bytes(b"partial")  # a dead writer's temp file
    resumed = run_mix(cfg, str(dst), default_inputs=str(inputs))
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in m["shards"]]


def test_stale_shards_of_an_earlier_mix_are_removed(inputs, tmp_path):
    run_mix(_cfg(shard_bytes=150_000), str(tmp_path / "o"), default_inputs=str(inputs))
    m = run_mix(_cfg(shard_bytes=10**9), str(tmp_path / "o"), default_inputs=str(inputs))
    assert sorted(p.name for p in (tmp_path / "o").glob("*.parquet")) == [s["file"] for s in m["shards"]]
    assert len(m["shards"]) == 1


def test_cli_standalone_yaml(inputs, tmp_path):
    from pipelines.cli import main

    cfg = tmp_path / "mix.yaml"
    cfg.write_text(f"output_dir: out\ninput_paths: [{inputs}]\nseed: 3\nshard_rows: 200\n"
                   "sources:\n  web: {match: {source: web}, weight: 2}\n"
                   "  code: {input_paths: [" + str(inputs / "b.parquet") + "], match: {source: code}, weight: 1}\n")
    with pytest.raises(SystemExit) as e:
        main(["mix", str(cfg)])
    assert e.value.code == 0
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert all(s["rows"] <= 200 for s in m["shards"])
    assert m["sources"]["web"]["realized_share"] == pytest.approx(2 / 3, abs=0.02)


def test_cli_bad_config_one_line_error(tmp_path, capsys):
    from pipelines.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("output_dir: out\nsources:\n  web: {weight: 1, bogus: 2}\n")
    with pytest.raises(SystemExit) as e:
        main(["mix", str(cfg)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err and "sources.web.bogus: unknown key" in err


def _stage_manifest(tmp_path, shared_data):
    from pipelines.manifest import parse_manifest

    data = {
        "name": "mix-stage", "output": str(tmp_path / "run"), "executor": {"kind": "ray", "tasks": 2},
        "inputs": [{"name": "zh", "source": "web", "paths": [str(shared_data / "seed" / "math_text_zh.jsonl")]},
                   {"name": "code", "source": "code", "paths": [str(shared_data / "seed" / "math_code.jsonl")]}],
        "stages": [{"stage": "extract"}, {"stage": "tokens"},
                   {"stage": "mix", "seed": 5, "shard_rows": 300, "sources": {
                       "web": {"match": {"source": "web"}, "weight": 0.8},
                       "code": {"match": {"source": "code"}, "weight": 0.2}}}],
    }
    return parse_manifest(data, str(tmp_path / "m.yaml"))


@pytest.mark.ray
def test_mix_stage_on_ray(tmp_path, shared_data, ray_cluster):
    from pipelines.runner import run_manifest

    run_manifest(_stage_manifest(tmp_path, shared_data), progress=lambda s: None)
    corpus = tmp_path / "run" / "corpus"
    m = json.loads((corpus / "manifest.json").read_text())
    assert m["sources"]["web"]["realized_share"] == pytest.approx(0.8, abs=0.02)
    assert {p.name: _sha(p) for p in corpus.glob("*.parquet")} == {s["file"]: s["sha256"] for s in m["shards"]}
    assert all(s["rows"] <= 300 for s in m["shards"])
    funnel = json.loads((corpus / "funnel.json").read_text())
    assert [s["stage"] for s in funnel["stages"]] == ["extract", "tokens", "mix"]
    assert funnel["stages"][-1]["documents_out"] == m["documents"]
    assert funnel["stages"][-1]["tokens_out"] == m["tokens"]


@pytest.mark.slow
@pytest.mark.ray
def test_mix_stage_rerun_after_lost_corpus_is_byte_identical(tmp_path, shared_data, ray_cluster):
    from pipelines.runner import run_manifest

    manifest = _stage_manifest(tmp_path, shared_data)
    run_manifest(manifest, progress=lambda s: None)
    corpus = tmp_path / "run" / "corpus"
    shas = {p.name: _sha(p) for p in corpus.glob("*.parquet")}
    for p in corpus.glob("*.parquet"):
        p.unlink()
    run_manifest(manifest, progress=lambda s: None)
    assert {p.name: _sha(p) for p in corpus.glob("*.parquet")} == shas

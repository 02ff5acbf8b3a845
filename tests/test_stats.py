"""corpus-stats (groups, quantiles, histogram, domains, duplicates, schema check, outputs) and the run funnel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from corpus.io import write_json, write_parquet
from corpus.schema import SchemaError, normalize_row, rows_to_table
from corpus.stats import HLL_P, QUANTILES, _hll_registers, _mix64, corpus_stats, plot, to_markdown


@pytest.fixture(scope="module")
def shards(tmp_path_factory, shared_data):
    """Real seed text in two shards, with known tokens, scores, domains and three exact duplicates."""
    rows = []
    for name, source, lang in (("math_text", "web", "en"), ("general_text_zh", "book", "zh"),
                               ("math_code", "code", "en")):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            for i, line in zip(range(120), fh, strict=False):
                rec = json.loads(line)
                rows.append(normalize_row({
                    **rec, "id": f"{name}-{i}", "lang": lang, "n_tokens": len(rec["text"]) // 3,
                    "math_score": (i % 10) / 10 + 0.05, "domain": f"d{i % 7}.org" if source == "web" else None,
                }, source))
    rows += [dict(r, id=r["id"] + "-dup") for r in rows[:3]]
    table = rows_to_table(rows)
    folder = tmp_path_factory.mktemp("stats")
    write_parquet(table.slice(0, 200), str(folder / "a.parquet"))
    write_parquet(table.slice(200), str(folder / "sub" / "b.parquet"))
    return folder, pl.from_arrow(table)


def test_groups_totals_and_shares(shards):
    folder, df = shards
    r = corpus_stats(str(folder), by="source")
    assert r["files"] == 2 and r["total"]["documents"] == df.height
    assert r["total"]["tokens"] == df["n_tokens"].sum()
    assert r["total"]["chars"] == df["text"].str.len_chars().sum()
    assert r["total"]["bytes"] == df["text"].str.len_bytes().sum()
    got = {g["source"]: g for g in r["groups"]}
    want = df.group_by("source").agg(pl.len(), pl.col("n_tokens").sum())
    for row in want.iter_rows(named=True):
        assert got[row["source"]]["documents"] == row["len"]
        assert got[row["source"]]["tokens"] == row["n_tokens"]
    assert sum(g["share_tokens"] for g in r["groups"]) == pytest.approx(1, abs=1e-4)


def test_group_by_several_columns(shards):
    folder, df = shards
    r = corpus_stats(str(folder), by=["source", "lang"])
    assert {(g["source"], g["lang"]) for g in r["groups"]} == {("web", "en"), ("book", "zh"), ("code", "en")}


def test_quantiles_histogram_domains_duplicates(shards):
    folder, df = shards
    r = corpus_stats(str(folder), bins=10, top=3)
    chars = df["text"].str.len_chars().to_numpy()
    q = np.quantile(chars, QUANTILES, method="inverted_cdf")
    assert [r["lengths"]["chars"][f"p{round(x * 100):02d}"] for x in QUANTILES] == [int(v) for v in q]
    assert r["lengths"]["tokens"]["max"] == df["n_tokens"].max()
    counts, _ = np.histogram(df["math_score"].to_numpy(), bins=np.linspace(0, 1, 11))
    assert r["math_score"]["counts"] == counts.tolist() and r["math_score"]["missing"] == 0
    top = df.filter(pl.col("domain").is_not_null())["domain"].value_counts(sort=True)
    assert len(r["top_domains"]) == 3 and r["top_domains"][0]["documents"] == top["count"][0]
    assert r["duplicates"]["distinct_texts"] == df["text"].n_unique() == df.height - 3
    assert r["duplicates"]["exact_duplicate_share"] == pytest.approx(3 / df.height, abs=1e-6)


HLL_STD_ERROR = 1.04 / (1 << HLL_P) ** 0.5  # HyperLogLog's documented relative standard error: 0.81 % at p=14


@pytest.fixture(scope="module")
def many_texts(tmp_path_factory):
    """260k distinct short texts (+ 40k exact repeats of some of them) in 3 shards: far above the ~5 x 2^14 distinct
    values where HyperLogLog++ stops using linear counting / bias tables, so the raw estimator is what answers."""
    n, repeats = 260_000, 40_000
    texts = pl.Series("text", [f"doc {i}: x^{i % 97} + {i * 7919 % 100_003} = y_{i // 13}" for i in range(n)])
    texts = pl.concat([texts, texts.gather(np.arange(0, 4 * repeats, 4))])
    df = pl.DataFrame({"id": [f"t{i}" for i in range(len(texts))], "text": texts}).sample(fraction=1.0, seed=1,
                                                                                        shuffle=True)
    folder = tmp_path_factory.mktemp("hll")
    for k, part in enumerate(df.iter_slices(100_000)):
        part.write_parquet(folder / f"{k}.parquet")
    return folder, df


def test_hyperloglog_within_documented_error_at_scale(many_texts):
    folder, df = many_texts
    exact = corpus_stats(str(folder))
    approx = corpus_stats(str(folder), exact_limit=0, chunk_rows=120_000)  # 3 chunks: registers merged by max
    truth = df["text"].n_unique()
    assert truth == 260_000 and exact["duplicates"]["distinct_texts"] == truth
    assert "HyperLogLog" in approx["duplicates"]["method"]
    got = approx["duplicates"]["distinct_texts"]
    assert abs(got - truth) / truth <= 3 * HLL_STD_ERROR  # 3 standard errors: 2.4 % (measured: -0.65 %)


def test_hll_registers_match_datasketch_update():
    """Our vectorized register fill equals datasketch's own HyperLogLog++ ``update`` fed the same 64-bit hashes."""
    from datasketch import HyperLogLogPlusPlus

    rng = np.random.default_rng(7)
    raw = rng.integers(0, 2**63, size=30_000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    raw[:50] = [1 << k for k in range(50)]  # long runs of zero bits: ranks near the maximum
    mixed = _mix64(raw)
    ref = HyperLogLogPlusPlus(p=HLL_P, hashfunc=lambda x: x)
    for h in mixed.tolist():
        ref.update(h)
    assert np.array_equal(_hll_registers(raw), ref.reg)
    assert HyperLogLogPlusPlus(p=HLL_P, reg=_hll_registers(raw)).count() == ref.count()


def test_schema_errors_name_the_file_and_column(tmp_path, shards):
    folder, _ = shards
    pl.DataFrame({"id": ["a"], "body": ["x"]}).write_parquet(tmp_path / "nohead.parquet")
    with pytest.raises(SchemaError, match=r"nohead.parquet: not a mathcorpus shard: missing column\(s\) text"):
        corpus_stats(str(tmp_path / "nohead.parquet"))
    pl.DataFrame({"id": ["a"], "text": ["x"], "n_tokens": ["3"]}).write_parquet(tmp_path / "strtok.parquet")
    with pytest.raises(SchemaError, match="strtok.parquet: column 'n_tokens' is String, expected a number"):
        corpus_stats(str(tmp_path / "strtok.parquet"))
    with pytest.raises(SchemaError, match="--by 'colour': no such column"):
        corpus_stats(str(folder), by="colour")


def test_markdown_and_plots(shards, tmp_path):
    folder, df = shards
    r = corpus_stats(str(folder))
    md = to_markdown(r)
    assert f"{df.height:,} documents" in md and "| source |" in md and "## Length quantiles" in md
    for path in plot(r, str(tmp_path / "plots")):
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_json_and_error_exit(shards, tmp_path, capsys):
    from pipelines.cli.stats import main

    folder, df = shards
    with pytest.raises(SystemExit) as e:
        import sys

        sys.argv = ["corpus-stats", str(folder / "*.parquet"), str(folder / "sub"), "--json", "--by", "lang"]
        main()
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"]["documents"] == df.height and out["by"] == ["lang"]
    with pytest.raises(SystemExit) as e:
        sys.argv = ["corpus-stats", str(tmp_path / "missing")]
        main()
    assert e.value.code == 2
    assert "missing" in capsys.readouterr().err


def test_funnel_counts_removals_by_reason(tmp_path, shards):
    """A run folder laid out by the runner: the funnel reads kept/removed shards and run.json."""
    from pipelines.funnel import write_funnel

    _, df = shards
    table = df.to_arrow()
    run = tmp_path / "run"
    write_parquet(table, str(run / "stages/00_extract/kept/00000.parquet"))
    kept, removed = table.slice(0, 300), table.slice(300)
    write_parquet(kept, str(run / "stages/01_filter/kept/00000.parquet"))
    reasons = ["short"] * 40 + ["boilerplate"] * (removed.num_rows - 40)
    removed = removed.append_column("reason", pa.array(reasons))
    write_parquet(removed, str(run / "stages/01_filter/removed/00000.parquet"))
    write_parquet(kept, str(run / "corpus/00000.parquet"))
    write_json({"name": "t", "corpus_dir": str(run / "corpus"), "stages": [
        {"index": 0, "stage": "extract", "dir": str(run / "stages/00_extract"), "seconds": 1.0},
        {"index": 1, "stage": "filter", "dir": str(run / "stages/01_filter"), "seconds": 2.0},
    ]}, str(run / "run.json"))
    f = write_funnel(str(run))
    s = f["stages"][1]
    assert (s["documents_in"], s["documents_out"]) == (table.num_rows, 300)
    assert s["tokens_in"] == sum(table.column("n_tokens").to_pylist())
    assert {r["reason"]: r["documents"] for r in s["removed"]} == {"boilerplate": removed.num_rows - 40, "short": 40}
    assert sum(r["tokens"] for r in s["removed"]) == s["tokens_in"] - s["tokens_out"]
    assert json.loads((run / "corpus/funnel.json").read_text())["corpus_documents"] == 300
    assert (run / "corpus/funnel.png").read_bytes()[:4] == b"\x89PNG"

"""Corpus statistics over Parquet shards, computed with polars lazy scans (only the needed columns).

One pass over the files, in chunks of files (bounded memory): each chunk is reduced to one small row per
document (group keys, chars, bytes, tokens, score, domain, a 64-bit text hash; never the text itself) and
folded into mergeable partials: per-group sums, per-domain counts, a ``math_score`` histogram, length arrays
for exact quantiles, and the set of text hashes for the exact-duplicate share. Above ``exact_limit`` documents
the hashes go into a datasketch HyperLogLog++ sketch instead (its registers are filled vectorized).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from corpus.io import PARQUET_EXT, expand_paths, open_file
from corpus.schema import DOCUMENT_SCHEMA, SchemaError

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
EXACT_LIMIT = 200_000_000  # distinct text hashes kept exactly up to this many documents (8 bytes each)
HLL_P = 14


def _kind(dtype: pl.DataType) -> str:
    if dtype in (pl.String, pl.Categorical, pl.Enum, pl.Binary) or isinstance(dtype, pl.Categorical):
        return "string"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Null:
        return "null"
    return str(dtype)


_EXPECTED = {f.name: ("string" if "string" in str(f.type) else "number") for f in DOCUMENT_SCHEMA}


def check_schema(files: Sequence[str]) -> dict[str, int]:
    """Check every file against the document schema; returns rows per file.

    Raises :class:`SchemaError` naming the file and the column: missing ``id``/``text``, or a schema column of
    the wrong kind (e.g. ``n_tokens`` stored as text).
    """
    import pyarrow.parquet as pq

    rows = {}
    for f in files:
        try:
            with open_file(f, "rb") as fh:
                meta = pq.ParquetFile(fh)
                schema = pl.from_arrow(meta.schema_arrow.empty_table()).schema
                rows[f] = meta.metadata.num_rows
        except Exception as e:
            raise SchemaError(f"{f}: not a readable Parquet file: {e}") from None
        missing = [c for c in ("id", "text") if c not in schema]
        if missing:
            raise SchemaError(f"{f}: not a mathcorpus shard: missing column(s) {', '.join(missing)}")
        for name, dtype in schema.items():
            want = _EXPECTED.get(name)
            got = _kind(dtype)
            if want and got not in (want, "null"):
                raise SchemaError(f"{f}: column {name!r} is {dtype}, expected a {want} column")
    return rows


def scan_shards(paths: str | Sequence[str]) -> tuple[pl.LazyFrame, list[str]]:
    """A lazy frame over the Parquet shards matched by ``paths`` (files, folders, globs, URLs), schema-checked."""
    files = expand_paths(paths, exts=PARQUET_EXT)
    check_schema(files)
    return pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore"), files


def _chunks(rows: dict[str, int], limit: int) -> list[list[str]]:
    out: list[list[str]] = [[]]
    n = 0
    for f, r in rows.items():
        if out[-1] and n + r > limit:
            out.append([])
            n = 0
        out[-1].append(f)
        n += r
    return [c for c in out if c]


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over all output bits (HLL needs uniform low bits)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _hll_registers(hashes: np.ndarray, p: int = HLL_P) -> np.ndarray:
    """HyperLogLog++ registers of 64-bit hashes (datasketch's layout: index = low p bits, rank of the rest)."""
    reg = np.zeros(1 << p, dtype=np.int8)
    if len(hashes) == 0:
        return reg
    hashes = _mix64(hashes)
    idx = (hashes & np.uint64((1 << p) - 1)).astype(np.int64)
    rest = hashes >> np.uint64(p)
    bitlen = np.where(rest > 0, np.frexp(rest.astype(np.float64))[1], 0)
    rank = (64 - p - bitlen + 1).astype(np.int8)
    np.maximum.at(reg, idx, rank)
    return reg


def _column_or_null(have: set[str], name: str, dtype: pl.DataType) -> pl.Expr:
    """``name`` cast to ``dtype``, or nulls when the shards lack that (optional) schema column."""
    return pl.col(name).cast(dtype) if name in have else pl.lit(None, dtype=dtype)


def corpus_stats(paths: str | Sequence[str], by: str | Sequence[str] = "source", *, top: int = 20,
                 bins: int = 20, exact_limit: int = EXACT_LIMIT, chunk_rows: int = 5_000_000) -> dict[str, Any]:
    """Documents, tokens, characters and bytes in total and per ``by`` group; length quantiles; math_score
    histogram; top domains; exact-duplicate share. Raises :class:`SchemaError` for non-conforming files."""
    by = [by] if isinstance(by, str) else list(by)
    files = expand_paths(paths, exts=PARQUET_EXT)
    rows = check_schema(files)
    names = set()
    for f in files[:1] + files[-1:]:
        names |= set(pl.read_parquet_schema(f))
    bad = [b for b in by if b not in names and b not in _EXPECTED]
    if bad:
        raise SchemaError(f"--by {bad[0]!r}: no such column (columns: {', '.join(sorted(names))})")
    total_rows = sum(rows.values())
    exact = total_rows <= exact_limit
    groups, domains, chars_l, tokens_l, hashes = [], [], [], [], []
    reg = np.zeros(1 << HLL_P, dtype=np.int8)
    edges = np.linspace(0.0, 1.0, bins + 1)
    score_counts = np.zeros(bins, dtype=np.int64)
    score_missing = 0
    for chunk in _chunks(rows, chunk_rows):
        lf = pl.scan_parquet(chunk, missing_columns="insert", extra_columns="ignore")
        have = set(lf.collect_schema().names())
        col = partial(_column_or_null, have)
        small = lf.select(
            *[col(b, pl.String).fill_null("(null)").alias(b) for b in dict.fromkeys(by)],
            pl.col("text").str.len_chars().alias("chars"), pl.col("text").str.len_bytes().alias("bytes"),
            pl.col("text").hash(seed=0).alias("h"), col("n_tokens", pl.Int64).alias("tokens"),
            col("math_score", pl.Float64).alias("score"), col("domain", pl.String).alias("domain"),
        ).collect(engine="streaming")
        groups.append(small.group_by(by).agg(
            pl.len().alias("documents"), pl.col("tokens").sum(), pl.col("tokens").null_count().alias("tokens_missing"),
            pl.col("chars").sum(), pl.col("bytes").sum()))
        domains.append(small.filter(pl.col("domain").is_not_null()).group_by("domain").agg(
            pl.len().alias("documents"), pl.col("tokens").sum()))
        chars_l.append(small["chars"].to_numpy())
        tokens_l.append(small["tokens"].drop_nulls().to_numpy())
        s = small["score"]
        score_missing += s.null_count()
        score_counts += np.histogram(np.clip(s.drop_nulls().to_numpy(), 0, 1), bins=edges)[0]
        h = small["h"].to_numpy()
        if exact:
            hashes.append(np.unique(h))
        else:
            reg = np.maximum(reg, _hll_registers(h))
    return _assemble(files, by, top, groups, domains, chars_l, tokens_l, hashes, reg, exact, edges,
                     score_counts, score_missing)


def _quantiles(values: list[np.ndarray]) -> dict[str, Any] | None:
    arr = np.concatenate(values) if values else np.zeros(0)
    if len(arr) == 0:
        return None
    qs = np.quantile(arr, QUANTILES, method="inverted_cdf")
    out = {f"p{round(q * 100):02d}": int(v) for q, v in zip(QUANTILES, qs, strict=True)}
    return {"min": int(arr.min()), **out, "max": int(arr.max()), "mean": round(float(arr.mean()), 2)}


def _assemble(files, by, top, groups, domains, chars_l, tokens_l, hashes, reg, exact, edges, score_counts,
              score_missing) -> dict[str, Any]:
    per = (pl.concat(groups).group_by(by).agg(pl.col("documents", "tokens", "tokens_missing", "chars", "bytes").sum())
           .sort(["tokens", "documents", *by], descending=[True, True, *([False] * len(by))]))
    total = {k: int(per[k].sum()) for k in ("documents", "tokens", "tokens_missing", "chars", "bytes")}
    per = per.with_columns(
        (pl.col("documents") / max(1, total["documents"])).round(6).alias("share_documents"),
        (pl.col("tokens") / max(1, total["tokens"])).round(6).alias("share_tokens"),
    )
    dom = (pl.concat(domains).group_by("domain").agg(pl.col("documents", "tokens").sum())
           .sort(["documents", "domain"], descending=[True, False]).head(top)) if domains else None
    if exact:
        distinct = int(len(np.unique(np.concatenate(hashes)))) if hashes else 0
        method = "exact (64-bit text hash)"
    else:
        from datasketch import HyperLogLogPlusPlus

        distinct = int(round(HyperLogLogPlusPlus(p=HLL_P, reg=reg).count()))
        distinct = min(distinct, total["documents"])
        method = f"approximate (datasketch HyperLogLog++, p={HLL_P})"
    n = total["documents"]
    return {
        "files": len(files), "by": by, "total": total, "groups": per.to_dicts(),
        "lengths": {"chars": _quantiles(chars_l), "tokens": _quantiles(tokens_l)},
        "math_score": {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in score_counts],
                       "missing": int(score_missing)},
        "top_domains": dom.to_dicts() if dom is not None else [],
        "duplicates": {"distinct_texts": distinct, "exact_duplicate_share": round(1 - distinct / n, 6) if n else 0.0,
                       "method": method},
    }


def summarize(paths: str | Sequence[str], by: str = "source") -> dict[str, Any]:
    """Backwards-compatible name of :func:`corpus_stats`."""
    return corpus_stats(paths, by=by)


# ---- rendering -----------------------------------------------------------------------------------------


def to_markdown(result: dict[str, Any]) -> str:
    """The stats as Markdown tables (for release notes and audits)."""
    by = result["by"]
    t = result["total"]
    out = [f"# Corpus stats: {result['files']} file(s), {t['documents']:,} documents, {t['tokens']:,} tokens", ""]
    head = [*by, "documents", "tokens", "chars", "bytes", "share of tokens"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in result["groups"]:
        out.append("| " + " | ".join([*(str(g[b]) for b in by), f"{g['documents']:,}", f"{g['tokens']:,}",
                                      f"{g['chars']:,}", f"{g['bytes']:,}", f"{g['share_tokens']:.4f}"]) + " |")
    out.append("| " + " | ".join(["**total**", *([""] * (len(by) - 1)), f"{t['documents']:,}", f"{t['tokens']:,}",
                                  f"{t['chars']:,}", f"{t['bytes']:,}", "1"]) + " |")
    if t["tokens_missing"]:
        out.append(f"\n{t['tokens_missing']:,} documents have no n_tokens (run the `tokens` stage).")
    out += ["", "## Length quantiles", "", "| measure | min | p01 | p05 | p25 | p50 | p75 | p95 | p99 | max | mean |",
            "|" + "---|" * 11]
    for name, q in result["lengths"].items():
        if q:
            out.append(f"| {name} | " + " | ".join(str(q[k]) for k in ("min", "p01", "p05", "p25", "p50", "p75",
                                                                         "p95", "p99", "max", "mean")) + " |")
    ms = result["math_score"]
    out += ["", "## math_score histogram", "", "| bin | documents |", "|---|---|"]
    for lo, hi, c in zip(ms["edges"][:-1], ms["edges"][1:], ms["counts"], strict=True):
        out.append(f"| {lo:.2f}-{hi:.2f} | {c:,} |")
    out.append(f"| missing | {ms['missing']:,} |")
    if result["top_domains"]:
        out += ["", "## Top domains", "", "| domain | documents | tokens |", "|---|---|---|"]
        out += [f"| {d['domain']} | {d['documents']:,} | {d['tokens']:,} |" for d in result["top_domains"]]
    d = result["duplicates"]
    out += ["", f"Exact duplicates: {d['exact_duplicate_share']:.4%} of documents "
                f"({d['distinct_texts']:,} distinct texts; {d['method']})."]
    return "\n".join(out) + "\n"


def plot(result: dict[str, Any], out_dir: str) -> list[str]:
    """PNG charts: token share per group, length (chars) quantiles, math_score histogram."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    by = result["by"]
    labels = ["/".join(str(g[b]) for b in by) for g in result["groups"]][:30]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.5))
    ax.barh(labels[::-1], [g["share_tokens"] for g in result["groups"]][:30][::-1], color="#4477aa")
    ax.set_xlabel("share of tokens")
    ax.set_title(f"Token share by {'/'.join(by)}")
    written.append(_save(fig, f"{out_dir}/shares.png"))
    q = result["lengths"]["chars"]
    if q:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        keys = ["min", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "max"]
        ax.plot(keys, [max(1, q[k]) for k in keys], marker="o")
        ax.set_yscale("log")
        ax.set_ylabel("characters")
        ax.set_title("Document length quantiles")
        written.append(_save(fig, f"{out_dir}/lengths.png"))
    ms = result["math_score"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(ms["edges"][:-1], ms["counts"], width=np.diff(ms["edges"]), align="edge", color="#228833",
           edgecolor="white")
    ax.set_xlabel("math_score")
    ax.set_ylabel("documents")
    ax.set_title(f"math_score histogram ({ms['missing']:,} missing)")
    written.append(_save(fig, f"{out_dir}/math_score.png"))
    return written


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    from corpus.io import atomic_open

    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path

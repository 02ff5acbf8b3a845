"""Corpus statistics over Parquet shards, computed with polars lazy scans (only the needed columns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from corpus.io import PARQUET_EXT, expand_paths
from corpus.schema import SchemaError


def scan_shards(paths: str | Sequence[str]) -> tuple[pl.LazyFrame, list[str]]:
    """A lazy frame over the Parquet shards matched by ``paths`` (files, folders, globs, URLs)."""
    files = expand_paths(paths, exts=PARQUET_EXT)
    for f in files:
        names = pl.read_parquet_schema(f)
        missing = [c for c in ("id", "text") if c not in names]
        if missing:
            raise SchemaError(f"{f}: not a mathcorpus shard: missing column(s) {', '.join(missing)}")
    return pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore"), files


def summarize(paths: str | Sequence[str], by: str = "source") -> dict[str, Any]:
    """Documents, characters and bytes in total and per value of column ``by``."""
    lf, files = scan_shards(paths)
    if by not in lf.collect_schema().names():
        raise SchemaError(f"--by {by!r}: no such column (columns: {', '.join(lf.collect_schema().names())})")
    per = (
        lf.select(pl.col(by).cast(pl.String).fill_null("(null)").alias(by),
                  pl.col("text").str.len_chars().alias("chars"), pl.col("text").str.len_bytes().alias("bytes"))
        .group_by(by)
        .agg(pl.len().alias("documents"), pl.col("chars").sum(), pl.col("bytes").sum())
        .sort("documents", descending=True)
        .collect()
    )
    total = {k: int(per[k].sum()) for k in ("documents", "chars", "bytes")}
    return {"files": len(files), "by": by, "total": total, "groups": per.to_dicts()}

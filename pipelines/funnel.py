"""The run funnel: documents and tokens in/out of every stage, removals by reason, as JSON and a PNG chart.

Read from a finished run folder (``run.json`` plus each stage's ``kept/`` and ``removed/`` shards; only the
``n_tokens`` and ``reason`` columns are read). Each stage also carries its conservation terms from ``run.json``
(in = kept + removed + rejected + skipped). Tokens are ``null`` where documents had no ``n_tokens`` yet
(stages before ``tokens``). Written next to the corpus shards as ``funnel.json`` and ``funnel.png``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import polars as pl

from corpus.io import open_file, write_json
from pipelines.accounting import folder_files
from pipelines.registry import get_stage


def _files(folder: str | None, missing_ok: bool = True) -> list[str]:
    """The shards of ``folder``: none only when it is allowed to be absent (``removed/``: nothing removed)."""
    return folder_files(folder, missing_ok=missing_ok)


def shard_totals(folder: str | None) -> dict[str, int | None]:
    """Documents and tokens (None when some rows have no n_tokens) of a folder of shards."""
    files = _files(folder, missing_ok=False)  # every stage writes kept/ (and the corpus): absent is an error
    if not files:
        return {"documents": 0, "tokens": 0}
    lf = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
    row = lf.select(pl.len().alias("n"), pl.col("n_tokens").cast(pl.Int64).sum().alias("t"),
                    pl.col("n_tokens").null_count().alias("missing")).collect().row(0)
    return {"documents": int(row[0]), "tokens": int(row[1] or 0) if row[2] == 0 else None}


def removals_by_reason(folder: str) -> list[dict[str, Any]]:
    """Removed documents grouped by their ``reason`` column (with tokens where known)."""
    files = _files(folder)
    if not files:
        return []
    lf = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
    df = (lf.select(pl.col("reason").cast(pl.String).fill_null("(no reason)"), pl.col("n_tokens").cast(pl.Int64))
          .group_by("reason").agg(pl.len().alias("documents"), pl.col("n_tokens").sum().alias("tokens"),
                                  pl.col("n_tokens").null_count().alias("missing"))
          .sort(["documents", "reason"], descending=[True, False]).collect())
    return [{"reason": r["reason"], "documents": r["documents"], "tokens": r["tokens"] if not r["missing"] else None}
            for r in df.to_dicts()]


def build_funnel(run_dir: str) -> dict[str, Any]:
    """The funnel of the run in ``run_dir`` (needs its ``run.json``)."""
    with open_file(f"{run_dir}/run.json", "rb") as fh:
        run = json.load(fh)
    corpus_dir = run.get("corpus_dir") or f"{run_dir}/corpus"
    stages = []
    prev: dict[str, int | None] | None = None
    for s in run["stages"]:
        d = s["dir"]
        try:
            writes_corpus = get_stage(s["stage"]).writes_corpus
        except KeyError:
            writes_corpus = False
        out = shard_totals(corpus_dir if writes_corpus else f"{d}/kept")
        terms = s.get("conservation") or {}
        documents_in = terms.get("documents_in", prev["documents"] if prev else None)
        entry = {"stage": s["stage"], "index": s["index"], "seconds": s.get("seconds"),
                 "documents_in": documents_in, "tokens_in": prev["tokens"] if prev else None,
                 "documents_out": out["documents"], "tokens_out": out["tokens"],
                 "removed": removals_by_reason(f"{d}/removed"), "rejects": s.get("rejects", 0),
                 "conservation": terms or None}
        if writes_corpus:
            entry["note"] = "writes the corpus: documents may repeat (upsampling) or be dropped (downsampling)"
        stages.append(entry)
        prev = out
    final = stages[-1] if stages else {}
    return {"run": run_dir, "name": run.get("name"), "corpus_dir": corpus_dir, "stages": stages,
            "corpus_documents": final.get("documents_out"), "corpus_tokens": final.get("tokens_out")}


def plot_funnel(funnel: dict[str, Any], path: str) -> str:
    """A horizontal bar chart: documents kept per stage, with removals stacked by reason."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corpus.io import atomic_open

    stages = funnel["stages"]
    labels = [f"{s['index']:02d} {s['stage']}" for s in stages][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(stages) + 1.8))
    kept = [s["documents_out"] for s in stages][::-1]
    ax.barh(labels, kept, color="#4477aa", label="kept")
    reasons = sorted({r["reason"] for s in stages for r in s["removed"]})
    colors = plt.get_cmap("tab20")
    left = list(kept)
    for i, reason in enumerate(reasons[:20]):
        vals = [next((r["documents"] for r in s["removed"] if r["reason"] == reason), 0) for s in stages][::-1]
        ax.barh(labels, vals, left=left, color=colors(i % 20), label=f"removed: {reason}")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("documents")
    n = funnel.get('corpus_documents') or 0
    ax.set_title(f"Run funnel: {funnel.get('name') or ''} ({n:,} documents in the corpus)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path


def write_funnel(run_dir: str) -> dict[str, Any]:
    """Build the funnel of a finished run and write ``funnel.json`` + ``funnel.png`` next to the corpus."""
    funnel = build_funnel(run_dir)
    out = funnel["corpus_dir"]
    if "://" not in out:
        os.makedirs(out, exist_ok=True)
    write_json(funnel, f"{out}/funnel.json")
    funnel["chart"] = plot_funnel(funnel, f"{out}/funnel.png")
    return funnel

"""``corpus-stats PATH...`` (also ``mathcorpus stats``): statistics of a set of Parquet shards."""

from __future__ import annotations

import json

import typer

from pipelines.cli._app import app, entry

stats_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def corpus_stats(
    paths: list[str] = typer.Argument(..., help="Shard files, folders, globs or fsspec URLs; a run folder means its "
                                      "corpus/, another command's output folder its kept/ shards."),
    by: list[str] = typer.Option(["source"], "--by", help="Group by this column (repeat for several)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables."),
    plot_dir: str = typer.Option(None, "--plot", help="Write PNG charts (shares, lengths, math_score) here."),
    html_out: str = typer.Option(None, "--html", help="Also write one self-contained HTML page (tables, plots)."),
    top: int = typer.Option(20, "--top", min=0, help="How many top domains to list."),
    bins: int = typer.Option(20, "--bins", min=1, help="math_score histogram bins."),
    approx: bool = typer.Option(False, "--approx", help="Count distinct texts with HyperLogLog (bounded memory)."),
) -> None:
    """Documents, tokens, characters and bytes by source (or --by COLUMN), length quantiles, math_score
    histogram, top domains and the exact-duplicate share of a set of shards."""
    from corpus.io import PARQUET_EXT, InputError, resolve_document_inputs
    from corpus.stats import EXACT_LIMIT, corpus_stats, plot, to_markdown

    files = resolve_document_inputs(paths)  # a run folder means its corpus/, a command's output its kept/
    other = [f for f in files if not f.lower().endswith(PARQUET_EXT)]
    if other:
        raise InputError(f"{other[0]}: not a Parquet shard (corpus-stats reads Parquet shards only)")
    result = corpus_stats(files, by=by, top=top, bins=bins, exact_limit=0 if approx else EXACT_LIMIT)
    if plot_dir:
        result["plots"] = plot(result, plot_dir)
    if html_out:
        from pipelines.report import write_corpus_html

        typer.echo(f"html: {write_corpus_html(files, html_out, title=', '.join(paths))}", err=True)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
    elif markdown:
        typer.echo(to_markdown(result), nl=False)
    else:
        print_tables(result)


def print_tables(result: dict) -> None:
    """Terminal rendering (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    by, t = result["by"], result["total"]
    table = Table(title=f"{result['files']} shard(s), {t['documents']:,} documents, {t['tokens']:,} tokens")
    for col in (*by, "documents", "tokens", "chars", "bytes", "token share"):
        table.add_column(col, justify="left" if col in by else "right")
    for g in result["groups"]:
        table.add_row(*(str(g[b]) for b in by), f"{g['documents']:,}", f"{g['tokens']:,}", f"{g['chars']:,}",
                      f"{g['bytes']:,}", f"{g['share_tokens']:.3f}")
    table.add_row("total", *([""] * (len(by) - 1)), f"{t['documents']:,}", f"{t['tokens']:,}", f"{t['chars']:,}",
                  f"{t['bytes']:,}", "1.000", style="bold")
    console.print(table)
    if t["tokens_missing"]:
        console.print(f"{t['tokens_missing']:,} documents have no n_tokens (run the tokens stage)")
    lengths = Table(title="length quantiles")
    measures = [name for name, q in result["lengths"].items() if q]
    lengths.add_column("quantile")
    for name in measures:
        lengths.add_column(name, justify="right")
    for k in ("min", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "max", "mean"):
        lengths.add_row(k, *(f"{result['lengths'][name][k]:,}" for name in measures))
    console.print(lengths)
    ms = result["math_score"]
    hist = " ".join(f"{c:,}" for c in ms["counts"])
    console.print(f"math_score histogram ({len(ms['counts'])} bins over 0..1): {hist}; missing {ms['missing']:,}")
    if result["top_domains"]:
        console.print("top domains: " + ", ".join(f"{d['domain']} ({d['documents']:,})"
                                                  for d in result["top_domains"][:10]))
    d = result["duplicates"]
    console.print(f"exact duplicates: {d['exact_duplicate_share']:.4%} ({d['distinct_texts']:,} distinct texts, "
                  f"{d['method']})")
    if result.get("plots"):
        console.print("charts: " + ", ".join(result["plots"]))


stats_app.command()(corpus_stats)
app.command("stats")(corpus_stats)
main = entry(stats_app, "corpus-stats")

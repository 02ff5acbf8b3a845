"""``corpus-stats PATH...`` (also ``mathcorpus stats``): summarize Parquet shards."""

from __future__ import annotations

import json

import typer

from corpus.cli._app import app, entry

stats_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def corpus_stats(
    paths: list[str] = typer.Argument(..., help="Shard files, folders, globs or fsspec URLs."),
    by: str = typer.Option("source", "--by", help="Group by this column."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Documents, characters and bytes of a set of shards, per source (or --by COLUMN)."""
    from rich.console import Console
    from rich.table import Table

    from corpus.stats import summarize

    result = summarize(paths, by=by)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    table = Table(title=f"{result['files']} shard(s), {result['total']['documents']:,} documents")
    for col in (by, "documents", "chars", "bytes"):
        table.add_column(col, justify="left" if col == by else "right")
    for g in result["groups"]:
        table.add_row(str(g[by]), f"{g['documents']:,}", f"{g['chars']:,}", f"{g['bytes']:,}")
    t = result["total"]
    table.add_row("total", f"{t['documents']:,}", f"{t['chars']:,}", f"{t['bytes']:,}", style="bold")
    Console().print(table)


stats_app.command()(corpus_stats)
app.command("stats")(corpus_stats)
main = entry(stats_app, "corpus-stats")

"""``mathcorpus extract INPUT... --source web|book|code --output DIR``: the extract stage outside a manifest."""

from __future__ import annotations

import typer

from pipelines.cli._app import app


@app.command()
def extract(
    inputs: list[str] = typer.Argument(..., help="Files, folders or globs: .html, .warc(.gz)/.wet, .jsonl/.parquet, "
                                       ".txt/.md/.tex/.epub, source trees, .ipynb."),
    source: str = typer.Option(..., "--source", "-s", help="web, book or code (the schema 'source' column)."),
    output: str = typer.Option(..., "--output", "-o", help="Output folder: OUTPUT/corpus/*.parquet, "
                              "rejects, run.json."),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto (by extension), html, warc, html-records, book, "
                            "code, jsonl or parquet."),
    html_column: str = typer.Option(None, "--html-column", help="For JSONL/Parquet pages: the column with the HTML "
                                    "(implies --format html-records)."),
    tasks: int = typer.Option(1, "--tasks", min=1, help="Tasks (output shards)."),
    executor: str = typer.Option("local", "--executor", "-e", help="local or ray."),
    timeout: float = typer.Option(20.0, "--timeout", min=0, help="Seconds per web page (0: no limit)."),
    max_page_bytes: int = typer.Option(10_000_000, "--max-page-bytes", min=1, help="Larger pages are rejected."),
    max_tokens: int = typer.Option(3500, "--max-tokens", min=64, help="Token budget of one book part."),
    prefilter: str = typer.Option(None, "--prefilter", help="First-pass model folder (python -m "
                                  "classifiers.firstpass): only web pages that may hold math are extracted; the "
                                  "others go to the stage's removed/ with their signals."),
    prefilter_threshold: float = typer.Option(None, "--prefilter-threshold", min=0.0, max=1.0,
                                              help="First-pass threshold (default: the model card's)."),
    rounds: int = typer.Option(0, "--rounds", min=0, help="With --prefilter: recall rounds of domain expansion "
                               "over the first-pass pool (pages of math-rich domains are fetched again by byte "
                               "range and extracted into OUTPUT/recall/round_NN/; the crawl is not rescanned)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show datatrove's task logs."),
) -> None:
    """Extract web pages (math kept as LaTeX), books or code into document-schema Parquet under OUTPUT/corpus."""
    import os

    from corpus.errors import MathcorpusError
    from corpus.io import expand_paths
    from corpus.schema import SOURCES
    from pipelines.executors import EXECUTORS, quiet_logs
    from pipelines.manifest import parse_manifest
    from pipelines.runner import run_manifest

    if source not in SOURCES:
        raise MathcorpusError(f"--source: expected one of {', '.join(SOURCES)}, got {source!r}")
    if executor not in EXECUTORS:
        raise MathcorpusError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    for pattern in inputs:
        expand_paths(pattern)  # one-line error naming a pattern that matches nothing
    if rounds and not prefilter:
        raise MathcorpusError("--rounds: needs --prefilter (rounds expand the first pass's pool)")
    options = {}
    if html_column:
        from corpus.io import require_columns, resolve_document_inputs

        # the column must be in the records before any work (never every page rejected one by one)
        require_columns(resolve_document_inputs(inputs), [html_column], "--html-column")
        options["html_column"] = html_column
        fmt = "html-records" if fmt == "auto" else fmt
    quiet_logs(verbose)
    manifest = parse_manifest({
        "name": f"extract-{source}",
        "output": os.path.abspath(output),
        "executor": {"kind": executor, "tasks": tasks},
        "inputs": [{"name": source, "source": source, "paths": [os.path.abspath(p) for p in inputs],
                    "format": fmt, "options": options}],
        "stages": [{"stage": "extract", "timeout": timeout, "max_page_bytes": max_page_bytes,
                    "max_tokens": max_tokens, "prefilter_dir": os.path.abspath(prefilter) if prefilter else None,
                    "prefilter_threshold": prefilter_threshold}],
    })
    result = run_manifest(manifest, progress=lambda s: typer.echo(s, err=True))
    stage = result.stages[0]
    removed = f", {stage.get('documents_removed', 0)} turned away by the first pass" if prefilter else ""
    typer.echo(f"extracted {stage['documents_out']} document(s){removed}, {stage['rejects']} rejected "
               f"(see {stage['dir']}/rejects/) -> {result.corpus_dir}  ({result.seconds:.1f}s)")
    if rounds:
        from corpus.extract.crawl_recall import RoundSettings, run_rounds
        from corpus.records import relpath_under

        bases = [os.path.abspath(p) for p in inputs]
        files = {relpath_under(f, bases): f for f in expand_paths(bases)}
        summary = run_rounds(stage["dir"], files.__getitem__, f"{os.path.abspath(output)}/recall",
                             RoundSettings(rounds, options={"timeout": timeout, "max_page_bytes": max_page_bytes}))
        for r in summary["rounds"]:
            typer.echo(f"recall round {r['round']}: {len(r['domains'])} math-rich domain(s), {r['fetched']} page(s) "
                       f"fetched by byte range ({r['bytes_read']} bytes), {r['extracted']} extracted, "
                       f"{r['rejected']} rejected")

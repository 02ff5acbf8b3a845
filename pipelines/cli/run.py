"""``mathcorpus run MANIFEST``: run a manifest's stages end to end."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli._app import app


@app.command()
def run(
    manifest: Path = typer.Argument(..., help="YAML manifest (see manifests/)."),
    executor: str = typer.Option(None, "--executor", "-e", help="ray (default) or local; overrides the manifest."),
    workers: int = typer.Option(None, "--workers", "-w", min=-1, help="Tasks running at once (-1: as many as tasks)."),
    tasks: int = typer.Option(None, "--tasks", min=1, help="Tasks (shards) per phase; overrides the manifest."),
    output: str = typer.Option(None, "--output", "-o", help="Output folder (local path or fsspec URL)."),
    ray_address: str = typer.Option(None, "--ray-address", help="Join this Ray cluster (default: RAY_ADDRESS)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show datatrove's task logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress (`mathcorpus status` still works)."),
) -> None:
    """Run MANIFEST: every stage in order, resumable; writes shards, run.json and the corpus folder."""
    from pipelines.executors import EXECUTORS, quiet_logs
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    if executor is not None and executor not in EXECUTORS:
        raise typer.BadParameter(f"expected one of {', '.join(EXECUTORS)}", param_hint="--executor")
    quiet_logs(verbose)
    m = load_manifest(manifest)
    result = run_manifest(m, executor=executor, workers=workers, tasks=tasks, output=output,
                          ray_address=ray_address, progress=lambda s: typer.echo(s, err=True), live=not quiet)
    typer.echo(f"corpus: {result.corpus_dir}  ({result.seconds:.1f}s)")

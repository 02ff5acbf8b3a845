"""``mathcorpus status RUN_DIR``: follow a run from another terminal (or a detached job) through its files."""

from __future__ import annotations

import json
import time

import typer

from pipelines.cli._app import app


@app.command()
def status(
    run_dir: str = typer.Argument(..., help="The run's output folder (local path or fsspec URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (status.json plus the running phase)."),
    watch: float = typer.Option(0.0, "--watch", "-w", help="Print again every N seconds until the run ends."),
) -> None:
    """Stages done, the running phase (documents and input bytes done / total, rate, ETA, tasks finished /
    running / failed, slowest task) and the report once the run is done."""
    from pipelines.progress import describe_status, run_status

    while True:
        st = run_status(run_dir)
        typer.echo(json.dumps(st, indent=2, sort_keys=True) if as_json else "\n".join(describe_status(st)))
        if watch <= 0 or st["state"] != "running":
            return
        time.sleep(watch)

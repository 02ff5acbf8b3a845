"""``mathcorpus dedup INPUT... --output DIR``: exact + near-duplicate removal outside a manifest run."""

from __future__ import annotations

import typer

from corpus.dedup.params import DedupConfig
from corpus.dedup.priority import PriorityConfig
from pipelines.cli._app import app

_D, _P = DedupConfig(), PriorityConfig()  # option defaults: the library's


def ingest(paths: list[str], dest: str, shards: int, source: str | None) -> tuple[int, int]:
    """Read JSONL/Parquet records into ``shards`` schema shards under ``dest`` (round-robin, streaming).

    A record's ``source`` that is not a schema source (e.g. provenance strings) moves to the metadata as
    ``orig_source`` and ``source`` becomes ``source`` (the option). Returns ``(documents, rejected)``.
    """
    from corpus.io import Reject, write_jsonl
    from corpus.records import accept_rows, iter_record_rows
    from pipelines.steps.io import DocSink

    sinks = [DocSink(f"{dest}/input/{i:05d}.parquet", write_empty=True) for i in range(shards)]
    rejects: list[Reject] = []
    n = 0
    for row in accept_rows(iter_record_rows(paths, source), rejects):
        sinks[n % shards].write_row(row)
        n += 1
    for s in sinks:
        s.close()
    if rejects:
        write_jsonl((r.to_json() for r in rejects), f"{dest}/rejects.jsonl")
    return n, len(rejects)


@app.command()
def dedup(
    inputs: list[str] = typer.Argument(..., help="JSONL or Parquet files, folders or globs (document schema), "
                                       "another command's output folder (its kept/) or a run folder (its corpus/)."),
    output: str = typer.Option(..., "--output", "-o", help="Writes OUTPUT/kept/, OUTPUT/removed/ and "
                               "OUTPUT/dedup_report.json."),
    executor: str = typer.Option("local", "--executor", "-e", help="local or ray."),
    tasks: int = typer.Option(2, "--tasks", min=1, help="Shards (tasks) per phase."),
    workers: int = typer.Option(0, "--workers", "-w", min=-1,
                                help="Tasks running at once (-1: all / cores; 0: in-process for small inputs)."),
    shingle_size: int = typer.Option(_D.shingle_size, "--shingle-size", min=1, help="Tokens per shingle."),
    num_perm: int = typer.Option(_D.num_perm, "--num-perm", min=1, help="MinHash permutations."),
    lsh_threshold: float = typer.Option(_D.lsh_threshold, "--lsh-threshold", min=0, max=1,
                                        help="Jaccard the bands x rows are chosen for."),
    bands: int = typer.Option(None, "--bands", min=1, help="LSH bands (with --rows; overrides --lsh-threshold)."),
    rows: int = typer.Option(None, "--rows", min=1, help="Rows per band (with --bands)."),
    verify_threshold: float = typer.Option(_D.verify_threshold, "--verify-threshold", min=0, max=1,
                                           help="Real similarity a pair needs."),
    metric: str = typer.Option(_D.metric, "--metric", help="jaccard or containment."),
    edit_rate: float = typer.Option(_D.edit_rate, "--edit-rate", min=0, max=1,
                                    help="Differing tokens a duplicate may have per token beyond --exact-tokens "
                                    "(negative: shingle similarity only)."),
    exact_tokens: int = typer.Option(_D.exact_tokens, "--exact-tokens", min=0,
                                     help="Texts this short must match token for token (text added before/after "
                                     "aside)."),
    symbol_change_rate: float = typer.Option(_D.symbol_change_rate, "--symbol-change-rate", min=0, max=1,
                                             help="Math symbols (numbers, variables, TeX, operators) replaced by "
                                             "others, allowed per token beyond --symbol-exact-tokens."),
    symbol_exact_tokens: int = typer.Option(_D.symbol_exact_tokens, "--symbol-exact-tokens", min=0,
                                            help="Texts this short may not replace any math symbol."),
    frames: bool = typer.Option(_D.frames, "--frames/--no-frames",
                                help="Text only one side has at the very start/end (no math) is not an edit."),
    priority: str = typer.Option(",".join(_P.order), "--priority",
                                 help="Survivor order: fields from source, math_score, quality_tier, length."),
    source_rank: str = typer.Option(",".join(_P.source_rank), "--source-rank",
                                    help="Sources from most to least preferred."),
    source: str = typer.Option(None, "--source", help="Source for records without a valid schema source."),
    cluster_rounds: int = typer.Option(30, "--cluster-rounds", min=1, help="Maximum label-propagation rounds."),
    save_index: str = typer.Option(None, "--save-index", help="Save the kept documents' index to this folder."),
    against_index: str = typer.Option(None, "--against-index",
                                      help="Also remove documents duplicating this saved index (index docs win)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show datatrove's task logs."),
) -> None:
    """Remove exact and near-duplicate documents (math-safe MinHash LSH, verified on real shingles)."""
    import hashlib
    import json

    import fsspec

    from corpus.io import write_json
    from pipelines.executors import EXECUTORS, quiet_logs
    from pipelines.stages.dedup import DedupSettings, run_standalone

    if executor not in EXECUTORS:
        raise typer.BadParameter(f"expected one of {', '.join(EXECUTORS)}", param_hint="--executor")
    quiet_logs(verbose)
    try:
        settings = DedupSettings(
            shingle_size=shingle_size, num_perm=num_perm, lsh_threshold=lsh_threshold, bands=bands, rows=rows,
            verify_threshold=verify_threshold, metric=metric, edit_rate=edit_rate, exact_tokens=exact_tokens,
            symbol_change_rate=symbol_change_rate, symbol_exact_tokens=symbol_exact_tokens, frames=frames,
            priority=[p.strip() for p in priority.split(",") if p.strip()],
            source_rank=[s.strip() for s in source_rank.split(",") if s.strip()], cluster_rounds=cluster_rounds,
            tasks=tasks, against_index_dir=against_index, save_index_dir=save_index)
    except ValueError as e:
        raise typer.BadParameter(str(e).splitlines()[-1] if "\n" in str(e) else str(e)) from None
    out = output.rstrip("/")
    from pipelines.outputs import claim_output  # a file, or another command's folder, is refused

    claim_output(out, "dedup", adopt=("work", "kept", "removed", "dedup_report.json"))
    fs = fsspec.get_fs_token_paths(out)[0]
    key = hashlib.sha256(json.dumps({"inputs": inputs, "source": source, "settings": settings.model_dump()},
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    cfg_path = f"{out}/work/config.json"
    if fs.exists(cfg_path):
        with fs.open(cfg_path, "rt") as fh:
            stale = json.load(fh).get("hash") != key
    else:
        stale = fs.exists(out)
    if stale:
        for sub in ("work", "kept", "removed", "dedup_report.json"):
            if fs.exists(f"{out}/{sub}"):
                fs.rm(f"{out}/{sub}", recursive=True)
    if not fs.exists(f"{out}/work/input/{tasks - 1:05d}.parquet"):
        n_docs, rejected = ingest(inputs, f"{out}/work", tasks, source)
        typer.echo(f"read {n_docs:,} documents ({rejected} rejected)", err=True)
    else:
        from pipelines.runner import count_rows

        n_docs = count_rows(f"{out}/work/input")
        rejected = _count_lines(fs, f"{out}/work/rejects.jsonl")
    write_json({"hash": key}, cfg_path)
    if workers == 0:  # small inputs: run tasks in this process (no worker start-up per phase)
        workers = 1 if n_docs < 50_000 and executor == "local" else -1
    summary = run_standalone(settings, f"{out}/work/input", out, executor=executor, workers=workers)
    _add_rejects(f"{out}/dedup_report.json", rejected, f"{out}/work/rejects.jsonl")
    by = ", ".join(f"{k} {v:,}" for k, v in summary["removed_by_reason"].items() if v) or "none"
    typer.echo(f"{summary['documents']:,} documents: {summary['kept']:,} kept, {summary['removed']:,} removed ({by}), "
               f"{rejected:,} rejected")
    typer.echo(f"report: {out}/dedup_report.json")


def _count_lines(fs, path: str) -> int:
    if not fs.exists(path):
        return 0
    with fs.open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _add_rejects(report_path: str, rejected: int, rejects_file: str) -> None:
    """Records that never became documents (bad JSON, wrong types ...) in the report: in = documents + rejected."""
    import json

    from corpus.io import open_file, write_json

    with open_file(report_path, "rb") as fh:
        report = json.load(fh)
    report["rejected"] = rejected
    if rejected:
        report["rejects_file"] = rejects_file
    write_json(report, report_path)

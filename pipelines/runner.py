"""Run a manifest: stages in order, each as one or more executor phases, then the run manifest.

Layout of a run folder::

    {output}/stages/{NN}_{stage}/kept/*.parquet      documents that passed the stage
    {output}/stages/{NN}_{stage}/removed/*.parquet   documents it removed, with a reason
    {output}/stages/{NN}_{stage}/logs/{phase}/       datatrove logs, stats and completion markers
    {output}/stages/{NN}_{stage}/config.json         the stage settings the outputs were made with
    {output}/corpus/*.parquet                        the final corpus
    {output}/run.json                                run manifest: config, per-stage counts, outputs

Resuming: completed ranks are skipped (datatrove completion markers), so rerunning a killed run finishes
the missing work only. When a stage's settings or its work format (``StageSpec.work_format``, bumped when the
code's work files change) differ from those its outputs were made with, that stage and every later one are
recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import fsspec

from corpus import __version__
from corpus.errors import MathcorpusError
from corpus.io import atomic_open, open_file, write_json
from pipelines.accounting import (
    AccountingError,
    StageCounts,
    check_conservation,
    count_lines,
    count_rows,
    folder_files,
    phase_stats,
    reader_counts,
)
from pipelines.executors import make_executor
from pipelines.manifest import Manifest
from pipelines.outputs import claim_output
from pipelines.progress import RunMonitor
from pipelines.registry import StageContext, get_stage
from pipelines.validate import check_run_options, input_identity, validate_manifest

__all__ = ["RunError", "RunResult", "check_conservation", "count_rows", "run_manifest", "stage_counts"]


class RunError(MathcorpusError, RuntimeError):
    """A phase did not complete; the message names the stage, phase and where its logs are."""


@dataclass
class RunResult:
    output: str
    corpus_dir: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _settings_hash(stage: str, settings: Any, upstream: str, tasks: int, files: dict[str, Any] | None = None,
                   work_format: int = 1) -> str:
    # tasks is part of it: completion markers and shard names are per rank of a given world size; files: the
    # identity (size + mtime) of every file the settings point at outside the run (models, seeds, eval sets);
    # work_format: the stage's on-disk work format (StageSpec.work_format; 1 adds nothing, so folders made
    # before formats were recorded keep their hash)
    payload = json.dumps({"stage": stage, "settings": settings.model_dump(mode="json"), "up": upstream,
                          "tasks": tasks, **({"files": files} if files else {}),
                          **({"work_format": work_format} if work_format != 1 else {})},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _inputs_hash(manifest: Manifest) -> str:
    """The input specs plus the identity of every file they expand to: appended or changed input recomputes."""
    return hashlib.sha256(json.dumps(
        [i.model_dump(mode="json") for i in manifest.inputs] + [input_identity(manifest)], sort_keys=True
    ).encode()).hexdigest()[:16]


def _fs(path: str):
    return fsspec.get_fs_token_paths(path)[0]


def _invalidate_if_changed(stage_dir: str, config_hash: str) -> None:
    fs = _fs(stage_dir)
    cfg = f"{stage_dir}/config.json"
    if fs.exists(cfg):
        with fs.open(cfg, "rt") as fh:
            old = json.load(fh).get("hash")
        if old != config_hash:
            fs.rm(stage_dir, recursive=True)


def run_manifest(
    manifest: Manifest,
    *,
    executor: str | None = None,
    workers: int | None = None,
    tasks: int | None = None,
    output: str | None = None,
    ray_address: str | None = None,
    progress=print,
    live: bool | None = None,
) -> RunResult:
    """Run every stage of ``manifest``; returns where the corpus is and the per-stage counts.

    Everything that can be checked before work starts is: option ranges, the output folder, the inputs, and
    every file or eval set the stages name. After each stage its documents must add up
    (:func:`pipelines.accounting.check_conservation`), else the run stops naming the stage."""
    started = time.time()
    out = (output or manifest.output).rstrip("/")
    kind = executor or manifest.executor.kind
    n_tasks = tasks if tasks is not None else manifest.executor.tasks
    n_workers = workers if workers is not None else manifest.executor.workers
    address = ray_address or manifest.executor.ray_address
    check_run_options(kind, n_tasks, n_workers)
    if not manifest.stages:
        raise RunError(f"{manifest.path}: stages: the manifest has no stages to run")
    claim_output(out, "run", adopt=("stages", "corpus", "run.json"))  # run folders made before markers
    stage_files = validate_manifest(manifest, out)

    monitor = RunMonitor(out, [e.stage for e in manifest.stages], live=live)  # status.json + live progress
    input_dir: str | None = None
    upstream = _inputs_hash(manifest)
    corpus_dir = f"{out}/corpus"
    extra: dict[str, Any] = {"corpus_dir": corpus_dir}
    summaries: list[dict[str, Any]] = []
    for index, entry in enumerate(manifest.stages):
        spec = get_stage(entry.stage)
        stage_dir = f"{out}/stages/{index:02d}_{entry.stage}"
        res = entry.resources
        stage_tasks = res.tasks or n_tasks
        upstream = _settings_hash(entry.stage, entry.settings, upstream, stage_tasks, stage_files[index],
                                  spec.work_format)
        _invalidate_if_changed(stage_dir, upstream)
        if spec.writes_corpus:  # its output is the corpus: recompute it together with the stage
            _invalidate_if_changed(corpus_dir, upstream)
        ctx = StageContext(run_dir=out, stage_dir=stage_dir, input_dir=input_dir, tasks=stage_tasks,
                           manifest=manifest, index=index, extra=extra)
        write_json({"hash": upstream, "stage": entry.stage, "settings": entry.settings.model_dump(mode="json"),
                    "work_format": spec.work_format}, f"{stage_dir}/config.json")
        t0 = time.time()
        progress(f"[{index + 1}/{len(manifest.stages)}] {entry.stage} ...")
        monitor.stage_started(index)
        phases: list[tuple[str, int]] = []
        for phase in spec.build(entry.settings, ctx):
            logging_dir = f"{stage_dir}/logs/{phase.name}"
            ex = make_executor(
                kind, phase.steps, tasks=phase.tasks, workers=res.workers if res.workers is not None else n_workers,
                logging_dir=logging_dir, cpus_per_task=res.cpus_per_task or manifest.executor.cpus_per_task,
                mem_per_cpu_gb=res.mem_per_cpu_gb or manifest.executor.mem_per_cpu_gb, ray_address=address,
            )
            with monitor.phase(index, entry.stage, phase.name, logging_dir, phase.steps, phase.tasks):
                ex.run()
            missing = ex.get_incomplete_ranks(range(phase.tasks))
            if missing:
                raise RunError(
                    f"stage {entry.stage!r}, phase {phase.name!r}: {len(missing)} of {phase.tasks} task(s) failed "
                    f"(ranks {missing[:10]}); see {logging_dir}/logs/ . Rerun the same command to resume."
                )
            phases.append((logging_dir, phase.tasks))
        summary = (spec.finalize(entry.settings, ctx) if spec.finalize else None) or {}
        counts = stage_counts(ctx, phases, summary.get("accounting"), writes_corpus=spec.writes_corpus)
        check_conservation(entry.stage, counts)
        kept = count_rows(corpus_dir) if spec.writes_corpus else counts.kept
        summaries.append({
            "index": index, "stage": entry.stage, "dir": stage_dir, "seconds": round(time.time() - t0, 3),
            "documents_in": counts.documents_in, "documents_out": kept, "documents_removed": counts.removed,
            "rejects": counts.rejected, "conservation": counts.to_json(), "summary": summary,
        })
        skipped = sum(counts.skipped.values())
        progress(f"    {entry.stage}: {counts.documents_in} in, {counts.kept} kept, {counts.removed} removed, "
                 f"{counts.rejected} rejected" + (f", {skipped} skipped" if skipped else "")
                 + (f" -> {kept} written" if spec.writes_corpus else "") + f" ({time.time() - t0:.1f}s)")
        monitor.stage_done(index, summaries[-1])  # + CPU time, throughput, peak memory per task
        input_dir = ctx.kept_dir
        if spec.writes_corpus:
            input_dir = corpus_dir

    if not any(get_stage(e.stage).writes_corpus for e in manifest.stages):
        _publish(input_dir, corpus_dir)
    result = RunResult(output=out, corpus_dir=corpus_dir, stages=summaries, seconds=time.time() - started)
    write_json({
        "tool": "mathcorpus", "version": __version__, "manifest": manifest.path, "name": manifest.name,
        "executor": kind, "tasks": n_tasks, "workers": n_workers, "corpus_dir": corpus_dir,
        "corpus_documents": count_rows(corpus_dir), "stages": summaries,
        "config": manifest.model_dump(mode="json", exclude={"stages"})
        | {"stages": [{"stage": e.stage, **e.settings.model_dump(mode="json"),
                       **({"resources": r} if (r := e.resources.model_dump(exclude_none=True)) else {})}
                      for e in manifest.stages]},
    }, f"{out}/run.json")
    from pipelines.funnel import write_funnel  # funnel.json + funnel.png next to the corpus (issue 7)

    write_funnel(out)
    monitor.finish(summaries, progress)  # report.html, the stage table, status.json
    return result


def stage_counts(ctx: StageContext, phases: list[tuple[str, int]], accounting: dict[str, Any] | None = None,
                 *, writes_corpus: bool = False) -> StageCounts:
    """The conservation terms of a finished stage. The first stage's ``in`` is what its reader read (documents +
    rejected + skipped, from the datatrove stats of its first phase); a later stage's is the previous stage's
    kept shards. A stage that writes the corpus (mix) reports its own terms in ``accounting``."""
    rejected = count_lines(f"{ctx.stage_dir}/rejects")
    if accounting is not None:
        if accounting.get("reads_input_dir") and ctx.input_dir is not None:
            previous = count_rows(ctx.input_dir)
            if previous != int(accounting["documents_in"]):
                raise AccountingError(f"stage {ctx.stage_dir}: read {accounting['documents_in']} documents, the "
                                      f"previous stage kept {previous}")
        return StageCounts(documents_in=int(accounting["documents_in"]), kept=int(accounting["kept"]),
                           removed=int(accounting.get("removed", 0)), rejected=rejected,
                           skipped={k: int(v) for k, v in (accounting.get("skipped") or {}).items()})
    removed_dir = ctx.removed_dir
    if ctx.input_dir is None:
        if not phases:
            raise AccountingError(f"stage {ctx.stage_dir}: ran no phase")
        read, rejected_read, skipped = reader_counts(phase_stats(*phases[0]))
        documents_in = read + rejected_read + sum(skipped.values())
    else:
        documents_in, skipped = count_rows(ctx.input_dir), {}
    from pipelines.funnel import removals_by_reason

    return StageCounts(
        documents_in=documents_in, kept=count_rows(ctx.kept_dir), removed=count_rows(removed_dir, missing_ok=True),
        rejected=rejected, skipped=skipped,
        removed_by_reason={r["reason"]: r["documents"] for r in removals_by_reason(removed_dir)},
    )


def _publish(src: str, dst: str) -> None:
    """Copy the last stage's shards into ``{output}/corpus`` (each file atomically, stale ones removed)."""
    fs = _fs(dst)
    src_files = folder_files(src)
    names = {os.path.basename(f) for f in src_files}
    if fs.exists(dst):
        for f in fs.ls(dst, detail=False):
            if os.path.basename(f) not in names:
                fs.rm(f)
    for f in src_files:
        with open_file(f, "rb") as fin, atomic_open(f"{dst}/{os.path.basename(f)}", "wb") as fout:
            shutil.copyfileobj(fin, fout)

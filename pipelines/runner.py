"""Run a manifest: stages in order, each as one or more executor phases, then the run manifest.

Layout of a run folder::

    {output}/stages/{NN}_{stage}/kept/*.parquet      documents that passed the stage
    {output}/stages/{NN}_{stage}/removed/*.parquet   documents it removed, with a reason
    {output}/stages/{NN}_{stage}/logs/{phase}/       datatrove logs, stats and completion markers
    {output}/stages/{NN}_{stage}/config.json         the stage settings the outputs were made with
    {output}/corpus/*.parquet                        the final corpus
    {output}/run.json                                run manifest: config, per-stage counts, outputs

Resuming: completed ranks are skipped (datatrove completion markers), so rerunning a killed run finishes
the missing work only. When a stage's settings changed since its outputs were made, that stage and every
later one are recomputed.
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
import pyarrow.parquet as pq

from corpus import __version__
from corpus.errors import MathcorpusError
from corpus.io import PARQUET_EXT, atomic_open, expand_paths, open_file, write_json
from pipelines.executors import make_executor
from pipelines.manifest import Manifest
from pipelines.registry import StageContext, get_stage


class RunError(MathcorpusError, RuntimeError):
    """A phase did not complete; the message names the stage, phase and where its logs are."""


@dataclass
class RunResult:
    output: str
    corpus_dir: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def count_rows(folder: str) -> int:
    """Rows in the Parquet shards of ``folder``, from the footers only (0 when the folder is absent)."""
    try:
        files = expand_paths(folder, exts=PARQUET_EXT)
    except Exception:
        return 0
    total = 0
    for f in files:
        with open_file(f, "rb") as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _settings_hash(stage: str, settings: Any, upstream: str, tasks: int) -> str:
    # tasks is part of it: completion markers and shard names are per rank of a given world size
    payload = json.dumps({"stage": stage, "settings": settings.model_dump(mode="json"), "up": upstream,
                          "tasks": tasks}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _inputs_hash(manifest: Manifest) -> str:
    return hashlib.sha256(
        json.dumps([i.model_dump(mode="json") for i in manifest.inputs], sort_keys=True).encode()
    ).hexdigest()[:16]


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
) -> RunResult:
    """Run every stage of ``manifest``; returns where the corpus is and the per-stage counts."""
    started = time.time()
    out = (output or manifest.output).rstrip("/")
    kind = executor or manifest.executor.kind
    n_tasks = tasks or manifest.executor.tasks
    n_workers = workers if workers is not None else manifest.executor.workers
    address = ray_address or manifest.executor.ray_address
    if not manifest.stages:
        raise RunError(f"{manifest.path}: stages: the manifest has no stages to run")

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
        upstream = _settings_hash(entry.stage, entry.settings, upstream, stage_tasks)
        _invalidate_if_changed(stage_dir, upstream)
        if spec.writes_corpus:  # its output is the corpus: recompute it together with the stage
            _invalidate_if_changed(corpus_dir, upstream)
        ctx = StageContext(run_dir=out, stage_dir=stage_dir, input_dir=input_dir, tasks=stage_tasks,
                           manifest=manifest, index=index, extra=extra)
        write_json({"hash": upstream, "stage": entry.stage, "settings": entry.settings.model_dump(mode="json")},
                   f"{stage_dir}/config.json")
        t0 = time.time()
        progress(f"[{index + 1}/{len(manifest.stages)}] {entry.stage} ...")
        for phase in spec.build(entry.settings, ctx):
            logging_dir = f"{stage_dir}/logs/{phase.name}"
            ex = make_executor(
                kind, phase.steps, tasks=phase.tasks, workers=res.workers if res.workers is not None else n_workers,
                logging_dir=logging_dir, cpus_per_task=res.cpus_per_task or manifest.executor.cpus_per_task,
                mem_per_cpu_gb=res.mem_per_cpu_gb or manifest.executor.mem_per_cpu_gb, ray_address=address,
            )
            ex.run()
            missing = ex.get_incomplete_ranks(range(phase.tasks))
            if missing:
                raise RunError(
                    f"stage {entry.stage!r}, phase {phase.name!r}: {len(missing)} of {phase.tasks} task(s) failed "
                    f"(ranks {missing[:10]}); see {logging_dir}/logs/ . Rerun the same command to resume."
                )
        summary = spec.finalize(entry.settings, ctx) if spec.finalize else None
        docs_in = count_rows(input_dir) if input_dir else None
        kept = count_rows(corpus_dir if spec.writes_corpus else ctx.kept_dir)
        summaries.append({
            "index": index, "stage": entry.stage, "dir": stage_dir, "seconds": round(time.time() - t0, 3),
            "documents_in": docs_in, "documents_out": kept, "documents_removed": count_rows(ctx.removed_dir),
            "rejects": _count_rejects(stage_dir), "summary": summary or {},
        })
        progress(f"    {entry.stage}: {docs_in if docs_in is not None else '-'} in, {kept} kept "
                 f"({time.time() - t0:.1f}s)")
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
    return result


def _count_rejects(stage_dir: str) -> int:
    try:
        files = expand_paths(f"{stage_dir}/rejects", exts=(".jsonl",))
    except Exception:
        return 0
    n = 0
    for f in files:
        with open_file(f, "rb") as fh:
            n += sum(1 for _ in fh)
    return n


def _publish(src: str, dst: str) -> None:
    """Copy the last stage's shards into ``{output}/corpus`` (each file atomically, stale ones removed)."""
    fs = _fs(dst)
    src_files = expand_paths(src, exts=PARQUET_EXT) if _fs(src).exists(src) else []
    names = {os.path.basename(f) for f in src_files}
    if fs.exists(dst):
        for f in fs.ls(dst, detail=False):
            if os.path.basename(f) not in names:
                fs.rm(f)
    for f in src_files:
        with open_file(f, "rb") as fin, atomic_open(f"{dst}/{os.path.basename(f)}", "wb") as fout:
            shutil.copyfileobj(fin, fout)

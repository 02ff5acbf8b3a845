"""``decontam``: remove documents that contain eval items (13-gram + LCS, short-item and reworded tiers) and ship an
audit report.

The index is built once in the driver and saved to ``{stage_dir}/index/``; every worker loads it lazily.
Kept documents go to ``ctx.kept_dir``, removed ones to ``ctx.removed_dir`` with evidence columns, and the
finalizer writes ``report.json``, ``report.md`` and ``report.html`` into the stage folder.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields
from typing import Any, get_type_hints

import fsspec
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import create_model

from corpus.errors import MathcorpusError
from corpus.io import PARQUET_EXT, atomic_open, expand_paths, open_file, write_json
from decontam.config import DecontamConfig
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.io import DocSink, ParquetShardReader, RemovedSink


class _EvalSetChoice(StageSettings):
    evalsets: str | list[str] = "pretrain"  # profile, set names, or a list of both
    evalsets_root: str | None = None  # folder holding the eval-set files
    registry_path: str | None = None  # default: manifests/evalsets.yaml
    allow_hub: bool = False


def _threshold_fields() -> dict[str, tuple[Any, Any]]:
    """The matching thresholds, taken from ``DecontamConfig`` so stage and library never disagree."""
    hints = get_type_hints(DecontamConfig)
    return {f.name: (hints[f.name], f.default) for f in fields(DecontamConfig)}


DecontamSettings = create_model(
    "DecontamSettings",
    __base__=_EvalSetChoice,
    __doc__="Which eval sets, where they are, and the matching thresholds (see ``decontam.config``).",
    **_threshold_fields(),
)


class DecontamFilter(PipelineStep):
    """Checks each document against the saved index; writes kept, removed (+ evidence) and evidence JSONL."""

    name = "🦠 decontamination (13-gram + LCS, short, reworded)"
    type = "🦠 - DECONT"

    def __init__(self, index_path: str, kept_dir: str, removed_dir: str, evidence_dir: str):
        super().__init__()
        self.index_path = index_path
        self.kept_dir, self.removed_dir, self.evidence_dir = kept_dir, removed_dir, evidence_dir
        self._matcher = None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from decontam.index import NGramIndex
        from decontam.matcher import Matcher
        from decontam.run import EVIDENCE_FIELDS, REASON, check_record, evidence_columns

        if self._matcher is None:
            self._matcher = Matcher(NGramIndex.load(self.index_path))
        kept = DocSink(f"{self.kept_dir}/{rank:05d}.parquet", write_empty=True)
        removed = RemovedSink(self.removed_dir, rank, EVIDENCE_FIELDS)
        by_source: Counter[str] = Counter()  # per-rank report data: counters, evidence lines go straight to disk
        with atomic_open(f"{self.evidence_dir}/{rank:05d}.jsonl", "wb") as evidence, \
                atomic_open(f"{self.evidence_dir}/{rank:05d}.near.jsonl", "wb") as near_file:
            try:
                for doc in data or ():
                    source = str(doc.metadata.get("source") or "unknown")
                    by_source[source] += 1
                    self.stat_update("documents")
                    with self.track_time():
                        ev, near = check_record(self._matcher, [("text", doc.text)])
                    for m in near:  # near misses (kept documents), for the report's review list
                        near_file.write(json.dumps({"doc_id": doc.id, "source": source, "url": doc.metadata.get(
                            "url"), "input": None, **m}, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
                    if ev is None:
                        kept.write_doc(doc)
                        self.stat_update("kept")
                        yield doc
                        continue
                    self.stat_update("removed")
                    self.stat_update(f"removed_{ev['evalset']}")
                    line = json.dumps({"doc_id": doc.id, "source": source, "url": doc.metadata.get("url"),
                                       "input": None, **ev}, ensure_ascii=False, sort_keys=True)
                    evidence.write(line.encode("utf-8") + b"\n")
                    removed.remove(doc, REASON, **evidence_columns(ev))
            except BaseException:
                kept.abort()
                removed.abort()
                raise
            kept.close()
            removed.close()
        write_json(dict(by_source), f"{self.evidence_dir}/{rank:05d}.counts.json")


def _config(settings: DecontamSettings) -> DecontamConfig:
    return DecontamConfig(**{f.name: getattr(settings, f.name) for f in fields(DecontamConfig)})


def build(settings: DecontamSettings, ctx: StageContext) -> list[Phase]:
    from decontam.evalsets import load_sets
    from decontam.index import NGramIndex

    if ctx.input_dir is None:
        raise MathcorpusError("stage 'decontam' needs documents: put it after a stage that produces them (extract)")
    try:
        config = _config(settings)
    except ValueError as e:
        raise MathcorpusError(f"stage 'decontam': {e}") from e
    sets = load_sets(settings.evalsets, settings.evalsets_root, settings.registry_path, settings.allow_hub)
    index = NGramIndex.build(sets, config)
    index_path = f"{ctx.stage_dir}/index/index.pkl"
    index.save(index_path)
    write_json({"evalsets": index.sets, "index": index.summary(), "config": config.to_dict()},
               f"{ctx.stage_dir}/index/meta.json")
    step = DecontamFilter(index_path, ctx.kept_dir, ctx.removed_dir, f"{ctx.stage_dir}/evidence")
    return [Phase("decontam", [ParquetShardReader(ctx.input_dir), step], tasks=ctx.tasks)]


def check(settings: DecontamSettings) -> dict:
    """Before the run starts: the selected eval sets exist in the registry and their files are there."""
    import os

    from decontam.evalsets import load_registry
    from pipelines.validate import file_identity

    _config(settings)  # threshold ranges
    files = {}
    for spec in load_registry(settings.registry_path).select(settings.evalsets):
        location = spec.resolve(settings.evalsets_root)
        if "://" not in location and not os.path.exists(location):
            if settings.allow_hub and spec.hub:
                continue
            raise MathcorpusError(f"eval set {spec.name!r}: file not found: {location}")
        files[location] = file_identity(location)
    return files


def finalize(settings: DecontamSettings, ctx: StageContext) -> dict:
    import pyarrow.parquet as pq

    from decontam.evalsets import sha256_file
    from decontam.report import build_report, write_reports

    with open_file(f"{ctx.stage_dir}/index/meta.json", "rt") as fh:
        meta = json.load(fh)
    removals, near_misses, by_source = [], [], Counter()
    fs = fsspec.get_fs_token_paths(ctx.stage_dir)[0]
    for rank in range(ctx.tasks):
        base = f"{ctx.stage_dir}/evidence/{rank:05d}"
        if not fs.exists(f"{base}.counts.json"):  # every rank writes one, even with no documents
            raise MathcorpusError(f"stage 'decontam': {base}.counts.json: missing (rank {rank} did not finish; "
                                  "rerun the same command to resume)")
        with open_file(f"{base}.counts.json", "rt") as fh:
            by_source.update(json.load(fh))
        with open_file(f"{base}.jsonl", "rt") as fh:
            removals.extend(json.loads(line) for line in fh if line.strip())
        if fs.exists(f"{base}.near.jsonl"):
            with open_file(f"{base}.near.jsonl", "rt") as fh:
                near_misses.extend(json.loads(line) for line in fh if line.strip())
    inputs = []
    for path in expand_paths(ctx.input_dir, exts=PARQUET_EXT):
        with open_file(path, "rb") as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
        shown = path[len(ctx.run_dir) + 1 :] if path.startswith(ctx.run_dir + "/") else path
        inputs.append({"path": shown, "sha256": sha256_file(path), "documents": rows})
    report = build_report(config=_config(settings), evalsets=meta["evalsets"], inputs=inputs,
                          documents_by_source=by_source, removals=removals, index=meta["index"],
                          near_misses=near_misses,
                          extra_config={"mode": "stage", "evalsets_selection": settings.evalsets})
    write_reports(report, ctx.stage_dir)
    t = report["totals"]
    return {"documents": t["documents"], "removed": t["removed"], "kept": t["kept"],
            "by_evalset": {k: v["documents_matching"] for k, v in t["by_evalset"].items()},
            "report": f"{ctx.stage_dir}/report.html"}


STAGE = StageSpec(
    name="decontam",
    settings=DecontamSettings,
    build=build,
    finalize=finalize,
    check=check,
    description="remove documents containing eval items (13-gram + LCS on despaced tokens, short items, reworded "
                "items by numeric fingerprint); audit report json/md/html with near misses",
)

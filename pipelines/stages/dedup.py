"""``dedup``: exact + MinHash near-duplicate removal, verified, clustered by rounds, optionally vs an index.

Phases (all files under ``{stage_dir}/work``; each task's memory is bounded by its shard):

1. ``signatures`` (one task per shard): exact key, shingles, MinHash band keys, sorted per band.
2. ``buckets`` (band groups x key ranges): shared keys -> candidate pairs, routed to the owner shard.
3. ``verify`` (per shard): real shingle similarity + length- and math-aware token diff -> edges, in parts
   that fit ``verify_memory_mb``; a pair already joined by the task's earlier duplicates is not verified.
4. ``cluster_NN`` (per shard, ``cluster_rounds`` times, no-ops after convergence): min-label propagation.
5. ``filter`` (per shard): kept docs -> ``kept/`` with ``dup_count``, ``dup_sources`` and ``dup_domains`` in
   their metadata (cluster size and the copies' origins); removed ones -> ``removed/`` with ``reason``,
   ``cluster_id``, ``kept_id`` and ``similarity``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import Literal

import fsspec
from pydantic import Field, model_validator

from corpus.dedup.params import DedupConfig
from corpus.dedup.priority import FIELDS, PriorityConfig
from corpus.io import InputError, list_shards, open_file, write_json
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.dedup import (
    DedupBuckets,
    DedupClusterRound,
    DedupFilter,
    DedupSignatures,
    DedupVerify,
    final_round,
    round_converged,
)
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter

_D, _P = DedupConfig(), PriorityConfig()  # the defaults live there (chosen by bench/bench_dedup.py)
# Work-file format (``StageSpec.work_format``): bump when the steps read work files an older version did not
# write. 2: per-shard origins.npy + origin_names.json (1b162e5), which earlier work folders lack.
WORK_FORMAT = 2


class DedupSettings(StageSettings):
    """Dedup settings (defaults from ``DedupConfig`` / ``PriorityConfig``, see docs/benchmarks.md)."""

    shingle_size: int = Field(_D.shingle_size, ge=1, description="tokens per shingle")
    num_perm: int = Field(_D.num_perm, ge=8, le=1024)
    lsh_threshold: float = Field(_D.lsh_threshold, gt=0, lt=1, description="Jaccard the LSH bands are tuned for")
    bands: int | None = Field(_D.bands, ge=1)
    rows: int | None = Field(_D.rows, ge=1)
    verify_threshold: float = Field(_D.verify_threshold, gt=0, le=1,
                                    description="real similarity needed for a duplicate")
    metric: Literal["jaccard", "containment"] = _D.metric
    edit_rate: float = Field(_D.edit_rate, le=1, description="differing tokens allowed per text token beyond "
                             "exact_tokens (token diff of each candidate pair); negative: shingle similarity only")
    exact_tokens: int = Field(_D.exact_tokens, ge=0, description="texts this short (tokens outside figures) must "
                              "match token for token, apart from text added before/after")
    symbol_change_rate: float = Field(_D.symbol_change_rate, le=1, description="math symbols (numbers, variables, "
                                      "TeX, operators) replaced by other symbols, per text token beyond "
                                      "symbol_exact_tokens; negative disables")
    symbol_exact_tokens: int = Field(_D.symbol_exact_tokens, ge=0, description="texts this short (tokens outside "
                                     "figures) may not replace any math symbol")
    frames: bool = Field(_D.frames, description="text only one side has at the very start or end (no math "
                         "symbols: a header, footer, signature) is not counted as edits")
    max_bucket_pairs: int = Field(_D.max_bucket_pairs, ge=2,
                                  description="buckets with more members give star + chain pairs, not all")
    seed: int = _D.seed
    priority: list[str] = Field(default_factory=lambda: list(_P.order))
    source_rank: list[str] = Field(default_factory=lambda: list(_P.source_rank))
    bucket_tasks: int | None = Field(None, ge=1, description="band groups matched in parallel (default: shards)")
    bucket_partitions: int = Field(1, ge=1, description="key ranges per band (smaller bucket tasks)")
    verify_memory_mb: float = Field(128, gt=0, description="memory a verify task may hold at once for its "
                                    "candidate pairs and their documents (it verifies in parts that fit)")
    cluster_rounds: int = Field(30, ge=1, description="maximum label-propagation rounds (stops at convergence)")
    tasks: int | None = Field(None, ge=1, description="shards (tasks) per phase; default: the run's tasks")
    against_index_dir: str | None = None
    save_index_dir: str | None = None

    @model_validator(mode="after")
    def _check(self):
        bad = [f for f in self.priority if f not in FIELDS]
        if bad:
            raise ValueError(f"priority: unknown field(s) {bad}; known: {', '.join(FIELDS)}")
        self.config()
        return self

    def config(self) -> DedupConfig:
        """The config, with bands x rows resolved here, once: the steps' workers then never load the
        optimizer (datasketch imports scipy: ~0.35 s and ~30 MB a worker)."""
        settings = self.model_dump()
        cfg = DedupConfig(**{f.name: settings[f.name] for f in fields(DedupConfig) if f.name in settings})
        bands, rows = cfg.band_shape
        return replace(cfg, bands=bands, rows=rows)

    def priority_config(self) -> PriorityConfig:
        return PriorityConfig(order=tuple(self.priority), source_rank=tuple(self.source_rank))


def _shards(settings: DedupSettings, ctx: StageContext) -> int:
    return settings.tasks or ctx.tasks


def build(settings: DedupSettings, ctx: StageContext) -> Iterator[Phase]:
    """The phases, lazily: a cluster round is only built when the previous one still changed labels."""
    from corpus.dedup.store import check_index_params

    cfg = settings.config()
    if settings.against_index_dir:
        check_index_params(settings.against_index_dir, cfg.signature_fields())
    work, n, index = f"{ctx.stage_dir}/work", _shards(settings, ctx), settings.against_index_dir
    groups = min(settings.bucket_tasks or n, cfg.band_shape[0] + 1)  # + the exact band
    yield Phase("signatures", [ParquetShardReader(ctx.input_dir),
                               DedupSignatures(work, cfg, settings.priority_config())], tasks=n)
    yield Phase("buckets", [DedupBuckets(work, cfg, n, settings.bucket_partitions, index)],
                tasks=groups * settings.bucket_partitions)
    yield Phase("verify", [DedupVerify(work, cfg, n, index, settings.verify_memory_mb)], tasks=n)
    for k in range(settings.cluster_rounds):
        if k and round_converged(work, k - 1, n):
            break
        yield Phase(f"cluster_{k:02d}", [DedupClusterRound(work, k, n, index)], tasks=n)
    yield Phase("filter", [ParquetShardReader(ctx.input_dir),
                           DedupFilter(work, ctx.removed_dir, n, settings.cluster_rounds, index),
                           ParquetShardWriter(ctx.kept_dir)], tasks=n)


def _sum_json(folder: str) -> dict:
    """Sum the per-task count files of ``folder``. A missing folder is no counts; a count file that cannot be
    read or parsed is an :class:`InputError` naming it (never an empty result)."""
    total: dict = {}
    for f in list_shards(folder, exts=(".json",)):
        try:
            with open_file(f, "rb") as fh:
                counts = json.load(fh)
            if not isinstance(counts, dict):
                raise ValueError(f"expected a JSON object, got {type(counts).__name__}")
            for k, v in counts.items():
                if isinstance(v, list):
                    total[k] = [a + b for a, b in zip(total.get(k, [0] * len(v)), v, strict=True)]
                else:
                    total[k] = total.get(k, 0) + v
        except (OSError, ValueError, TypeError) as e:
            raise InputError(f"{f}: cannot read dedup counts: {type(e).__name__}: {e}") from None
    return total


def finalize(settings: DedupSettings, ctx: StageContext) -> dict:
    """Write ``dedup_report.json`` (and the index when ``save_index_dir`` is set); return its summary."""
    from corpus.dedup.index import save_index

    cfg, work, n = settings.config(), f"{ctx.stage_dir}/work", _shards(settings, ctx)
    counts = _sum_json(f"{work}/filter")
    verify = _sum_json(f"{work}/verify")
    removed = {k: v for k, v in counts.items() if k.endswith("_duplicate")}
    report = {
        "params": cfg.to_dict() | {"priority": settings.priority, "source_rank": settings.source_rank},
        "documents": counts.get("documents", 0),
        "kept": counts.get("kept", 0),
        "kept_with_copies": counts.get("kept_with_copies", 0),  # survivors with dup_count > 1
        "removed": sum(removed.values()),
        "removed_by_reason": removed,
        "candidate_pairs": verify.get("candidate_pairs", 0),
        "verified_pairs": verify.get("verified_pairs", 0),  # duplicates (edges) found
        "already_joined_pairs": verify.get("already_joined_pairs", 0),  # not verified: already in one cluster
        "candidate_similarity_hist": verify.get("similarity_hist", []),
        "cluster_rounds": final_round(work, n, settings.cluster_rounds) + 1,
        "shards": n,
        "against_index": settings.against_index_dir,
    }
    if settings.save_index_dir:
        info = save_index(work, n, settings.save_index_dir, cfg.signature_fields(), settings.against_index_dir)
        report["index_saved"] = {"dir": settings.save_index_dir, "shards": info["shards"],
                                 "documents": info["alive"]}
    write_json(report, f"{ctx.stage_dir}/dedup_report.json")
    return {k: report[k] for k in ("documents", "kept", "removed", "removed_by_reason", "verified_pairs")}


def work_key(settings: DedupSettings, input_dir: str) -> str:
    """What ``out/work/format.json`` records: the settings, the input folder and :data:`WORK_FORMAT`."""
    payload = {"settings": settings.model_dump(mode="json"), "input": input_dir, "work_format": WORK_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def clear_stale_work(settings: DedupSettings, input_dir: str, out: str,
                     log: Callable[[str], None] = _stderr) -> bool:
    """Start clean when ``out/work`` was written by other settings or another work format (its
    ``format.json`` differs or is missing while the stage's work folders exist): remove those folders and the
    outputs (``kept``, ``removed``, ``dedup_report.json``), log one line why, and return True. Top-level files
    of ``out/work`` and the folder holding ``input_dir`` belong to the caller and stay. Then record the marker."""
    work, marker, key = f"{out}/work", f"{out}/work/format.json", work_key(settings, input_dir)
    fs, _, (work_path,) = fsspec.get_fs_token_paths(work)  # listed paths come without the protocol, like these
    in_path = fsspec.get_fs_token_paths(input_dir)[2][0].rstrip("/")
    old = None
    if fs.exists(marker):
        with fs.open(marker, "rt") as fh:
            old = json.load(fh)
    stale = [d for d in (fs.ls(work_path, detail=False) if fs.isdir(work_path) else [])
             if fs.isdir(d) and not (in_path + "/").startswith(d.rstrip("/") + "/")]
    cleared = bool(stale) and (old or {}).get("hash") != key
    if cleared:
        why = ("no format marker (written by an older version)" if old is None else
               f"work format {old.get('work_format')} -> {WORK_FORMAT}" if old.get("work_format") != WORK_FORMAT
               else "other settings or input")
        log(f"{work}: work files from {why}: starting clean")
        for path in [*stale, *(f"{out}/{sub}" for sub in ("kept", "removed", "dedup_report.json"))]:
            if fs.exists(path):
                fs.rm(path, recursive=True)
    write_json({"hash": key, "work_format": WORK_FORMAT}, marker)
    return cleared


def run_standalone(settings: DedupSettings, input_dir: str, out: str, *, executor: str = "local",
                   workers: int = -1, ray_address: str | None = None,
                   log: Callable[[str], None] = _stderr) -> dict:
    """Run the stage outside a manifest: shards of ``input_dir`` -> ``out/kept``, ``out/removed`` and
    ``out/dedup_report.json`` (work files and logs under ``out/work``). Returns the finalize summary.
    A rerun resumes, unless the work files came from other settings or work format: then it starts clean
    (:func:`clear_stale_work`)."""
    from pipelines.executors import make_executor, release_memory
    from pipelines.runner import RunError

    clear_stale_work(settings, input_dir, out, log)
    tasks = settings.tasks or 1
    ctx = StageContext(run_dir=out, stage_dir=out, input_dir=input_dir, tasks=tasks, manifest=None)
    for phase in build(settings, ctx):
        logging_dir = f"{out}/work/logs/{phase.name}"
        # label rounds are light (label look-ups for the nodes with edges): run them in this process rather
        # than paying a worker start-up per round; the local executor only (Ray keeps its workers)
        light = executor == "local" and phase.name.startswith("cluster_")
        ex = make_executor(executor, phase.steps, tasks=phase.tasks, workers=1 if light else workers,
                           logging_dir=logging_dir, ray_address=ray_address)
        ex.run()
        if light:
            release_memory()  # what a label round left, before the next one (and the filter's workers)
        missing = ex.get_incomplete_ranks(range(phase.tasks))
        if missing:
            raise RunError(f"dedup phase {phase.name!r}: {len(missing)} task(s) failed (ranks {missing[:10]}); "
                           f"see {logging_dir}/logs/ . Rerun the same command to resume.")
    return finalize(settings, ctx)


STAGE = StageSpec(
    name="dedup",
    settings=DedupSettings,
    build=build,
    finalize=finalize,
    work_format=WORK_FORMAT,
    description="exact + MinHash near-duplicate removal (math-safe, verified, distributed clustering, index)",
)

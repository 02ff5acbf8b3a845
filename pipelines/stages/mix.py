"""``mix``: the last stage. Mixes the previous stage's shards (selected per source by column values, e.g.
``match: {source: web, lang: zh}``) or explicit Parquet paths into the run's corpus, with ``manifest.json``.

The plan (which copy of which document goes to which shard position) is computed in the driver from ids and
token counts only; then one phase scatters the input files into per-shard buckets (ranks over input files)
and one writes the shards (ranks over shards). Both are resumable and the output is byte-identical for the
same inputs and seed. Settings are :class:`corpus.mix.MixConfig`'s, plus the tokenizer used for rows that
have no ``n_tokens`` yet.
"""

from __future__ import annotations

import os
import shutil

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field

from corpus.mix import MixConfig, Plan, prepare, remove_stale_shards, scatter, write_release_manifest, write_shard
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec


class MixSettings(StageSettings, MixConfig):
    tokenizer: str = Field(default="qwen2", description="counts rows without n_tokens (qwen2 or a tokenizer.json)")
    keep_work: bool = Field(default=False, description="keep the per-shard buckets after the corpus is written")

    def mix_config(self) -> MixConfig:
        return MixConfig.model_validate(self.model_dump(exclude={"tokenizer", "keep_work"}))


def _plan_path(work_dir: str) -> str:
    return f"{work_dir}/plan.mixplan"


class MixScatter(PipelineStep):
    """Rank r reads input files r, r+W, ... once and writes their planned rows into per-shard buckets."""

    name = "mix scatter"
    type = "🔀 - MIX"

    def __init__(self, work_dir: str):
        super().__init__()
        self.work_dir = work_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        plan = Plan.load(_plan_path(self.work_dir))
        for i in range(rank, len(plan.files), world_size):
            info = scatter(plan, i, self.work_dir)
            self.stat_update("files")
            self.stat_update("rows_used", value=info["rows_used"])
        yield from ()


class MixShardWriter(PipelineStep):
    """Rank r writes shards r, r+W, ... of the plan into the corpus folder."""

    name = "mix shards"
    type = "💽 - WRITER"

    def __init__(self, work_dir: str, out_dir: str, config: dict):
        super().__init__()
        self.work_dir, self.out_dir, self.config = work_dir, out_dir, config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        cfg = MixConfig.model_validate(self.config)
        plan = Plan.load(_plan_path(self.work_dir))
        for s in range(rank, plan.n_shards, world_size):
            info = write_shard(plan, s, self.work_dir, self.out_dir, cfg)
            self.stat_update("shards")
            self.stat_update("documents", value=info["rows"])
            self.stat_update("bytes", value=info["bytes"])
        yield from ()


def build(settings: MixSettings, ctx: StageContext) -> list[Phase]:
    cfg = settings.mix_config()
    work_dir = f"{ctx.stage_dir}/work"
    out_dir = ctx.extra["corpus_dir"]
    plan = prepare(cfg, work_dir, default_inputs=ctx.input_dir, tokenizer=settings.tokenizer)
    remove_stale_shards(plan, cfg, out_dir)
    missing = [s for s in range(plan.n_shards) if not os.path.exists(f"{out_dir}/{plan.shard_name(s, cfg.prefix)}")]
    if missing and not os.path.isdir(f"{work_dir}/buckets"):  # buckets were cleaned up after an earlier run
        shutil.rmtree(f"{work_dir}/inputs", ignore_errors=True)
        shutil.rmtree(f"{ctx.stage_dir}/logs/scatter", ignore_errors=True)
        shutil.rmtree(f"{ctx.stage_dir}/logs/shards", ignore_errors=True)
    return [
        Phase("scatter", [MixScatter(work_dir)], tasks=max(1, min(ctx.tasks, len(plan.files)))),
        Phase("shards", [MixShardWriter(work_dir, out_dir, cfg.model_dump(mode="json"))],
              tasks=max(1, min(ctx.tasks, plan.n_shards))),
    ]


def finalize(settings: MixSettings, ctx: StageContext) -> dict:
    cfg = settings.mix_config()
    work_dir = f"{ctx.stage_dir}/work"
    plan = Plan.load(_plan_path(work_dir))
    manifest = write_release_manifest(plan, cfg, work_dir, ctx.extra["corpus_dir"])
    if not settings.keep_work:
        shutil.rmtree(f"{work_dir}/buckets", ignore_errors=True)
    for warning in manifest["warnings"]:
        print(f"    mix: warning: {warning}")
    return {
        "documents": manifest["documents"], "tokens": manifest["tokens"], "shards": len(manifest["shards"]),
        "sources": {n: {k: s[k] for k in ("documents", "tokens", "epochs", "requested_share", "realized_share")}
                    for n, s in manifest["sources"].items()},
        "unmatched": manifest["unmatched"], "warnings": manifest["warnings"],
        "accounting": manifest["accounting"] and manifest["accounting"] | {
            "reads_input_dir": all(not s.input_paths for s in cfg.sources.values())},
    }


STAGE = StageSpec(
    name="mix",
    settings=MixSettings,
    build=build,
    finalize=finalize,
    writes_corpus=True,
    description="mix sources by weight or token target into zstd Parquet shards with a release manifest.json",
)

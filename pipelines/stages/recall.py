"""``recall``: iterative recall rounds with domain expansion over the documents reaching this stage.

The documents pass through unchanged (kept); in the driver, :func:`classifiers.recall.run_rounds` treats them as
the pool (they need ``url`` or ``domain``), trains a model per round on the seed files plus what earlier rounds
found, and writes ``{stage_dir}/recall/round_NN/`` (model, scores, candidates, report) and ``recall.json``.
Finished rounds are skipped on a rerun. Use it after ``extract`` (and ``filter``) on a web crawl, then point a
``classify`` stage's ``model_path`` at the last round's model.
"""

from __future__ import annotations

from pydantic import Field

from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.stages.classify import TrainBlock
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter


class RecallSettings(StageSettings):
    train: TrainBlock = Field(description="seed positives/negatives and fastText parameters of every round")
    rounds: int = Field(4, ge=1)
    domain_threshold: float = Field(0.10, gt=0, lt=1, description="recalled share that makes a math domain")
    min_domain_docs: int = Field(1, ge=1)
    prefix_depth: int = Field(1, ge=0, description="URL path segments of a math path prefix")
    min_prefix_recalled: int = Field(1, ge=1)
    candidate_min_score: float = Field(0.0, ge=0, le=1)
    max_candidates: int | None = Field(None, ge=1)
    negative_ratio: float = Field(1.0, ge=0)
    negative_max_score: float = Field(0.1, ge=0, le=1)
    threshold: float | None = Field(None, ge=0, le=1, description="recall threshold (default: card threshold)")


def build(settings: RecallSettings, ctx: StageContext) -> list[Phase]:
    return [Phase("pass", [ParquetShardReader(ctx.input_dir), ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)]


def finalize(settings: RecallSettings, ctx: StageContext) -> dict:
    from classifiers.recall import RecallConfig, run_rounds

    cfg = RecallConfig(**settings.model_dump(exclude={"train"}), params=settings.train.params())
    summary = run_rounds(f"{ctx.stage_dir}/recall", [ctx.kept_dir], settings.train.positives_paths,
                         settings.train.negatives_paths, cfg)
    last = summary["rounds"][-1]
    return {"rounds": len(summary["rounds"]), "recalled": last["recalled"], "math_domains": last["math_domains"],
            "model": last["model"], "report": f"{ctx.stage_dir}/recall/recall.json"}


STAGE = StageSpec(
    name="recall",
    settings=RecallSettings,
    build=build,
    finalize=finalize,
    description="recall rounds: math domains and URL paths of a web pool, retrained classifiers per round",
)

"""``recall``: iterative recall rounds with domain expansion over the documents reaching this stage.

The documents pass through unchanged (kept) and are the pool. Each round (:func:`classifiers.recall.iter_rounds`)
trains its model in the driver on the seed files plus what earlier rounds found, then scores the pool as an
executor phase (``score_round_NN``: one task per shard group, each writes ``id, url, domain, math_score`` of its
documents), and back in the driver computes the per-domain recall shares, math URL paths, candidates and the
round report under ``{stage_dir}/recall/round_NN/``, plus ``recall.json``. The documents need ``url`` or
``domain``. Finished rounds are skipped on a rerun. Use it after ``extract`` (and ``filter``) on a web crawl,
then point a ``classify`` stage's ``model_path`` at the last round's model.

The phases of a round are produced one at a time (``build`` is a generator): the runner runs each phase before
it asks for the next one, so round N+1 is trained on the scores of round N.
"""

from __future__ import annotations

from collections.abc import Iterator

from datatrove.pipeline.base import PipelineStep
from pydantic import Field

from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.stages.classify import TrainBlock
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter


class RecallSettings(StageSettings):
    train: TrainBlock = Field(description="seed positives/negatives and fastText parameters of every round")
    rounds: int = Field(4, ge=1)
    domain_threshold: float = Field(0.10, gt=0, lt=1, description="recalled share that makes a math domain")
    min_domain_docs: int = Field(1, ge=1)
    min_domain_recalled: int = Field(2, ge=1, description="recalled documents a math domain needs")
    domain_z: float = Field(1.0, ge=0, description="z of the Wilson lower bound the recalled share is judged by "
                            "(0: the plain share)")
    prefix_depth: int = Field(1, ge=0, description="URL path segments of a math path prefix")
    min_prefix_recalled: int = Field(1, ge=1)
    candidate_min_score: float = Field(0.0, ge=0, le=1)
    max_candidates: int | None = Field(None, ge=1)
    negative_ratio: float = Field(1.0, ge=0)
    negative_max_score: float = Field(0.1, ge=0, le=1)
    threshold: float | None = Field(None, ge=0, le=1, description="recall threshold (default: card threshold)")
    batch_size: int = Field(1024, ge=1, description="documents per batched fastText call when scoring the pool")


class PoolScoreStep(PipelineStep):
    """Scores the documents of a rank with a round's model; writes ``{scores_dir}/{rank:05d}.parquet``."""

    name = "🧮 recall pool scores"
    type = "🔬 - CLASSIFIER"

    def __init__(self, model: str, threshold: float, scores_dir: str, batch_size: int = 1024):
        super().__init__()
        self.model, self.threshold, self.scores_dir, self.batch_size = model, threshold, scores_dir, batch_size

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from classifiers.recall import pool_scores_table, score_records
        from classifiers.score import load_classifier
        from corpus.io import write_parquet

        clf = load_classifier(self.model, self.threshold)
        records = ({"id": d.id, "text": d.text, "url": d.metadata.get("url"), "domain": d.metadata.get("domain")}
                   for d in data or ())
        with self.track_time():
            ps = score_records(clf, records, self.batch_size)
        self.stat_update("scored", value=len(ps.ids))
        self.stat_update("recalled", value=int((ps.scores >= clf.threshold).sum()))
        write_parquet(pool_scores_table(ps), f"{self.scores_dir}/{rank:05d}.parquet")
        yield from ()


def build(settings: RecallSettings, ctx: StageContext) -> Iterator[Phase]:
    from classifiers.recall import RecallConfig, Rounds, iter_rounds

    yield Phase("pass", [ParquetShardReader(ctx.input_dir), ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)
    cfg = RecallConfig(**settings.model_dump(exclude={"train"}), params=settings.train.params())
    rounds = Rounds(iter_rounds(f"{ctx.stage_dir}/recall", [ctx.kept_dir], settings.train.positives_paths,
                                settings.train.negatives_paths, cfg, progress=lambda m: print(f"    recall: {m}")))
    for req in rounds:
        step = PoolScoreStep(req.model, req.threshold, req.scores_dir, settings.batch_size)
        yield Phase(f"score_round_{req.round:02d}", [ParquetShardReader(ctx.kept_dir), step], tasks=ctx.tasks)
    ctx.extra["recall_summary"] = rounds.summary


def finalize(settings: RecallSettings, ctx: StageContext) -> dict:
    summary = ctx.extra.get("recall_summary")
    if summary is None:
        from classifiers.recall import RecallError

        raise RecallError(f"recall: {ctx.stage_dir}: the rounds did not finish (no summary)")
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

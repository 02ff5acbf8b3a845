"""``classify``: fastText math scoring. Writes ``math_score`` on every document and keeps those at or above the
threshold (``keep_all: true`` keeps everything); removed documents go to ``removed/`` with ``reason:
low_math_score`` and ``math_threshold``.

Models are per source: ``model_path`` (every source) and/or ``model_paths: {web: ..., book: ..., code: ...}``
(``default`` is the fallback). A ``train:`` block trains models in the driver before scoring, keyed the same
way, e.g. ``train: {default: {positives_paths: [seed/math.jsonl], negatives_paths: [seed/general.jsonl]}}``;
a model already trained on the same data and parameters is reused. Documents whose source has no model pass
through unscored.
"""

from __future__ import annotations

from typing import Annotated

from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict, Field, model_validator

from classifiers.preprocess import MAX_CHARS, MAX_TOKENS
from corpus.errors import MathcorpusError
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter


class TrainBlock(BaseModel):
    """Train one model from JSONL/Parquet files of records with ``text`` (defaults: DeepSeekMath)."""

    model_config = ConfigDict(extra="forbid")
    positives_paths: list[str] = Field(min_length=1, description="math documents")
    negatives_paths: list[str] = Field(min_length=1, description="general documents")
    pages_paths: list[str] = Field(default_factory=list, description="labelled page lists (file, label, site ...), "
                                   "split by site: train sites join the data, validation sites pick the threshold")
    page_repeat: int = Field(8, ge=1, description="times each train-site page counts")
    model_dir: str | None = Field(None, description="where to write the model (default: the stage's models/)")
    dim: int = Field(256, ge=1)
    lr: float = Field(0.1, gt=0)
    word_ngrams: int = Field(3, ge=1)
    min_count: int = Field(3, ge=1)
    epoch: int = Field(3, ge=1)
    bucket: int = Field(500_000, ge=1)
    threads: int = Field(1, ge=1, description="1 makes training reproducible")
    seed: int = 0
    valid_fraction: float = Field(0.1, ge=0, lt=1)
    max_chars: int = Field(MAX_CHARS, ge=1, description="characters of a document the model reads")
    max_tokens: int = Field(MAX_TOKENS, ge=1, description="tokens of a document the model reads")
    target_recall: float | None = Field(None, gt=0, le=1, description="pick the threshold on validation")
    target_precision: float | None = Field(None, gt=0, le=1)

    def params(self):
        from classifiers.model import TrainParams

        skip = {"positives_paths", "negatives_paths", "pages_paths", "model_dir"}
        return TrainParams(**self.model_dump(exclude=skip))


class ClassifySettings(StageSettings):
    model_path: str | None = Field(None, description="model folder (or .bin) used for every source")
    model_paths: dict[str, str] = Field(default_factory=dict, description="per-source models; key 'default' = rest")
    train: dict[str, TrainBlock] = Field(default_factory=dict, description="per-source models to train first")
    threshold: float | None = Field(None, ge=0, le=1, description="overrides the models' card thresholds")
    thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict,
                                                                      description="per-source threshold overrides")
    keep_all: bool = Field(False, description="score only: keep every document")
    batch_size: int = Field(512, ge=1, description="documents per batched fastText call")

    @model_validator(mode="after")
    def _some_model(self):
        if not (self.model_path or self.model_paths or self.train):
            raise ValueError("give model_path, model_paths or a train block")
        return self

    def models(self, trained: dict[str, str]) -> dict[str, str]:
        out = {"default": self.model_path} if self.model_path else {}
        return {**out, **self.model_paths, **trained}


class ClassifyError(MathcorpusError):
    """A classify stage model that is missing."""


class MathScoreStep(PipelineStep):
    """Scores documents in batches with per-source models (loaded lazily, once per worker process)."""

    name = "🧮 math score"
    type = "🔬 - CLASSIFIER"

    def __init__(self, models: dict[str, str], removed_dir: str, *, threshold: float | None = None,
                 thresholds: dict[str, float] | None = None, keep_all: bool = False, batch_size: int = 512):
        super().__init__()
        self.models, self.removed_dir = models, removed_dir
        self.threshold, self.thresholds = threshold, thresholds or {}
        self.keep_all, self.batch_size = keep_all, batch_size

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import math

        from classifiers.score import REMOVED_REASON, THRESHOLD_FIELD, ModelSet, batched
        from pipelines.steps.io import RemovedSink

        models = ModelSet(self.models, self.threshold, self.thresholds)
        sink = RemovedSink(self.removed_dir, rank, [THRESHOLD_FIELD])
        try:
            for batch in batched(data or (), self.batch_size):
                with self.track_time():
                    scores, thresholds = models.score([d.text for d in batch],
                                                      [d.metadata.get("source") for d in batch])
                for doc, score, thr in zip(batch, scores.tolist(), thresholds.tolist(), strict=True):
                    source = doc.metadata.get("source") or "none"
                    if math.isnan(score):
                        self.stat_update("unscored", f"unscored_{source}")
                        yield doc
                        continue
                    doc.metadata["math_score"] = score
                    if self.keep_all or score >= thr:
                        self.stat_update("kept", f"kept_{source}")
                        yield doc
                    else:
                        self.stat_update("removed", f"removed_{source}")
                        sink.remove(doc, REMOVED_REASON, math_threshold=thr)
        except BaseException:
            sink.abort()
            raise
        sink.close()


def train_models(settings: ClassifySettings, ctx: StageContext, progress=print) -> dict[str, str]:
    """Train (or reuse) the models of the ``train`` block in the driver; ``{source: model_dir}``."""
    from classifiers.model import train_from_files

    out = {}
    for source, block in settings.train.items():
        model_dir = block.model_dir or f"{ctx.stage_dir}/models/{source}"
        card = train_from_files(model_dir, block.positives_paths, block.negatives_paths, block.params(),
                                pages=block.pages_paths, reuse=True)
        v = card.get("validation", {}).get("at_threshold", {})
        progress(f"    classify: model {source!r} at {model_dir} (threshold {card['threshold']:.3f}, "
                 f"validation P={v.get('precision', float('nan')):.3f} R={v.get('recall', float('nan')):.3f})")
        out[source] = model_dir
    return out


def build(settings: ClassifySettings, ctx: StageContext) -> list[Phase]:
    from classifiers.model import model_paths

    models = settings.models(train_models(settings, ctx))
    for source, path in models.items():
        if not model_paths(path)[0].exists():
            raise ClassifyError(f"classify: model for source {source!r}: {model_paths(path)[0]} does not exist")
    ctx.extra["classify_models"] = models
    step = MathScoreStep(models, ctx.removed_dir, threshold=settings.threshold, thresholds=settings.thresholds,
                          keep_all=settings.keep_all, batch_size=settings.batch_size)
    return [Phase("classify", [ParquetShardReader(ctx.input_dir), step, ParquetShardWriter(ctx.kept_dir)],
                  tasks=ctx.tasks)]


def finalize(settings: ClassifySettings, ctx: StageContext) -> dict:
    from classifiers.score import ModelSet

    models = ctx.extra.get("classify_models") or settings.models({})
    described = ModelSet(models, settings.threshold, settings.thresholds).describe()
    return {"models": described, "keep_all": settings.keep_all}


STAGE = StageSpec(
    name="classify",
    settings=ClassifySettings,
    build=build,
    finalize=finalize,
    description="fastText math recall: write math_score, keep documents at or above the threshold",
)

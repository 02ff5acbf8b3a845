"""``extract``: read the manifest's inputs (records, web pages, books, code) into the document schema.

Web pages keep their formulas as LaTeX (``corpus.extract.math``) and their tables/code as Markdown; books
are split under a token budget; code trees skip vendored, generated and binary files. A page or file that
fails is a reject (``{stage}/rejects/*.jsonl``: file, record, reason) and a ``rejected_<reason>`` counter in
the phase stats; it never fails the task. With ``prefilter_dir`` (a first-pass model folder, or ``prefilter_train``
to train one from seed text first) web pages pass a cheap first pass (:mod:`corpus.extract.prefilter`) and only
the math candidates are extracted; the others go to ``removed/`` with their signals and provenance.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.extract import ExtractReader, with_options
from pipelines.steps.ingest import plan_inputs
from pipelines.steps.io import ParquetShardWriter

PREFILTER_KEYS = ("prefilter_dir", "prefilter_threshold", "prefilter_min_markup", "prefilter_domains",
                  "prefilter_train")


class PrefilterTrain(BaseModel):
    """Train the first-pass model in the driver before extracting (small seed sets, e.g. the demo)."""

    model_config = ConfigDict(extra="forbid")
    positives_paths: list[str]
    negatives_paths: list[str]
    dim: int = Field(default=16, ge=1)
    epoch: int = Field(default=25, ge=1)
    lr: float = Field(default=0.3, gt=0)
    min_count: int = Field(default=1, ge=1)
    bucket: int = Field(default=20_000, ge=1)
    threshold: float = Field(default=0.5, ge=0, le=1)


class ExtractSettings(StageSettings):
    """Defaults for every input; an input's own ``options`` override them."""

    timeout: float = Field(default=20.0, ge=0, description="seconds per web page (0: no limit)")
    max_page_bytes: int = Field(default=10_000_000, gt=0, description="larger pages are rejected")
    max_tokens: int = Field(default=3500, ge=64, description="token budget of one book part")
    max_code_bytes: int = Field(default=1_000_000, gt=0, description="larger code files are skipped")
    prefilter_dir: str | None = Field(default=None, description="first-pass model folder: web pages that are not "
                                  "math candidates go to removed/ unextracted, with their signals")
    prefilter_threshold: float | None = Field(default=None, ge=0, le=1, description="default: the model card's")
    prefilter_min_markup: int = Field(default=3, ge=1, description="formula markup items that make a candidate")
    prefilter_domains: list[str] = Field(default_factory=list, description="math-rich domains: always candidates")
    prefilter_train: PrefilterTrain | None = None

    def handler_options(self) -> dict:
        return self.model_dump(exclude=set(PREFILTER_KEYS))


def first_pass(settings: ExtractSettings, ctx: StageContext):
    """The first pass of the stage (training its model first when asked), or None."""
    from classifiers.firstpass import FirstPass
    from corpus.extract.prefilter import FirstPassSettings

    model, threshold = settings.prefilter_dir, settings.prefilter_threshold
    if settings.prefilter_train is not None:
        from classifiers.model import TrainParams, train_from_files

        t = settings.prefilter_train
        model = model or f"{ctx.stage_dir}/prefilter_model"
        params = TrainParams(dim=t.dim, epoch=t.epoch, lr=t.lr, min_count=t.min_count, bucket=t.bucket, threads=1)
        train_from_files(model, t.positives_paths, t.negatives_paths, params, reuse=True)
        threshold = t.threshold if threshold is None else threshold
    if model is None:
        return None
    fp = FirstPass(model, FirstPassSettings(threshold=threshold, min_markup=settings.prefilter_min_markup,
                                            domains=frozenset(settings.prefilter_domains)))
    fp.clf.model  # noqa: B018 - a missing or broken model fails here, before any work
    fp._clf = None  # workers load their own copy
    return fp


def build(settings: ExtractSettings, ctx: StageContext) -> list[Phase]:
    files = with_options(plan_inputs(ctx.manifest.inputs), settings.handler_options())
    reader = ExtractReader(files, rejects_dir=f"{ctx.stage_dir}/rejects", firstpass=first_pass(settings, ctx),
                           removed_dir=ctx.removed_dir)
    return [Phase("extract", [reader, ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)]


STAGE = StageSpec(
    name="extract",
    settings=ExtractSettings,
    build=build,
    description="read inputs (JSONL/Parquet records, HTML/WARC/WET, books, code) into the document schema",
)

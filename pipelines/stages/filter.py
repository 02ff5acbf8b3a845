"""``filter``: language gate, math-aware quality heuristics and quality tiers.

Per document, in order: the language gate (``languages``; LID runs where ``lang`` is missing), the
heuristics of :mod:`corpus.filters.heuristics` (length, boilerplate, character/word ratios, Gopher-style
repetition; each threshold documented there, ``null`` disables a rule or a whole filter), then the quality
tier (:mod:`corpus.filters.tiers`) written to ``quality_tier`` and ``min_tier``. Removed documents go to
``removed/`` with ``reason`` (``lang.not_selected``, ``length.too_short``, ``repetition.dup_line_frac``,
``tier.below_min`` ...), ``filter_value`` (the measured statistic) and ``filter_threshold``.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from corpus.filters.heuristics import BoilerplateConfig, HeuristicsConfig, LengthConfig, RatioConfig, RepetitionConfig
from corpus.filters.tiers import TierConfig
from corpus.io import open_file
from corpus.langid import LanguageIdentifier
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.filter import LanguageGate, QualityFilterStep
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter


class FilterSettings(StageSettings):
    """Filter settings; defaults measured by ``bench/bench_filter.py`` (< 1 % of math documents removed)."""

    languages: list[str] | None = Field(["en", "zh"], description="ISO 639-1 codes to keep; null: any language")
    min_lang_score: float = Field(0.0, ge=0, le=1, description="minimum lang_score of a kept language")
    keep_undetermined: bool = Field(True, description="keep 'und' documents (formula-only, no prose)")
    lid_backend: Literal["py3langid", "fasttext"] = Field("py3langid", description="LID where lang is missing")
    lid_model_path: str | None = Field(None, description="fastText LID model file (lid_backend: fasttext)")
    length: LengthConfig | None = Field(default_factory=LengthConfig)
    boilerplate: BoilerplateConfig | None = Field(default_factory=BoilerplateConfig)
    ratios: RatioConfig | None = Field(default_factory=RatioConfig)
    repetition: RepetitionConfig | None = Field(default_factory=RepetitionConfig)
    tiers: TierConfig = Field(default_factory=TierConfig)
    min_tier: int = Field(0, ge=0, le=5, description="documents below this quality tier are removed")
    tier_model_path: str | None = Field(
        None, description="optional second fastText model (a classifiers-API model folder or .bin) whose "
                          "P(tier_model_label) is the quality part of the tier; train it with the classifiers "
                          "API on high-quality (positive) vs low-quality math documents")
    tier_model_label: str = Field("math", description="the positive ('high quality') label of tier_model_path "
                                                      "(classifiers-API models use math/other)")

    def heuristics(self) -> HeuristicsConfig:
        return HeuristicsConfig(length=self.length, boilerplate=self.boilerplate, ratios=self.ratios,
                                repetition=self.repetition)


def build_step(settings: FilterSettings, removed_dir: str) -> QualityFilterStep:
    """The filter step for these settings (also used in-process by ``mathcorpus filter``)."""
    tier_model = None
    if settings.tier_model_path:
        from classifiers.model import MathClassifier

        tier_model = MathClassifier(settings.tier_model_path, label=settings.tier_model_label)
    return QualityFilterStep(
        gate=LanguageGate(settings.languages, settings.min_lang_score, settings.keep_undetermined),
        lid=LanguageIdentifier(settings.lid_backend, settings.lid_model_path),
        heuristics=settings.heuristics(), tiers=settings.tiers, min_tier=settings.min_tier,
        removed_dir=removed_dir, tier_model=tier_model,
    )


def build(settings: FilterSettings, ctx: StageContext) -> list[Phase]:
    step = build_step(settings, ctx.removed_dir)
    return [Phase("filter", [ParquetShardReader(ctx.input_dir), step, ParquetShardWriter(ctx.kept_dir)],
                  tasks=ctx.tasks)]


def column_counts(folder: str, column: str) -> dict[str, int]:
    """Value counts of one column over a folder's Parquet shards (footers + that column only)."""
    import pyarrow.parquet as pq

    from pipelines.accounting import folder_files

    counts: Counter = Counter()
    for f in folder_files(folder, missing_ok=True):  # absent: nothing removed; unreadable: an error
        with open_file(f, "rb") as fh:
            pf = pq.ParquetFile(fh)
            if column in pf.schema_arrow.names:
                counts.update(str(v) for v in pf.read(columns=[column]).column(column).to_pylist())
    return dict(counts.most_common())


def finalize(settings: FilterSettings, ctx: StageContext) -> dict:
    return {"removed_by_reason": column_counts(ctx.removed_dir, "reason"),
            "quality_tiers": dict(sorted(column_counts(ctx.kept_dir, "quality_tier").items()))}


STAGE = StageSpec(
    name="filter",
    settings=FilterSettings,
    build=build,
    finalize=finalize,
    description="language gate, math-aware quality heuristics (length, boilerplate, ratios, repetition), tiers",
)

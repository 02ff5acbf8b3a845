"""``langid``: offline language ID -> ``lang`` / ``lang_score``; optionally keep only some languages.

Formulas, code and TeX are stripped before identification; mixed English/Chinese math text is decided by the
Han character share (see :mod:`corpus.langid`). Removed documents (``languages`` set) go to ``removed/`` with
reason ``lang.not_selected`` / ``lang.low_score`` / ``lang.undetermined``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from corpus.langid import LanguageIdentifier
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.filter import LangIdStep, LanguageGate
from pipelines.steps.io import ParquetShardReader, ParquetShardWriter


class LangIdSettings(StageSettings):
    """Language ID settings (defaults measured by ``bench/bench_filter.py``, see docs/benchmarks.md)."""

    backend: Literal["py3langid", "fasttext"] = Field(
        "py3langid", description="py3langid: model shipped in the package; fasttext: a local model file")
    model_path: str | None = Field(None, description="fastText LID model file (lid.176.bin ...), fasttext backend")
    languages: list[str] | None = Field(None, description="keep only these ISO 639-1 codes; null: annotate only")
    min_score: float = Field(0.0, ge=0, le=1, description="documents of a kept language below this score are removed")
    keep_undetermined: bool = Field(True, description="keep 'und' documents (no prose, e.g. formula-only)")
    zh_share: float = Field(0.3, gt=0, le=1, description="Han share of prose units from which a text is zh")
    max_chars: int = Field(6000, ge=100, description="characters read from long documents (head + middle)")
    overwrite: bool = Field(True, description="recompute lang even where the input already has one")

    def identifier(self) -> LanguageIdentifier:
        return LanguageIdentifier(self.backend, self.model_path, zh_share=self.zh_share, max_chars=self.max_chars)


def build(settings: LangIdSettings, ctx: StageContext) -> list[Phase]:
    gate = LanguageGate(settings.languages, settings.min_score, settings.keep_undetermined)
    step = LangIdStep(settings.identifier(), gate, ctx.removed_dir, overwrite=settings.overwrite)
    return [Phase("langid", [ParquetShardReader(ctx.input_dir), step, ParquetShardWriter(ctx.kept_dir)],
                  tasks=ctx.tasks)]


def finalize(settings: LangIdSettings, ctx: StageContext) -> dict:
    from pipelines.stages.filter import column_counts

    return {"languages": column_counts(ctx.kept_dir, "lang"), "removed_by_reason": column_counts(ctx.removed_dir,
                                                                                                "reason")}


STAGE = StageSpec(
    name="langid",
    settings=LangIdSettings,
    build=build,
    finalize=finalize,
    description="offline language ID (formulas stripped, en/zh mixing by Han share) -> lang, lang_score",
)

"""``extract``: read the manifest's inputs (records, web pages, books, code) into the document schema.

Web pages keep their formulas as LaTeX (``corpus.extract.math``) and their tables/code as Markdown; books
are split under a token budget; code trees skip vendored, generated and binary files. A page or file that
fails is a reject (``{stage}/rejects/*.jsonl``: file, record, reason) and a ``rejected_<reason>`` counter in
the phase stats; it never fails the task.
"""

from __future__ import annotations

from pydantic import Field

from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.extract import ExtractReader, with_options
from pipelines.steps.ingest import plan_inputs
from pipelines.steps.io import ParquetShardWriter


class ExtractSettings(StageSettings):
    """Defaults for every input; an input's own ``options`` override them."""

    timeout: float = Field(default=20.0, ge=0, description="seconds per web page (0: no limit)")
    max_page_bytes: int = Field(default=10_000_000, gt=0, description="larger pages are rejected")
    max_tokens: int = Field(default=3500, ge=64, description="token budget of one book part")
    max_code_bytes: int = Field(default=1_000_000, gt=0, description="larger code files are skipped")

    def handler_options(self) -> dict:
        return self.model_dump()


def build(settings: ExtractSettings, ctx: StageContext) -> list[Phase]:
    files = with_options(plan_inputs(ctx.manifest.inputs), settings.handler_options())
    reader = ExtractReader(files, rejects_dir=f"{ctx.stage_dir}/rejects")
    return [Phase("extract", [reader, ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)]


STAGE = StageSpec(
    name="extract",
    settings=ExtractSettings,
    build=build,
    description="read inputs (JSONL/Parquet records, HTML/WARC/WET, books, code) into the document schema",
)

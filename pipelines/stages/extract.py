"""``extract``: read the manifest's inputs (records, web pages, books, code) into the document schema."""

from __future__ import annotations

from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.ingest import InputReader, plan_inputs
from pipelines.steps.io import ParquetShardWriter


class ExtractSettings(StageSettings):
    """Reading is configured per input (``inputs[].format`` / ``options``); nothing global yet."""


def build(settings: ExtractSettings, ctx: StageContext) -> list[Phase]:
    files = plan_inputs(ctx.manifest.inputs)
    reader = InputReader(files, rejects_dir=f"{ctx.stage_dir}/rejects")
    return [Phase("extract", [reader, ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)]


STAGE = StageSpec(
    name="extract",
    settings=ExtractSettings,
    build=build,
    description="read inputs (JSONL/Parquet records, HTML/WARC/WET, books, code) into the document schema",
)

"""``tokens``: fill ``n_tokens`` with exact Qwen2/Qwen2.5 counts (or any local tokenizer.json).

Works on Parquet shards (not document by document): each rank streams its share of the previous stage's files
one row group at a time, in record batches of ``batch_size`` rows (single-threaded decoding: a rank is one
core), counts each batch's texts in one batched call and writes row groups of ``ROW_GROUP_ROWS`` rows, so a
rank's memory is bounded by one row group whatever the shard size. Nothing is removed.
"""

from __future__ import annotations

import os
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field

from corpus.io import atomic_open, open_file
from corpus.schema import DOCUMENT_SCHEMA, conform_table
from pipelines.registry import Phase, StageContext, StageSettings, StageSpec
from pipelines.steps.io import iter_row_group_batches, shard_files

ROW_GROUP_ROWS = 4096  # rows per written row group (as DocSink)


class TokensSettings(StageSettings):
    tokenizer: Literal["qwen2", "qwen2.5"] = Field(default="qwen2", description="offline Qwen2/2.5 BPE ranks")
    tokenizer_path: str | None = Field(default=None, description="a local tokenizer.json to use instead")
    overwrite: bool = Field(default=False, description="recount rows that already have n_tokens")
    batch_size: int = Field(default=1024, ge=1, description="rows decoded and counted per batched tokenizer call "
                            "(bounds a rank's memory)")
    threads: int = Field(default=1, ge=1, description="tokenizer threads per task")


class ShardTokenCounter(PipelineStep):
    """Reads shards of ``input_dir`` (round-robin over ranks) and writes them to ``output_dir`` with n_tokens."""

    name = "n_tokens"
    type = "🔢 - TOKENIZER"

    def __init__(self, input_dir: str, output_dir: str, tokenizer: str = "qwen2", overwrite: bool = False,
                 batch_size: int = 1024, threads: int = 1):
        super().__init__()
        self.input_dir, self.output_dir = input_dir, output_dir
        self.tokenizer, self.overwrite = tokenizer, overwrite
        self.batch_size, self.threads = batch_size, threads

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from corpus.tokens import get_counter

        counter = get_counter(self.tokenizer, self.threads)
        for path in shard_files(self.input_dir, rank, world_size):
            target = f"{self.output_dir}/{os.path.basename(path)}"
            with open_file(path, "rb") as fin, atomic_open(target, "wb") as fout:
                pf = pq.ParquetFile(fin)
                writer = pq.ParquetWriter(fout, DOCUMENT_SCHEMA, compression="zstd")
                pending: list[pa.Table] = []
                n_pending = 0
                for batch in iter_row_group_batches(pf, self.batch_size):
                    table = conform_table(pa.Table.from_batches([batch]), path=path)
                    with self.track_time(unit="batch"):
                        pending.append(self.fill(table, counter))
                    n_pending += table.num_rows
                    if n_pending >= ROW_GROUP_ROWS:
                        writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                        pending, n_pending = [], 0
                if pending:
                    writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                writer.close()
            self.stat_update("files")
        yield from ()

    def fill(self, table: pa.Table, counter) -> pa.Table:
        col = table.column("n_tokens")
        if not self.overwrite and col.null_count == 0:
            self.stat_update("documents", value=table.num_rows)
            return table
        texts = table.column("text").to_pylist()
        counts = counter.count_batch(texts)
        if not self.overwrite and col.null_count < table.num_rows:
            counts = [k if k is not None else c for k, c in zip(col.to_pylist(), counts, strict=True)]
        self.stat_update("documents", value=table.num_rows)
        self.stat_update("tokens", value=int(sum(counts)))
        idx = table.schema.get_field_index("n_tokens")
        return table.set_column(idx, "n_tokens", pa.array(counts, pa.int64()))


def build(settings: TokensSettings, ctx: StageContext) -> list[Phase]:
    step = ShardTokenCounter(ctx.input_dir or "", ctx.kept_dir, settings.tokenizer_path or settings.tokenizer,
                             settings.overwrite, settings.batch_size, settings.threads)
    return [Phase("tokens", [step], tasks=ctx.tasks)]


def finalize(settings: TokensSettings, ctx: StageContext) -> dict:
    import polars as pl

    from pipelines.accounting import folder_files

    files = folder_files(ctx.kept_dir)  # every rank writes a shard: a missing folder is an error
    total = pl.scan_parquet(files).select(pl.col("n_tokens").sum()).collect().item() if files else 0
    return {"tokens": int(total or 0), "tokenizer": settings.tokenizer_path or settings.tokenizer}


STAGE = StageSpec(
    name="tokens",
    settings=TokensSettings,
    build=build,
    finalize=finalize,
    description="fill n_tokens with exact Qwen2/Qwen2.5 token counts (offline), batched per shard",
)

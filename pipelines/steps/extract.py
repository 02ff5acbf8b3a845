"""Extraction steps: the input reader with per-reason reject counters, and a datatrove extractor step.

``ExtractReader`` is the extract stage's reader: the same as :class:`InputReader`, with the stage settings
passed to every format handler, a ``rejected_<reason>`` counter per kind of failure (timeout, too large,
binary, empty, no main text, corrupt archive ...) and, with a first pass, removed/ for the pages it turns away.

``MathExtractor`` is a drop-in for datatrove's ``Trafilatura`` step (same sandboxed per-document timeout)
that keeps formulas as LaTeX and tables/code as Markdown: for pipelines that read WARCs with datatrove's
own readers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from datatrove.pipeline.extractors.base import BaseExtractor

from corpus.io import Reject
from pipelines.steps.ingest import InputFile, InputReader

_REASONS = (
    ("timed out", "timeout"), ("too large", "too_large"), ("binary", "binary"), ("empty", "empty"),
    ("no main text", "no_main_text"), ("corrupt", "corrupt_archive"), ("truncated", "truncated"),
    ("vendored", "skipped_vendored"), ("generated", "skipped_generated"), ("minified", "skipped_generated"),
    ("not utf-8", "binary"), ("max_code_bytes", "too_large"), ("parseable", "not_html"),
)


def reject_kind(error: str) -> str:
    low = error.lower()
    return next((kind for key, kind in _REASONS if key in low), "other")


def with_options(files: list[InputFile], defaults: dict[str, Any]) -> list[InputFile]:
    """Stage-wide defaults under each input's own ``options``."""
    return [dataclasses.replace(f, ctx=dataclasses.replace(f.ctx, options={**defaults, **f.ctx.options}))
            for f in files]


FIRST_PASS_FORMATS = ("html", "warc", "html-records")


class ExtractReader(InputReader):
    """Reads web pages, archives, books and code (and JSONL/Parquet records) into documents.

    With a ``firstpass`` (:class:`classifiers.firstpass.FirstPass`), web pages go through the first pass: the
    candidates are extracted, the others are written to ``removed_dir`` unextracted with their signals
    (``reason: firstpass``; counters ``firstpass_candidates`` by reason and ``removed``)."""

    name = "extract inputs"

    def __init__(self, files: list[InputFile], rejects_dir: str, max_printed: int = 20, *, firstpass=None,
                 removed_dir: str | None = None):
        super().__init__(files, rejects_dir, max_printed)
        self.firstpass, self.removed_dir = firstpass, removed_dir

    def _report(self, reject: Reject, n: int) -> Reject:
        self.stat_update(f"rejected_{reject_kind(reject.error)}")
        return super()._report(reject, n)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if self.firstpass is None:
            yield from super().run(data, rank, world_size)
            return
        from pipelines.steps.io import RemovedSink

        opts = {"_firstpass": self.firstpass}
        self.files = [dataclasses.replace(f, ctx=dataclasses.replace(f.ctx, options={**f.ctx.options, **opts}))
                      if f.fmt in FIRST_PASS_FORMATS else f for f in self.files]
        sink = RemovedSink(self.removed_dir, rank)
        try:
            for doc in super().run(data, rank, world_size):
                if doc.metadata.pop("_removed", None):
                    self.stat_update("removed", "removed_firstpass")
                    sink.remove(doc, "firstpass")
                    continue
                fp = doc.metadata.get("firstpass")
                if isinstance(fp, dict):
                    self.stat_update("firstpass_candidates", f"firstpass_by_{fp.get('reason')}")
                yield doc
        except BaseException:
            sink.abort()
            raise
        sink.close()


class MathExtractor(BaseExtractor):
    """Math-aware HTML -> Markdown extraction as a datatrove extractor step (``doc.text`` holds the HTML)."""

    name = "⛏ math-aware trafilatura"
    _requires_dependencies = ["trafilatura"]

    def __init__(self, timeout: float = 1, options: dict[str, Any] | None = None):
        super().__init__(timeout)
        self.options = options

    def extract(self, text: str) -> str:
        from corpus.extract.html import ExtractError, extract_page

        if not text:
            return ""
        try:
            return extract_page(text, timeout=None, options=self.options).text
        except ExtractError:
            return ""


"""Extraction steps: the input reader with per-reason reject counters, and a datatrove extractor step.

``ExtractReader`` is the extract stage's reader: the same as :class:`InputReader`, with the stage settings
passed to every format handler and a ``rejected_<reason>`` counter per kind of failure (timeout, too large,
binary, empty, no main text, corrupt archive, skipped code files ...).

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


class ExtractReader(InputReader):
    """Reads web pages, archives, books and code (and JSONL/Parquet records) into documents."""

    name = "extract inputs"

    def _report(self, reject: Reject, n: int) -> Reject:
        self.stat_update(f"rejected_{reject_kind(reject.error)}")
        return super()._report(reject, n)


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


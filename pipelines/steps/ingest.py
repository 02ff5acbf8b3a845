"""The reader step that turns a manifest's ``inputs`` into documents (the first step of every run)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.formats import detect_format, handler_for, known_extensions
from corpus.io import InputError, Reject, expand_paths, write_jsonl
from corpus.records import FileContext, relpath_under
from corpus.schema import SchemaError, normalize_row, row_to_document


@dataclass(frozen=True)
class InputFile:
    path: str
    fmt: str
    ctx: FileContext


def plan_inputs(inputs) -> list[InputFile]:
    """Expand every input group into files with their format and context (sorted, deterministic).

    Raises :class:`InputError` for a pattern that matches nothing or a file of unknown format.
    """
    files: list[InputFile] = []
    for spec in inputs:
        exts = None if spec.format != "auto" else known_extensions()
        for path in expand_paths(spec.paths, exts=exts):
            fmt = detect_format(path, spec.format)
            ctx = FileContext(spec.name, spec.source, relpath_under(path, spec.paths), dict(spec.options))
            files.append(InputFile(path, fmt, ctx))
    return files


class InputReader(PipelineStep):
    """Reads this rank's share of the input files; bad records are counted, printed and written to rejects."""

    name = "inputs"
    type = "📖 - READER"

    def __init__(self, files: list[InputFile], rejects_dir: str, max_printed: int = 20):
        super().__init__()
        self.files = files
        self.rejects_dir = rejects_dir
        self.max_printed = max_printed

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        rejects: list[Reject] = []
        for f in self.files[rank::world_size]:
            self.stat_update("files")
            try:
                for item in handler_for(f.fmt)(f.path, f.ctx):
                    if isinstance(item, Reject):
                        rejects.append(self._report(item, len(rejects)))
                        continue
                    line = item.pop("_line", 0)
                    try:
                        row = normalize_row(item, source=f.ctx.source)
                    except SchemaError as e:
                        rejects.append(self._report(Reject(f.path, line, str(e), str(item)[:500]), len(rejects)))
                        continue
                    self.stat_update("documents", f"documents_{row['source']}")
                    yield row_to_document(row)
            except InputError as e:
                rejects.append(self._report(Reject(f.path, 0, str(e).removeprefix(f"{f.path}: ")), len(rejects)))
            except Exception as e:  # a broken file must not crash the task
                rejects.append(self._report(Reject(f.path, 0, f"{type(e).__name__}: {e}"), len(rejects)))
        if rejects:
            write_jsonl((r.to_json() for r in rejects), f"{self.rejects_dir}/{rank:05d}.jsonl")

    def _report(self, reject: Reject, n: int) -> Reject:
        self.stat_update("rejected")
        if n < self.max_printed:
            print(f"mathcorpus: rejected {reject}", file=sys.stderr)
        return reject

"""The reader step that turns a manifest's ``inputs`` into documents (the first step of every run).

Every input record ends as a document, a reject (file, position, reason: ``{stage}/rejects/``) or a skip
(counted by reason, ``skipped_<reason>`` in the stage stats, listed in ``{stage}/skipped/``). A bad record never
stops the file: reading goes on with the next record; a file that cannot be read past some point keeps the
records before it and ends with one reject at that position.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.formats import detect_format, handler_for, known_extensions
from corpus.io import (
    DOCUMENT_EXT,
    InputError,
    Reject,
    Skip,
    document_folder,
    expand_paths,
    is_remote,
    resolve_document_inputs,
    write_jsonl,
)
from corpus.records import FileContext, relpath_under
from corpus.schema import normalize_row, row_to_document


@dataclass(frozen=True)
class InputFile:
    path: str
    fmt: str
    ctx: FileContext


def input_files(patterns: list[str], exts: tuple[str, ...] | None) -> list[str]:
    """Files of an input group: a run folder or another command's output folder means its document shards
    (:func:`corpus.io.resolve_document_inputs`); other folders, globs and files are expanded as they are."""
    out: list[str] = []
    for pattern in patterns:
        plain = any(ch in pattern for ch in "*?[") or not os.path.isdir(pattern) and not is_remote(pattern)
        if not plain and document_folder(pattern) != pattern.rstrip("/"):
            out.extend(resolve_document_inputs([pattern], DOCUMENT_EXT))
        else:
            out.extend(expand_paths(pattern, exts=exts))
    return sorted(dict.fromkeys(out))


def plan_inputs(inputs) -> list[InputFile]:
    """Expand every input group into files with their format and context (sorted, deterministic).

    Raises :class:`InputError` for a pattern that matches nothing, a folder that cannot be listed, a file that
    cannot be read (permission) or a file of unknown format: before any work starts.
    """
    files: list[InputFile] = []
    for spec in inputs:
        exts = None if spec.format != "auto" else known_extensions()
        for path in input_files(list(spec.paths), exts):
            if not is_remote(path) and not os.access(path, os.R_OK):
                raise InputError(f"{path}: cannot read: permission denied")
            fmt = detect_format(path, spec.format)
            ctx = FileContext(spec.name, spec.source, relpath_under(path, spec.paths), dict(spec.options))
            files.append(InputFile(path, fmt, ctx))
    return files


def skip_reason(item: Reject) -> str | None:
    """The reason key of a skip (a :class:`Skip`, or a handler's ``"skipped: ..."`` reject), else None."""
    if isinstance(item, Skip):
        return item.reason
    low = item.error.lower()
    if not low.startswith("skipped"):
        return None
    kind = next((k for key, k in _SKIP_KINDS if key in low), None)
    return kind or "_".join(re.findall(r"[a-z]+", low.removeprefix("skipped").split("(")[0])[:2]) or "other"


_SKIP_KINDS = (("vendored", "vendored"), ("generated", "generated"), ("minified", "minified"),
               ("max_code_bytes", "too_large"), ("too large", "too_large"), ("binary", "binary"),
               ("empty", "empty"), ("non-html", "not_html"), ("revisit", "revisit"), ("status", "http_status"))


class InputReader(PipelineStep):
    """Reads this rank's share of the input files; bad records are counted, printed and written to rejects,
    skipped inputs are counted by reason."""

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
        skips: list[Reject] = []
        for f in self.files[rank::world_size]:
            self.stat_update("files")
            last = 0  # position of the last record seen (for a failure that ends the file)
            try:
                for item in handler_for(f.fmt)(f.path, f.ctx):
                    if isinstance(item, Reject):
                        last = max(last, item.line)
                        reason = skip_reason(item)
                        if reason is None:
                            rejects.append(self._report(item, len(rejects)))
                        else:
                            self.stat_update("skipped", f"skipped_{reason}")
                            skips.append(item)
                        continue
                    line = item.pop("_line", 0)
                    last = max(last, line) if isinstance(line, int) else last
                    try:
                        doc = row_to_document(normalize_row(item, source=f.ctx.source))
                    except Exception as e:  # wrong field types, missing text/id ...: this record only
                        msg = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
                        rejects.append(self._report(Reject(f.path, line, msg, str(item)[:500]), len(rejects)))
                        continue
                    self.stat_update("documents", f"documents_{doc.metadata.get('source')}")
                    yield doc
            except InputError as e:
                where = last + 1 if last else 0
                msg = str(e).removeprefix(f"{f.path}: ")
                rejects.append(self._report(Reject(f.path, where, msg if not last else
                                                   f"reading stopped after record {last}: {msg}"), len(rejects)))
            except Exception as e:  # a broken file must not crash the task: what was read before is kept
                where = last + 1 if last else 0
                msg = f"{type(e).__name__}: {e}"
                rejects.append(self._report(Reject(f.path, where, msg if not last else
                                                   f"reading stopped after record {last}: {msg}"), len(rejects)))
        if rejects:
            write_jsonl((r.to_json() for r in rejects), f"{self.rejects_dir}/{rank:05d}.jsonl")
        if skips:
            parent = self.rejects_dir.rstrip("/").rsplit("/", 1)[0]
            write_jsonl((s.to_json() for s in skips), f"{parent}/skipped/{rank:05d}.jsonl")

    def _report(self, reject: Reject, n: int) -> Reject:
        self.stat_update("rejected")
        if n < self.max_printed:
            print(f"mathcorpus: rejected {reject}", file=sys.stderr)
        return reject

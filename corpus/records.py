"""Record files and the context a format handler reads a file in.

A *format handler* takes ``(path, FileContext)`` and yields schema rows (dicts accepted by
:func:`corpus.schema.normalize_row`, optionally with a ``_line`` key giving the record's position for error
messages) or :class:`corpus.io.Reject` objects for bad records.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from corpus.io import JSONL_EXT, PARQUET_EXT, Reject, expand_paths, iter_records
from corpus.schema import SOURCES, SchemaError, normalize_row


@dataclass(frozen=True)
class FileContext:
    """What a handler knows about the file it reads."""

    input_name: str  # the manifest input group's name
    source: str  # web | book | code | ...
    relpath: str  # path relative to the input group's base (stable across machines)
    options: dict[str, Any] = field(default_factory=dict)

    def doc_id(self, suffix: str | int | None = None) -> str:
        """Stable id for a document that has none: ``{input}/{relpath}`` plus ``#suffix`` for parts."""
        base = f"{self.input_name}/{self.relpath}"
        return base if suffix is None else f"{base}#{suffix}"


Handler = Callable[[str, FileContext], Iterator[dict | Reject]]


def read_record_file(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """JSONL / Parquet records with a ``text`` column (or ``options.text_column``); ids kept when present."""
    text_col = ctx.options.get("text_column", "text")
    id_col = ctx.options.get("id_column", "id")
    for pos, rec in iter_records(path):
        if isinstance(rec, Reject):
            yield rec
            continue
        if text_col != "text" and text_col in rec:
            rec = {**rec, "text": rec.pop(text_col)}
        if id_col != "id" and id_col in rec:
            rec = {**rec, "id": rec.pop(id_col)}
        if rec.get("id") in (None, ""):
            rec = {**rec, "id": ctx.doc_id(pos)}
        yield {**rec, "_line": pos}


def iter_record_rows(paths: str | list[str], source: str | None = None) -> Iterator[dict | Reject]:
    """Schema rows from JSONL/Parquet record files (ids kept), for commands that take record files directly.

    A record whose own ``source`` is a schema source keeps it; otherwise ``source`` (which may be None) is
    used and the record's value moves to the metadata as ``orig_source``. Bad records come out as
    :class:`Reject`.
    """
    for path in expand_paths(paths, exts=JSONL_EXT + PARQUET_EXT):
        for pos, rec in iter_records(path):
            if isinstance(rec, Reject):
                yield rec
                continue
            own = rec.get("source")
            if own is not None and own not in SOURCES:
                rec = {**rec, "source": source, "orig_source": own}
            elif own is None:
                rec = {**rec, "source": source}
            try:
                yield normalize_row(rec)
            except SchemaError as e:
                yield Reject(path, pos, str(e), str(rec)[:500])


def accept_rows(items: Iterable[dict | Reject], rejects: list[Reject], label: str = "mathcorpus",
                max_printed: int = 20) -> Iterator[dict]:
    """Pass rows through; collect :class:`Reject` items in ``rejects`` and print the first few, one line each."""
    for item in items:
        if isinstance(item, Reject):
            if len(rejects) < max_printed:
                print(f"{label}: rejected {item}", file=sys.stderr)
            rejects.append(item)
            continue
        yield item


def relpath_under(path: str, bases: list[str]) -> str:
    """``path`` relative to the deepest non-glob prefix of the input patterns that contains it."""
    best = ""
    for b in bases:
        root = b.split("*", 1)[0].split("?", 1)[0]
        root = root if root.endswith("/") or os.path.isdir(root) else os.path.dirname(root)
        root = root.rstrip("/")
        if path.startswith(root + "/") and len(root) > len(best):
            best = root
    return path[len(best) + 1 :] if best else os.path.basename(path)

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

from corpus.io import Reject, common_dir, common_root, iter_records, resolve_document_inputs
from corpus.schema import SOURCES, SchemaError, normalize_row


@dataclass(frozen=True)
class FileContext:
    """What a handler knows about the file it reads."""

    input_name: str  # the manifest input group's name
    source: str  # web | book | code | ...
    relpath: str  # path relative to the input group's base (stable across machines)
    options: dict[str, Any] = field(default_factory=dict)

    def doc_id(self, suffix: str | int | None = None) -> str:
        """Stable id for a document that has none: ``{input}/{relpath}`` plus ``#suffix`` for parts (the relpath
        alone outside a manifest, where there is no input name)."""
        base = f"{self.input_name}/{self.relpath}" if self.input_name else self.relpath
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
            rec = dict(rec)
            rec["text"] = rec.pop(text_col)
        if id_col != "id" and id_col in rec:
            rec = dict(rec)
            rec["id"] = rec.pop(id_col)
        if rec.get("id") in (None, ""):
            rec = {**rec, "id": ctx.doc_id(pos)}
        yield {**rec, "_line": pos}


def iter_documents(files: list[str], source: str | None = None, *, text_column: str = "text",
                   id_column: str = "id", root: str | None = None) -> Iterator[dict | Reject]:
    """Schema rows from JSONL/Parquet record files, or a :class:`Reject` (file, line, reason) per bad record.

    The one record reader of the commands that take documents. A record without an id gets
    ``{path relative to the inputs' common folder (or root)}#{line}``, unique across inputs. A record whose own
    ``source`` is a schema source keeps it; otherwise ``source`` (may be None) is used and the record's value
    moves to the metadata as ``orig_source``. Lone surrogates were already replaced by the file reader
    (``repaired_surrogates`` in the metadata); wrong field types are rejects.
    """
    root = common_root(files) if root is None else root
    options = {"text_column": text_column, "id_column": id_column}
    for path in files:
        rel = path[len(root):].lstrip("/") if root else path
        ctx = FileContext("", source or "other", rel, options)
        for rec in read_record_file(path, ctx):
            if isinstance(rec, Reject):
                yield rec
                continue
            pos = rec.pop("_line", 0)
            own = rec.get("source")
            if own is not None and own not in SOURCES:
                rec = {**rec, "source": source, "orig_source": own}
            elif own is None:
                rec = {**rec, "source": source}
            try:
                yield normalize_row(rec)
            except (SchemaError, TypeError, ValueError) as e:
                yield Reject(path, pos, str(e), _raw(rec))


def iter_record_rows(paths: str | list[str], source: str | None = None, *, text_column: str = "text",
                     id_column: str = "id") -> Iterator[dict | Reject]:
    """:func:`iter_documents` over what INPUT arguments mean (:func:`corpus.io.resolve_document_inputs`: files,
    globs, folders of shards, another command's output folder, a run folder)."""
    files = resolve_document_inputs([paths] if isinstance(paths, str) else paths)
    yield from iter_documents(files, source, text_column=text_column, id_column=id_column)


def _raw(rec: dict) -> str:
    import json

    return json.dumps(rec, ensure_ascii=False, default=str)[:500]


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


def _root(pattern: str) -> str:
    """The deepest non-glob folder of an input pattern."""
    root = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
    root = root if root.endswith("/") or os.path.isdir(root) else os.path.dirname(root)
    return root.rstrip("/")


def relpath_under(path: str, bases: list[str]) -> str:
    """``path`` relative to its input group's root, unique across the group's patterns.

    With one pattern the root is its deepest non-glob folder; with several it is the common folder of their
    roots, so ``a/x.md`` and ``b/x.md`` stay ``a/x.md`` and ``b/x.md`` (never both ``x.md``).
    """
    roots = sorted({_root(b) for b in bases})
    base = (roots[0] if len(roots) == 1 else common_dir(roots)).rstrip("/")
    if base and path.startswith(base + "/"):
        return path[len(base) + 1 :]
    return path.lstrip("/") if len(roots) > 1 else os.path.basename(path)

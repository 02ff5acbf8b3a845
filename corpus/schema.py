"""The one document schema every stage reads and writes (Arrow / Parquet).

A row is a document. Columns beyond ``id`` and ``text`` are nullable so that a stage fills only what it
knows; free-form extras go into ``metadata`` (a JSON object stored as a string, which every Parquet reader
understands). Inside a datatrove pipeline the same row is a ``Document`` whose ``metadata`` dict holds the
schema columns flat, next to the extras: see :func:`row_to_document` / :func:`document_to_row`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from corpus.errors import MathcorpusError

SOURCES = ("web", "book", "code", "exam", "synthetic", "other")

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("source", pa.string()),  # one of SOURCES
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("lang", pa.string()),  # ISO 639-1 ("en", "zh", ...)
        pa.field("lang_score", pa.float32()),
        pa.field("math_score", pa.float32()),  # fastText P(math), 0..1
        pa.field("quality_tier", pa.int8()),  # 0..5, higher is better
        pa.field("n_tokens", pa.int64()),  # Qwen2 tokenizer count
        pa.field("metadata", pa.large_string()),  # JSON object
    ],
    metadata={b"mathcorpus.schema": b"1"},
)

COLUMNS = tuple(DOCUMENT_SCHEMA.names)
OPTIONAL_COLUMNS = tuple(c for c in COLUMNS if c not in ("id", "text", "metadata"))


class SchemaError(MathcorpusError, ValueError):
    """A file or record does not conform to the document schema."""


def check_source(source: str | None) -> str | None:
    if source is not None and source not in SOURCES:
        raise SchemaError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    return source


def normalize_row(record: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    """Map an input record onto the schema: known columns are kept, everything else goes into metadata.

    ``source`` (the input group's kind) wins over the record's own ``source`` value, which is kept in the
    metadata as ``orig_source`` when it differs (datasets often use ``source`` for provenance).

    Raises :class:`SchemaError` when ``text`` is missing or not a string, ``id`` is missing, or a schema
    column holds a value of the wrong type (``n_tokens: "abc"``, ``math_score: "high"``).
    """
    if "text" not in record or not isinstance(record["text"], str):
        raise SchemaError("record has no string 'text' field")
    if record.get("id") in (None, ""):
        raise SchemaError("record has no 'id' field")
    check_types(record)
    row: dict[str, Any] = {c: None for c in COLUMNS}
    extras: dict[str, Any] = {}
    meta = record.get("metadata")
    if isinstance(meta, str) and meta:
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = {"metadata": meta}
    if isinstance(meta, Mapping):
        extras.update(meta)
    for key, value in record.items():
        if key in ("metadata",):
            continue
        if key in row:
            row[key] = value
        else:
            extras[key] = value
    row["id"] = str(row["id"])
    for c in _INT_RANGES:
        if isinstance(row[c], float):
            row[c] = int(row[c])
    if source is not None:
        if row["source"] not in (None, source):
            extras["orig_source"] = row["source"]
        row["source"] = source
    row["source"] = check_source(row["source"])
    row["metadata"] = dumps_metadata(extras)
    return row


_STRING_COLUMNS = ("source", "url", "domain", "lang")
_FLOAT_COLUMNS = ("lang_score", "math_score")
_INT_RANGES = {"quality_tier": (-(2**7), 2**7 - 1), "n_tokens": (-(2**63), 2**63 - 1)}


def check_types(record: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaError` naming the first schema column whose value has the wrong type.

    Strings must be strings, scores numbers, ``quality_tier``/``n_tokens`` whole numbers in their column's range
    (``12.0`` is accepted as 12; numeric strings are not numbers). ``None`` is always allowed (nullable).
    """
    ident = record.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise SchemaError(f"field 'id' must be a string or an integer, got {_show(ident)}")
    for c in _STRING_COLUMNS:
        v = record.get(c)
        if v is not None and not isinstance(v, str):
            raise SchemaError(f"field {c!r} must be a string, got {_show(v)}")
    for c in _FLOAT_COLUMNS:
        v = record.get(c)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise SchemaError(f"field {c!r} must be a number, got {_show(v)}")
    for c, (lo, hi) in _INT_RANGES.items():
        v = record.get(c)
        if v is None:
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            span = f" in {lo}..{hi}" if c == "quality_tier" else ""
            raise SchemaError(f"field {c!r} must be an integer{span}, got {_show(v)}")


def _show(v: Any) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def dumps_metadata(extras: Mapping[str, Any]) -> str:
    """Stable JSON for the metadata column (sorted keys, so reruns are byte-identical)."""
    return json.dumps(extras, ensure_ascii=False, sort_keys=True, default=str)


def loads_metadata(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        out = json.loads(value)
    except json.JSONDecodeError:
        return {"metadata": value}
    return out if isinstance(out, dict) else {"metadata": out}


def rows_to_table(rows: Iterable[Mapping[str, Any]], extra_fields: Iterable[pa.Field] = ()) -> pa.Table:
    """Build a schema-conforming table (plus optional extra columns) from schema rows."""
    schema = with_extra_fields(extra_fields)
    rows = list(rows)
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def with_extra_fields(extra_fields: Iterable[pa.Field] = ()) -> pa.Schema:
    schema = DOCUMENT_SCHEMA
    for f in extra_fields:
        schema = schema.append(f)
    return schema


def conform_table(table: pa.Table, *, path: str = "<table>") -> pa.Table:
    """Cast a table read from disk onto the schema; missing optional columns are added as nulls.

    Raises :class:`SchemaError` naming ``path`` when ``id``/``text`` are absent or a column cannot be cast.
    """
    missing = [c for c in ("id", "text") if c not in table.column_names]
    if missing:
        raise SchemaError(f"{path}: missing required column(s) {', '.join(missing)}")
    columns = []
    for f in DOCUMENT_SCHEMA:
        if f.name in table.column_names:
            col = table.column(f.name)
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaError(f"{path}: column {f.name!r} has type {col.type}, expected {f.type}: {e}") from e
        else:
            col = pa.nulls(table.num_rows, f.type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=DOCUMENT_SCHEMA)


# ---- datatrove Document <-> schema row ------------------------------------------------------------------


def row_to_document(row: Mapping[str, Any]):
    """Schema row -> datatrove ``Document`` (schema columns and metadata extras flat in ``metadata``)."""
    from datatrove.data import Document

    metadata = loads_metadata(row.get("metadata"))
    for c in OPTIONAL_COLUMNS:
        metadata[c] = row.get(c)
    return Document(text=row["text"], id=str(row["id"]), metadata=metadata)


def document_to_row(doc, extra_fields: Iterable[str] = ()) -> dict[str, Any]:
    """datatrove ``Document`` -> schema row. Metadata keys that are not columns go into ``metadata``."""
    meta = dict(doc.metadata)
    row: dict[str, Any] = {"id": doc.id, "text": doc.text}
    for c in OPTIONAL_COLUMNS:
        row[c] = meta.pop(c, None)
    for c in extra_fields:
        row[c] = meta.pop(c, None)
    row["metadata"] = dumps_metadata(meta)
    return row

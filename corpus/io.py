"""Reading inputs and writing outputs: fsspec paths, JSONL/Parquet records, atomic writes, rejects.

Every writer here writes to a temporary name beside the target and renames it into place, so a killed job
never leaves a half-written file under a final name. Malformed input records are not dropped silently:
readers yield :class:`Reject` objects that the caller counts and writes to a rejects file.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.errors import MathcorpusError

PARQUET_EXT = (".parquet", ".pq")
JSONL_EXT = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".ndjson")


class InputError(MathcorpusError):
    """Bad input that stops a command: the message names the file (and line) and the problem."""


@dataclass(frozen=True)
class Reject:
    """A malformed input record: where it was and why it was rejected."""

    path: str
    line: int  # 1-based line (JSONL) or row (Parquet); 0 when the whole file is bad
    error: str
    raw: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"file": self.path, "line": self.line, "error": self.error, "raw": self.raw[:2000]},
            ensure_ascii=False,
        )

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error}" if self.line else f"{self.path}: {self.error}"


# ---- paths ---------------------------------------------------------------------------------------------


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def expand_paths(patterns: str | Sequence[str], exts: Sequence[str] | None = None) -> list[str]:
    """Expand files, directories (recursively) and globs, local or fsspec URLs, into a sorted file list.

    Raises :class:`InputError` naming the pattern that matched nothing.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for pattern in patterns:
        found = _expand_one(str(pattern), exts)
        if not found:
            raise InputError(f"{pattern}: no such file or no matching input files")
        out.extend(found)
    return sorted(dict.fromkeys(out))


def _expand_one(pattern: str, exts: Sequence[str] | None) -> list[str]:
    def keep(p: str) -> bool:
        name = os.path.basename(p)
        return not name.startswith((".", "_")) and (exts is None or name.lower().endswith(tuple(exts)))

    if is_remote(pattern):
        fs, _, _ = fsspec.get_fs_token_paths(pattern)
        protocol = pattern.split("://", 1)[0]
        if any(ch in pattern for ch in "*?["):
            paths = fs.glob(pattern)
        elif fs.isdir(pattern):
            paths = [p for p in fs.find(pattern)]
        elif fs.exists(pattern):
            return [pattern]
        else:
            paths = []
        return [f"{protocol}://{p}" if "://" not in p else p for p in paths if keep(p)]
    if pattern.startswith("file://"):
        pattern = pattern[len("file://") :]
    if any(ch in pattern for ch in "*?["):
        paths = [p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        return [p for p in paths if keep(p)]
    if os.path.isdir(pattern):
        return [
            os.path.join(root, f)
            for root, dirs, files in os.walk(pattern)
            for f in files
            if keep(f) and not _hidden(os.path.relpath(root, pattern))
        ]
    if os.path.isfile(pattern):
        return [pattern]
    return []


def _hidden(relative_dir: str) -> bool:
    """True when a folder below the input root is hidden (``.git``, ``.mix-work`` ...)."""
    return any(part.startswith(".") and part != "." for part in relative_dir.split(os.sep))


def open_file(path: str, mode: str = "rb", **kwargs):
    """Open a local path or fsspec URL (compression inferred from the extension)."""
    return fsspec.open(path, mode, compression="infer", **kwargs).open()


# ---- records -------------------------------------------------------------------------------------------


def iter_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield ``(line_number, record)`` or ``(line_number, Reject)`` for every non-blank line."""
    try:
        fh = open_file(path, "rb")
    except (FileNotFoundError, OSError) as e:
        raise InputError(f"{path}: cannot open: {e}") from e
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, Reject(path, lineno, f"invalid UTF-8 at byte {e.start}", raw.decode("utf-8", "replace"))
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, Reject(path, lineno, f"malformed JSON: {e.msg} (column {e.colno})", line)
                continue
            if not isinstance(record, dict):
                yield lineno, Reject(path, lineno, "JSON value is not an object", line)
                continue
            yield lineno, record


def iter_parquet(path: str, columns: Sequence[str] | None = None, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """Yield the rows of a Parquet file as dicts, batch by batch (bounded memory)."""
    try:
        fh = open_file(path, "rb")
        pf = pq.ParquetFile(fh)
    except (FileNotFoundError, OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{path}: not a readable Parquet file: {e}") from e
    with fh:
        names = pf.schema_arrow.names
        cols = [c for c in columns if c in names] if columns else None
        for batch in pf.iter_batches(batch_size=batch_size, columns=cols):
            yield from batch.to_pylist()


def iter_records(path: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Records of a JSONL or Parquet file, as ``(position, record | Reject)``."""
    lower = path.lower()
    if lower.endswith(PARQUET_EXT):
        yield from enumerate(iter_parquet(path), 1)
    elif lower.endswith(JSONL_EXT):
        yield from iter_jsonl(path)
    else:
        raise InputError(f"{path}: unknown record format (expected .jsonl or .parquet)")


# ---- atomic writes -------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb"):
    """Write to ``path`` through a temporary sibling, renamed into place only when the block succeeds."""
    fs, _, (target,) = fsspec.get_fs_token_paths(path)
    parent = os.path.dirname(target)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{target}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, mode) as fh:
            yield fh
        fs.mv(tmp, target)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


def write_parquet(table: pa.Table, path: str, *, row_group_size: int = 8192, compression: str = "zstd") -> None:
    """Atomically write a table as Parquet (zstd, bounded row groups)."""
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh, row_group_size=row_group_size, compression=compression)


def write_json(obj: Any, path: str) -> None:
    """Atomically write pretty, key-sorted JSON (byte-identical for identical content)."""
    data = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    with atomic_open(path, "wb") as fh:
        fh.write(data.encode("utf-8"))


def write_text(text: str, path: str) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(text.encode("utf-8"))


def write_jsonl(lines: Iterable[str], path: str) -> None:
    with atomic_open(path, "wb") as fh:
        for line in lines:
            fh.write(line.encode("utf-8") + b"\n")

"""Reading inputs and writing outputs: fsspec paths, JSONL/Parquet records, atomic writes, rejects.

Every writer here writes to a temporary name beside the target and renames it into place, so a killed job
never leaves a half-written file under a final name. Malformed input records are not dropped silently:
readers yield :class:`Reject` objects that the caller counts and writes to a rejects file.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import io
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.errors import MathcorpusError

PARQUET_EXT = (".parquet", ".pq")
COMPRESSED_EXT = (".gz", ".zst")  # read transparently (gzip, zstandard)
JSONL_BASE_EXT = (".jsonl", ".ndjson")
JSONL_EXT = (*(b + c for b in JSONL_BASE_EXT for c in ("", *COMPRESSED_EXT)), ".json")
# Document shards a folder or glob is searched for (``.json`` counts only when a file is named explicitly:
# folders hold ``.json`` reports).
DOCUMENT_EXT = PARQUET_EXT + tuple(e for e in JSONL_EXT if e != ".json")
# Compressions that are refused by name instead of being read as text.
REFUSED_COMPRESSION = (".bz2", ".xz", ".lz4", ".lzma", ".zip", ".7z", ".br", ".snappy", ".zstd", ".tar")
# Sub-folders of a command's output that never hold the documents it passes on.
NOT_DOCUMENT_DIRS = ("removed", "rejects", "skipped", "logs", "work", "index", "plots")

_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPAIRED_KEY = "repaired_surrogates"  # record key (-> metadata) holding how many lone surrogates were replaced


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
            {"file": self.path, "line": self.line, "error": self.error, "raw": _repair_str(self.raw[:2000])[0]},
            ensure_ascii=False,
        )

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error}" if self.line else f"{self.path}: {self.error}"


@dataclass(frozen=True)
class Skip(Reject):
    """An input deliberately not read (vendored file, non-HTML record ...): counted by ``reason``, not a reject."""

    reason: str = "other"


# ---- paths ---------------------------------------------------------------------------------------------


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _has_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def expand_paths(patterns: str | Sequence[str], exts: Sequence[str] | None = None) -> list[str]:
    """Expand files, directories (recursively) and globs, local or fsspec URLs, into a sorted file list.

    Raises :class:`InputError` naming the pattern that matched nothing, or that could not be listed
    (permission, credentials, network): an error listing is never an empty result.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for pattern in patterns:
        try:
            found = _expand_one(str(pattern), exts)
        except MathcorpusError:
            raise
        except Exception as e:
            raise InputError(f"{pattern}: cannot list: {type(e).__name__}: {e}") from None
        if not found:
            raise InputError(f"{pattern}: no such file or no matching input files")
        out.extend(found)
    return sorted(dict.fromkeys(out))


def _keep(p: str, exts: Sequence[str] | None) -> bool:
    name = os.path.basename(p.rstrip("/"))
    return not name.startswith((".", "_")) and (exts is None or name.lower().endswith(tuple(exts)))


def _expand_one(pattern: str, exts: Sequence[str] | None) -> list[str]:
    if is_remote(pattern):
        fs, _, _ = fsspec.get_fs_token_paths(pattern)
        protocol = pattern.split("://", 1)[0]
        kind = None if _has_glob(pattern) else path_kind(fs, pattern)
        if _has_glob(pattern):
            paths = fs.glob(pattern)
        elif kind == "directory":
            paths = [p for p in fs.find(pattern)]
        elif kind is not None:
            return [pattern]
        else:
            paths = []
        return [f"{protocol}://{p}" if "://" not in p else p for p in paths if _keep(p, exts)]
    if pattern.startswith("file://"):
        pattern = pattern[len("file://") :]
    if _has_glob(pattern):
        paths = [p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        return [p for p in paths if _keep(p, exts)]
    if os.path.isdir(pattern):
        return [
            os.path.join(root, f)
            for root, dirs, files in os.walk(pattern, onerror=_raise)
            for f in files
            if _keep(f, exts) and not _hidden(os.path.relpath(root, pattern))
        ]
    if os.path.isfile(pattern):
        return [pattern]
    return []


def path_kind(fs, path: str) -> str | None:
    """``"directory"``, ``"file"`` or None when ``path`` does not exist. Unlike fsspec's ``exists``/``isdir``
    (which answer False on any error), a permission, credential or network error raises."""
    try:
        return fs.info(path).get("type", "file")
    except FileNotFoundError:
        return None


def _raise(e: OSError) -> None:
    raise e


def _hidden(relative_dir: str) -> bool:
    """True when a folder below the input root is hidden (``.git``, ``.mix-work`` ...)."""
    return any(part.startswith(".") and part != "." for part in relative_dir.split(os.sep))


def list_shards(folder: str, exts: Sequence[str] = PARQUET_EXT, *, missing_ok: bool = True) -> list[str]:
    """The shard files under ``folder`` (sorted). A folder that does not exist is empty when ``missing_ok``;
    any other failure (permission, credentials, network) raises :class:`InputError` naming the folder."""
    try:
        fs, _, (target,) = fsspec.get_fs_token_paths(folder)
        kind = path_kind(fs, target)
        if kind is None:
            if missing_ok:
                return []
            raise InputError(f"{folder}: no such folder")
        if kind != "directory":
            return [folder] if _keep(folder, exts) else []
    except MathcorpusError:
        raise
    except Exception as e:
        raise InputError(f"{folder}: cannot list: {type(e).__name__}: {e}") from None
    try:
        return expand_paths(folder, exts=exts)
    except InputError as e:
        if "no such file or no matching" in str(e):
            return []
        raise


# ---- which files are documents ---------------------------------------------------------------------------


class _FS:
    """The few listing calls the resolver needs, for local paths (os) and fsspec URLs alike."""

    def __init__(self, path: str):
        self.remote = is_remote(path)
        self.fs = fsspec.get_fs_token_paths(path)[0] if self.remote else None
        self.protocol = path.split("://", 1)[0] if self.remote else ""

    def isdir(self, p: str) -> bool:
        return path_kind(self.fs, p) == "directory" if self.remote else os.path.isdir(p)

    def isfile(self, p: str) -> bool:
        return path_kind(self.fs, p) not in (None, "directory") if self.remote else os.path.isfile(p)

    def exists(self, p: str) -> bool:
        return path_kind(self.fs, p) is not None if self.remote else os.path.exists(p)

    def listdir(self, p: str) -> list[str]:
        if not self.remote:
            return sorted(os.path.join(p, n) for n in os.listdir(p))
        out = []
        for q in self.fs.ls(p, detail=False):
            q = q.rstrip("/")
            out.append(q if "://" in q else f"{self.protocol}://{q}")
        return sorted(out)

    def glob(self, pattern: str) -> list[str]:
        if not self.remote:
            return sorted(_glob.glob(pattern, recursive=True))
        return sorted(q if "://" in q else f"{self.protocol}://{q}" for q in self.fs.glob(pattern))


def document_folder(folder: str) -> str:
    """The folder holding the documents a command's output folder passes on.

    A run folder (``run.json`` or ``stages/`` beside ``corpus/``) means its ``corpus/``; a command output folder
    with ``kept/`` (classify score, filter, dedup, decontam) means ``kept/``; any other folder is itself.
    """
    fs = _FS(folder)
    base = folder.rstrip("/")
    if fs.isdir(f"{base}/corpus") and (fs.exists(f"{base}/run.json") or fs.isdir(f"{base}/stages")):
        return f"{base}/corpus"
    if fs.isdir(f"{base}/kept"):
        return f"{base}/kept"
    return base


def _folder_files(folder: str, exts: Sequence[str] | None, fs: _FS) -> list[str]:
    folder = document_folder(folder)
    out: list[str] = []
    for p in fs.listdir(folder):
        name = os.path.basename(p)
        if name.startswith((".", "_")):
            continue
        if fs.isdir(p):
            if name not in NOT_DOCUMENT_DIRS:
                out.extend(_folder_files(p, exts, fs))
        elif _keep(p, exts) and not name.startswith("rejects"):
            out.append(p)
    return out


def resolve_document_inputs(patterns: str | Sequence[str], exts: Sequence[str] | None = DOCUMENT_EXT) -> list[str]:
    """The document files that a command's INPUT arguments mean (sorted, no duplicates).

    Each argument is a file (taken as given), a glob (files with ``exts``), or a folder: a run folder means its
    ``corpus/``, a command's output folder its ``kept/`` shards, any other folder the files with ``exts`` below
    it, leaving out hidden files, ``rejects*`` files and ``removed/``, ``rejects/``, ``logs/`` ... folders.
    Reports, plots and logs are never documents. Raises :class:`InputError` for an argument that matches no
    document file or that cannot be listed (permission, credentials, network).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for pattern in map(str, patterns):
        if pattern.startswith("file://"):
            pattern = pattern[len("file://") :]
        fs = _FS(pattern)
        try:
            if _has_glob(pattern):
                found = []
                for p in fs.glob(pattern):
                    if fs.isdir(p):
                        found.extend(_folder_files(p, exts, fs))
                    elif _keep(p, exts) and not os.path.basename(p).startswith("rejects"):
                        found.append(p)
            elif fs.isdir(pattern):
                found = _folder_files(pattern.rstrip("/") or "/", exts, fs)
            elif fs.isfile(pattern):
                found = [pattern]
            else:
                raise InputError(f"{pattern}: no such file or folder")
        except MathcorpusError:
            raise
        except Exception as e:
            raise InputError(f"{pattern}: cannot list: {type(e).__name__}: {e}") from None
        if not found:
            shown = ", ".join(exts) if exts else "any"
            raise InputError(f"{pattern}: no document files ({shown}) found")
        out.extend(found)
    return sorted(dict.fromkeys(out))


def common_root(paths: Sequence[str]) -> str:
    """The deepest folder holding every path ('' when they share none): ids are made relative to it.

    Works on ``/``-separated components, so fsspec URLs (``s3://bucket/a``) keep their ``//``."""
    return common_dir([os.path.dirname(p) for p in paths])


def common_dir(dirs: Sequence[str]) -> str:
    """The deepest common folder of ``dirs`` ('' when none)."""
    if not dirs:
        return ""
    parts = [d.rstrip("/").split("/") if d.rstrip("/") else [""] for d in dirs]
    common: list[str] = []
    for comps in zip(*parts, strict=False):
        if any(c != comps[0] for c in comps):
            break
        common.append(comps[0])
    return "/".join(common) if common != [""] else "/"


def open_file(path: str, mode: str = "rb", **kwargs):
    """Open a local path or fsspec URL; ``.gz`` and ``.zst`` are decompressed, other compressions refused."""
    lower = path.lower()
    if lower.endswith(REFUSED_COMPRESSION):
        raise InputError(f"{path}: compressed as {os.path.splitext(lower)[1]}, which is not read: decompress it "
                         "or recompress it as .gz or .zst")
    if lower.endswith(".zst") and mode == "rb":  # fsspec's zstd reader cannot iterate lines: buffer it
        import zstandard

        raw = fsspec.open(path, "rb", **kwargs).open()
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return fsspec.open(path, mode, compression="infer", **kwargs).open()


# ---- records -------------------------------------------------------------------------------------------


def _repair_str(s: str) -> tuple[str, int]:
    n = len(_SURROGATE.findall(s)) if not s.isascii() else 0
    return (_SURROGATE.sub("\ufffd", s), n) if n else (s, 0)


def repair_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every lone surrogate (from JSON escapes like ``"\\ud800"``) replaced by U+FFFD, and how
    many were replaced. Lone surrogates cannot be written as UTF-8 (Parquet, JSONL), so they are never kept."""
    if isinstance(value, str):
        return _repair_str(value)
    if isinstance(value, dict):
        total, out = 0, {}
        for k, v in value.items():
            (k2, a), (v2, b) = _repair_str(k) if isinstance(k, str) else (k, 0), repair_surrogates(v)
            out[k2] = v2
            total += a + b
        return out, total
    if isinstance(value, list):
        total, out = 0, []
        for v in value:
            v2, n = repair_surrogates(v)
            out.append(v2)
            total += n
        return out, total
    return value, 0


def parse_json_line(raw: bytes, path: str, lineno: int) -> dict[str, Any] | Reject:
    """One JSONL line -> a record (lone surrogates repaired and counted under ``repaired_surrogates``) or a
    :class:`Reject` saying why.

    orjson parses the clean lines (it validates UTF-8 and refuses lone surrogates); any line it refuses goes
    through the standard library, which names the problem or decodes the surrogates for repair."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(record, dict):
            return record
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Reject(path, lineno, f"invalid UTF-8 at byte {e.start}", raw.decode("utf-8", "replace"))
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        return Reject(path, lineno, f"malformed JSON: {e.msg} (column {e.colno})", line)
    except RecursionError:
        return Reject(path, lineno, "malformed JSON: nested too deeply", line[:2000])
    if not isinstance(record, dict):
        return Reject(path, lineno, "JSON value is not an object", line)
    if _SURROGATE_ESCAPE.search(raw):
        record, n = repair_surrogates(record)
        if n:
            record[REPAIRED_KEY] = n
    return record


def iter_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield ``(line_number, record)`` or ``(line_number, Reject)`` for every non-blank line.

    A UTF-8 BOM before the first record is ignored. A bad line is a reject and reading goes on; a file that
    cannot be read past some point (a cut ``.gz``/``.zst`` stream) ends with a reject at the next line.
    An unreadable file (missing, permission) raises :class:`InputError`.
    """
    try:
        fh = open_file(path, "rb")
    except MathcorpusError:
        raise
    except (FileNotFoundError, OSError) as e:
        raise InputError(f"{path}: cannot open: {e}") from e
    lineno = 0
    with fh:
        try:
            for lineno, raw in enumerate(fh, 1):
                if lineno == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM):]
                if not raw.strip():
                    continue
                yield lineno, parse_json_line(raw, path, lineno)
        except Exception as e:  # decompression / read error: nothing after this point can be read
            if lineno == 0 and isinstance(e, PermissionError):
                raise InputError(f"{path}: cannot read: {e}") from e
            yield lineno + 1, Reject(path, lineno + 1, f"unreadable after line {lineno}: {type(e).__name__}: {e}")


def iter_parquet(path: str, columns: Sequence[str] | None = None,
                 batch_size: int = 4096) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield ``(row_number, row)`` of a Parquet file one row group at a time (bounded memory); a row group
    that cannot be decoded is one :class:`Reject` (file, row group, rows) and reading goes on with the next."""
    try:
        fh = open_file(path, "rb")
        pf = pq.ParquetFile(fh)
    except MathcorpusError:
        raise
    except (FileNotFoundError, OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{path}: not a readable Parquet file: {e}") from e
    with fh:
        names = pf.schema_arrow.names
        cols = [c for c in columns if c in names] if columns else None
        start = 0
        for i in range(pf.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            row = start
            try:
                for batch in pf.iter_batches(batch_size=batch_size, row_groups=[i], columns=cols, use_threads=False):
                    for rec in batch.to_pylist():
                        row += 1
                        yield row, rec
            except Exception as e:
                yield row + 1, Reject(path, row + 1, f"row group {i} (rows {start + 1}-{start + n}) unreadable, "
                                      f"{start + n - row} row(s) lost: {type(e).__name__}: {e}")
            start += n


def record_format(path: str) -> str:
    """``parquet`` or ``jsonl`` by extension; :class:`InputError` naming the file otherwise."""
    lower = path.lower()
    if lower.endswith(PARQUET_EXT):
        return "parquet"
    if lower.endswith(JSONL_EXT):
        return "jsonl"
    if lower.endswith(REFUSED_COMPRESSION):
        open_file(path)  # raises, naming the compression
    raise InputError(f"{path}: unknown record format (expected .parquet, .jsonl, .jsonl.gz or .jsonl.zst)")


def iter_records(path: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Records of a JSONL or Parquet file, as ``(position, record | Reject)``."""
    if record_format(path) == "parquet":
        yield from iter_parquet(path)
    else:
        yield from iter_jsonl(path)


def record_columns(path: str, sample: int = 100) -> set[str] | None:
    """Column names of a record file: the Parquet schema, or the keys of its first ``sample`` JSONL records
    (None when it has no readable record)."""
    if record_format(path) == "parquet":
        with open_file(path, "rb") as fh:
            return set(pq.ParquetFile(fh).schema_arrow.names)
    keys: set[str] | None = None
    seen = 0
    for _, rec in iter_jsonl(path):
        if isinstance(rec, Reject):
            continue
        keys = (keys or set()) | set(rec)
        seen += 1
        if seen >= sample:
            break
    return keys


def require_columns(files: Sequence[str], columns: Sequence[str], option: str, *, each: bool = True) -> None:
    """Fail before any work when a column a command was told to use is missing from the records.

    ``each``: every file must have every column; otherwise every file must have at least one of them and
    each column must be in some file (Q&A columns such as ``question,answer``). Raises :class:`InputError`:
    ``FILE: no column 'body' (--text-column); it has: id, text``.
    """
    seen: set[str] = set()
    for path in files:
        have = record_columns(path)
        if have is None:
            continue
        seen |= have
        missing = [c for c in columns if c not in have]
        if missing and (each or len(missing) == len(columns)):
            names = ", ".join(repr(c) for c in missing)
            raise InputError(f"{path}: no column {names} ({option}); it has: {', '.join(sorted(have)) or 'none'}")
    absent = [c for c in columns if seen and c not in seen]
    if absent:
        raise InputError(f"{files[0]}: no input file has column {', '.join(map(repr, absent))} ({option})")


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

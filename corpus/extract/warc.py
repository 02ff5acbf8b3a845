"""Robust WARC reading: FastWARC records with their provenance, corrupt records skipped, truncation reported.

:func:`iter_archive` yields one item per archive record: a :class:`WarcRecord` (an HTML response/resource or a
WET conversion, with its payload and provenance: file, byte offset and length, WARC-Record-ID, target URI,
crawl date), a :class:`Skip` (non-HTML, non-2xx, revisit, request/metadata/warcinfo records: counted by reason)
or a :class:`corpus.io.Reject` (corrupt or truncated record: file, offset, reason).

FastWARC (the resiliparse project's reader) stops at the first corrupt record; here the reader then resyncs on
the next gzip member (``.warc.gz``: one record per member) or the next ``WARC/1.`` header (plain ``.warc``) and
goes on. A record whose payload is shorter than its ``Content-Length`` (a file cut inside it) is a Reject, as is
a gzip member cut short after the last record that could be read. ARC files are read with warcio
(``arc2warc``), which FastWARC does not support.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from corpus.io import InputError, Reject, Skip, is_remote, open_file

HTML_TYPES = ("text/html", "application/xhtml+xml")
GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/"
PAYLOAD_TYPES = ("response", "resource", "conversion")


@dataclass
class WarcRecord:
    """One readable record: payload bytes (HTTP headers stripped) and provenance."""

    offset: int  # byte offset of the record (of its gzip member in a .warc.gz) in the file
    length: int  # bytes the record takes in the file (compressed), 0 when unknown
    record_id: str
    rec_type: str  # response | resource | conversion
    url: str | None
    date: str | None
    payload: bytes
    content_type: str = ""
    charset: str | None = None  # from the HTTP Content-Type header
    status: int | None = None
    truncated: bool = False

    def provenance(self, warc_file: str) -> dict:
        return {"warc_file": warc_file, "warc_offset": self.offset, "warc_length": self.length,
                "warc_record_id": self.record_id, "url": self.url, "crawl_date": self.date}


def skip(path: str, offset: int, reason: str) -> Skip:
    """A record that is no document (by design, not an error): ``reason`` is not_html, non_2xx, revisit,
    request, metadata, warcinfo ..."""
    return Skip(path, 0, f"skipped: {reason} record at byte offset {offset}", reason=reason)


@dataclass
class _Cursor:
    """Where the reader is: the file's bytes and the offsets of the records read so far."""

    data: bytes
    gz: bool
    starts: list[int] = field(default_factory=list)


def header_charset(content_type: str | None) -> str | None:
    if content_type and "charset=" in content_type.lower():
        return content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip("\"'") or None
    return None


def _read_all(path: str) -> bytes | mmap.mmap:
    """The stored bytes of ``path``: a local file is memory-mapped (a 1 GB crawl file costs page cache, not
    process memory), a remote one is read."""
    import fsspec

    try:
        if not is_remote(path):
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    return b""
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        with fsspec.open(path, "rb") as fh:  # the stored bytes: gzip members are found and read here
            return fh.read()
    except (OSError, EOFError, ValueError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def _next_start(cur: _Cursor, after: int) -> int:
    """Offset of the next gzip member / WARC header after ``after`` (-1: none)."""
    return cur.data.find(GZIP_MAGIC if cur.gz else WARC_MAGIC, after)


def _member_complete(data: bytes, start: int) -> bool:
    """Whether the gzip member at ``start`` decompresses to its end (its trailer is there)."""
    d = zlib.decompressobj(31)
    try:
        pos = start
        while pos < len(data) and not d.eof:
            d.decompress(data[pos:pos + (1 << 20)], 1 << 16)
            while d.unconsumed_tail and not d.eof:
                d.decompress(d.unconsumed_tail, 1 << 16)
            pos += 1 << 20
    except zlib.error:
        return False
    return d.eof


def iter_archive(path: str, *, max_bytes: int = 0) -> Iterator[WarcRecord | Skip | Reject]:
    """Every record of a WARC/WET file (see module doc). ``max_bytes`` caps the payload read (0: no cap)."""
    lower = path.lower()
    if lower.endswith((".arc", ".arc.gz")):
        yield from _iter_arc(path, max_bytes)
        return
    data = _read_all(path)
    if not data:
        return
    cur = _Cursor(data, data[:3] == GZIP_MAGIC)
    start, ordinal = 0, 0
    while start >= 0 and start < len(data):
        failed_at = None
        try:
            for item in _iter_from(path, cur, start, max_bytes):
                ordinal += 1
                yield item
        except _Corrupt as e:
            failed_at, reason = e.offset, e.reason
        except _StopFile:
            return
        if failed_at is None:
            break
        yield Reject(path, ordinal + 1, f"corrupt archive record at byte offset {failed_at}: {reason}")
        ordinal += 1
        start = _resync(path, cur, failed_at)
    yield from _check_tail(path, cur, ordinal)


class _Corrupt(Exception):
    def __init__(self, offset: int, reason: str):
        super().__init__(reason)
        self.offset, self.reason = offset, reason


def _resync(path: str, cur: _Cursor, failed_at: int) -> int:
    """The first offset after ``failed_at`` where a record can be read again (-1: none)."""
    from fastwarc.warc import ArchiveIterator

    pos = _next_start(cur, failed_at + 1)
    while pos >= 0:
        try:
            it = ArchiveIterator(_Slice(cur.data, pos), parse_http=False)
            rec = next(iter(it), None)
            if rec is not None:
                return pos
        except Exception:  # noqa: BLE001 - not a record start: look further
            pass
        pos = _next_start(cur, pos + 1)
    return -1


class _Slice:
    """A read-only file object over ``data[start:]`` (FastWARC reads file-like objects)."""

    def __init__(self, data: bytes, start: int):
        import io

        self._fh = io.BytesIO(memoryview(data)[start:])

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def _iter_from(path: str, cur: _Cursor, start: int, max_bytes: int) -> Iterator[WarcRecord | Skip | Reject]:
    """Records from ``start`` on; each is yielded once the next one is found (so its length is known)."""
    from fastwarc.warc import ArchiveIterator

    last, end = start, start  # offset of the last record read, and where it ends (plain WARC)
    it = iter(ArchiveIterator(_Slice(cur.data, start), parse_http=False))
    pending: WarcRecord | Skip | None = None
    while True:
        try:
            rec = next(it)
        except StopIteration:
            break
        except Exception as e:  # noqa: BLE001 - FastWARC raises OSError/ValueError on corrupt bytes
            if pending is not None:
                yield _finish(pending, cur, None)
            failed = end  # plain WARC: where the last record ended; .warc.gz: the next member after it
            if cur.gz:
                failed = _next_start(cur, last + 1) if cur.starts and cur.starts[-1] == last else last
            raise _Corrupt(failed if failed >= 0 else last, f"{type(e).__name__}: {e}") from None
        offset = start + rec.stream_pos
        if pending is not None:
            yield _finish(pending, cur, offset)
        last = offset
        cur.starts.append(offset)
        if not cur.gz:  # header, block of Content-Length bytes, CRLF CRLF
            end = cur.data.find(b"\r\n\r\n", offset) + 4 + rec.content_length + 4
        pending = _record(path, rec, offset, max_bytes)
        if isinstance(pending, WarcRecord) and pending.truncated:
            yield Reject(path, len(cur.starts), f"archive truncated inside record {pending.record_id} at byte "
                                                f"offset {offset} (payload cut short; nothing after it can be read)")
            raise _StopFile
    if pending is not None:
        yield _finish(pending, cur, None)


def _finish(item: WarcRecord | Skip, cur: _Cursor, next_offset: int | None) -> WarcRecord | Skip:
    if isinstance(item, WarcRecord):
        if next_offset is None:
            nxt = _next_start(cur, item.offset + 1) if cur.gz else -1
            next_offset = nxt if nxt >= 0 else len(cur.data)
        item.length = next_offset - item.offset
    return item


class _StopFile(Exception):
    pass


def _record(path: str, rec, offset: int, max_bytes: int) -> WarcRecord | Skip:
    rtype = str(rec.record_type).rsplit(".", 1)[-1]
    if rtype not in PAYLOAD_TYPES:
        return skip(path, offset, rtype)
    h = rec.headers
    rid = (h.get("WARC-Record-ID") or "").strip("<>")
    block = rec.reader.read(max_bytes + 65537) if max_bytes else rec.reader.read()
    expected = min(rec.content_length, max_bytes + 65537) if max_bytes else rec.content_length
    truncated = len(block) < expected  # the Content-Length bytes are not there: the file was cut inside
    status, ctype, body = None, "", block
    if rtype != "conversion" and "application/http" in (h.get("Content-Type") or "").lower():
        status, headers, body = parse_http(block)
        ctype = headers.get("content-type", "")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = dechunk(body)
        body = decode_content(body, headers.get("content-encoding", ""))
        if status is not None and not 200 <= status < 300:
            return skip(path, offset, "non_2xx")
    ctype = ctype or h.get("WARC-Identified-Payload-Type") or ""
    if rtype == "resource":
        ctype = ctype or h.get("Content-Type") or ""
    if rtype != "conversion" and not any(t in ctype.lower() for t in HTML_TYPES):
        return skip(path, offset, "not_html")
    url = (h.get("WARC-Target-URI") or "").strip().strip("<>") or None  # WARC 1.1 drafts wrote <uri>
    return WarcRecord(offset, 0, rid, rtype, url, h.get("WARC-Date"), body,
                      content_type=ctype, charset=header_charset(ctype), status=status, truncated=truncated)


def parse_http(block: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """``(status, lower-cased headers, payload)`` of an HTTP response block (CRLF or bare LF line ends)."""
    end, sep = block.find(b"\r\n\r\n"), 4
    lf = block.find(b"\n\n")
    if end < 0 or 0 <= lf < end:
        end, sep = lf, 2
    if end < 0:
        return None, {}, block
    lines = block[:end].decode("latin-1").splitlines()
    status = None
    if lines and lines[0].startswith("HTTP/"):
        parts = lines[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, block[end + sep:]


def decode_content(body: bytes, encoding: str) -> bytes:
    """The body with its HTTP ``Content-Encoding`` (gzip, deflate, br) undone; as it is when that fails."""
    enc = encoding.strip().lower()
    try:
        if enc in ("gzip", "x-gzip", "deflate"):
            return zlib.decompressobj(47 if enc != "deflate" else 15).decompress(body)
        if enc == "br":
            import brotli

            return brotli.decompress(body)
    except Exception:  # noqa: BLE001 - a body that is not what its header says: left as it is
        return body
    return body


def dechunk(body: bytes) -> bytes:
    """HTTP chunked transfer-encoding undone; the body as it is when it is not well-formed chunks."""
    out, pos = [], 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return body
        try:
            size = int(body[pos:eol].split(b";")[0].strip() or b"x", 16)
        except ValueError:
            return body
        if size == 0:
            return b"".join(out)
        out.append(body[eol + 2:eol + 2 + size])
        pos = eol + 2 + size + 2


def _check_tail(path: str, cur: _Cursor, ordinal: int) -> Iterator[Reject]:
    """A file cut inside a gzip member after the last record read (or inside its only member): a Reject."""
    if not cur.gz:
        if not cur.starts and cur.data.strip():
            yield Reject(path, ordinal + 1, "no WARC record could be read at byte offset 0 "
                                            "(not a WARC file, or cut inside its first record)")
        return
    start = cur.starts[-1] if cur.starts else 0
    pos = start
    while pos >= 0:
        if not _member_complete(cur.data, pos):
            yield Reject(path, ordinal + 1, f"gzip member at byte offset {pos} is cut short (truncated file)")
            return
        pos = _next_start(cur, pos + 1)
        if pos >= 0 and pos <= start:
            break


def _iter_arc(path: str, max_bytes: int) -> Iterator[WarcRecord | Skip | Reject]:
    from warcio.archiveiterator import ArchiveIterator

    try:
        fh = open_file(path, "rb")
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e}") from e
    with fh:
        it = ArchiveIterator(fh, arc2warc=True)
        n = 0
        while True:
            n += 1
            try:
                rec = next(it)
            except StopIteration:
                return
            except Exception as e:  # noqa: BLE001 - warcio cannot resync inside an ARC: what was read stays
                yield Reject(path, n, f"corrupt archive record: {type(e).__name__}: {e}")
                return
            offset = it.get_record_offset()
            if rec.rec_type not in PAYLOAD_TYPES:
                yield skip(path, offset, rec.rec_type)
                continue
            status = rec.http_headers.get_statuscode() if rec.http_headers else None
            ctype = (rec.http_headers.get_header("Content-Type") if rec.http_headers else "") or ""
            if status and not status.startswith("2"):
                yield skip(path, offset, "non_2xx")
                continue
            if not any(t in ctype.lower() for t in HTML_TYPES):
                yield skip(path, offset, "not_html")
                continue
            body = rec.content_stream().read(max_bytes + 1 if max_bytes else -1)
            h = rec.rec_headers
            yield WarcRecord(offset, 0, (h.get_header("WARC-Record-ID") or "").strip("<>"), rec.rec_type,
                             h.get_header("WARC-Target-URI"), h.get_header("WARC-Date"), body, content_type=ctype,
                             charset=header_charset(ctype), status=int(status) if status else None)


def read_range(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes of ``path`` from ``offset`` (a local file or an fsspec URL: a ranged read)."""
    import fsspec

    try:
        with fsspec.open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read bytes {offset}-{offset + length}: {e}") from e


def read_record_at(path: str, offset: int, length: int, max_bytes: int = 0) -> WarcRecord | Skip | Reject:
    """The record at ``offset`` taking ``length`` bytes (its provenance): only those bytes are read, the way a
    Common Crawl page is fetched again by byte range."""
    data = read_range(path, offset, length)
    cur = _Cursor(data, data[:3] == GZIP_MAGIC)
    try:
        for item in _iter_from(path, cur, 0, max_bytes):
            if isinstance(item, WarcRecord | Skip):
                item = replace(item, offset=offset) if isinstance(item, WarcRecord) else item
            return item
    except (_Corrupt, _StopFile) as e:
        return Reject(path, 0, f"corrupt archive record at byte offset {offset}: {e}")
    return Reject(path, 0, f"no record at byte offset {offset}")

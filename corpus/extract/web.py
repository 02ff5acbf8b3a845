"""Web format handlers: raw HTML files, WARC/ARC response records, WET conversions, records with an HTML column.

Each handler yields schema rows or :class:`corpus.io.Reject` objects: a page that cannot be extracted (binary,
empty, too large, timed out, no main text) or a corrupt archive record is a Reject naming the file, the
record and the reason; the file's other pages are still read. Options (``FileContext.options``, merged from
the extract stage settings and the input's ``options``): ``timeout``, ``max_page_bytes``, ``html_column``,
``url_column``, ``trafilatura`` (extra ``trafilatura.extract`` keyword arguments).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from corpus.extract.html import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, ExtractError, domain_of, extract_page
from corpus.io import InputError, Reject, iter_records, open_file
from corpus.records import FileContext

HTML_TYPES = ("text/html", "application/xhtml+xml")


def _page_row(data: bytes | str, ctx: FileContext, doc_id: str, url: str | None = None,
              header_charset: str | None = None, **extra: Any) -> dict:
    page = extract_page(
        data, url, header_charset=header_charset, max_bytes=int(ctx.options.get("max_page_bytes", DEFAULT_MAX_BYTES)),
        timeout=float(ctx.options.get("timeout", DEFAULT_TIMEOUT)), options=ctx.options.get("trafilatura"),
    )
    return {"id": doc_id, "text": page.text, "url": page.url, "domain": page.domain, **page.metadata(), **extra}


def _read_bytes(path: str, limit: int) -> bytes:
    try:
        with open_file(path, "rb") as fh:
            return fh.read(limit + 1) if limit else fh.read()
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def read_html_file(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """One ``.html`` file -> one document (URL from ``<link rel=canonical>`` / ``og:url``)."""
    limit = int(ctx.options.get("max_page_bytes", DEFAULT_MAX_BYTES))
    data = _read_bytes(path, limit)
    try:
        yield _page_row(data, ctx, ctx.doc_id(), path=ctx.relpath)
    except ExtractError as e:
        yield Reject(path, 0, str(e))


def _header_charset(content_type: str | None) -> str | None:
    if content_type and "charset=" in content_type.lower():
        return content_type.lower().split("charset=", 1)[1].split(";")[0].strip()
    return None


def read_warc(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """WARC/ARC (HTML ``response`` records, extracted) and WET (``conversion`` records, text as is).

    Ids are the WARC-Record-ID; a record that cannot be read ends the file with a Reject (the records read
    before it are kept)."""
    from warcio.archiveiterator import ArchiveIterator

    limit = int(ctx.options.get("max_page_bytes", DEFAULT_MAX_BYTES))
    try:
        fh = open_file(path, "rb")
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e}") from e
    pos = 0
    with fh:
        it = iter(ArchiveIterator(fh, arc2warc=True))
        while True:
            pos += 1
            try:
                record = next(it)
            except StopIteration:
                break
            except Exception as e:  # truncated gzip, bad headers: what was read stays
                yield Reject(path, pos, f"corrupt archive record: {type(e).__name__}: {e}")
                break
            try:
                row = _warc_record(record, ctx, path, pos, limit)
            except ExtractError as e:
                rid = record.rec_headers.get_header("WARC-Record-ID") or ""
                yield Reject(path, pos, f"{rid} {e}".strip())
                continue
            except Exception as e:
                yield Reject(path, pos, f"corrupt archive record: {type(e).__name__}: {e}")
                break
            if row is not None:
                yield {**row, "_line": pos}
                if row.get("truncated"):
                    yield Reject(path, pos, "archive truncated inside this record (partial page kept, "
                                            "marked truncated); nothing after it can be read")
                    break


def _warc_record(record, ctx: FileContext, path: str, pos: int, limit: int) -> dict | None:
    headers = record.rec_headers
    rid = (headers.get_header("WARC-Record-ID") or "").strip("<>") or ctx.doc_id(pos)
    url = headers.get_header("WARC-Target-URI")
    date = headers.get_header("WARC-Date")
    extra = {"crawl_date": date, "warc_file": ctx.relpath, "warc_record": pos}
    if record.rec_type == "conversion":
        text = record.content_stream().read().decode("utf-8", "replace").strip()
        if not text:
            raise ExtractError("empty WET record")
        return {"id": rid, "text": text, "url": url, "domain": domain_of(url), **extra}
    if record.rec_type not in ("response", "resource"):
        return None
    ctype = ""
    if record.http_headers is not None:
        if record.http_headers.get_statuscode() and not record.http_headers.get_statuscode().startswith("2"):
            return None
        ctype = record.http_headers.get_header("Content-Type") or ""
    ctype = ctype or headers.get_header("WARC-Identified-Payload-Type") or headers.get_header("Content-Type") or ""
    if not any(t in ctype.lower() for t in HTML_TYPES):
        return None
    data, truncated = _read_payload(record, limit + 1)
    if truncated:
        extra["truncated"] = True
    return _page_row(data, ctx, rid, url=url, header_charset=_header_charset(ctype), **extra)


def _read_payload(record, limit: int) -> tuple[bytes, bool]:
    """The record payload (up to ``limit`` bytes); on a truncated archive, what could be read and True."""
    stream, chunks, size = record.content_stream(), [], 0
    try:
        while size < limit:
            chunk = stream.read(min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (EOFError, OSError, ValueError):
        if not chunks:
            raise
        return b"".join(chunks), True
    return b"".join(chunks), False


def read_html_records(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """JSONL/Parquet records with raw HTML in ``options.html_column`` (default ``html``); other fields kept."""
    html_col = ctx.options.get("html_column", "html")
    url_col = ctx.options.get("url_column", "url")
    id_col = ctx.options.get("id_column", "id")
    for pos, rec in iter_records(path):
        if isinstance(rec, Reject):
            yield rec
            continue
        html = rec.pop(html_col, None)
        if not isinstance(html, (str, bytes)):
            yield Reject(path, pos, f"record has no string {html_col!r} field", str(rec)[:300])
            continue
        doc_id = rec.pop(id_col, None) or ctx.doc_id(pos)
        url = rec.pop(url_col, None)
        rec.pop("text", None)
        try:
            row = _page_row(html, ctx, str(doc_id), url=url if isinstance(url, str) else None)
        except ExtractError as e:
            yield Reject(path, pos, f"{doc_id}: {e}")
            continue
        yield {**rec, **row, "_line": pos}

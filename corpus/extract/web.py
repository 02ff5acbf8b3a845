"""Web format handlers: raw HTML files, WARC/ARC response records, WET conversions, records with an HTML column.

Each handler yields schema rows or :class:`corpus.io.Reject` objects: a page that cannot be extracted (binary,
empty, too large, timed out, no main text) or a corrupt archive record is a Reject naming the file, the
record and the reason; the file's other pages are still read. Options (``FileContext.options``, merged from
the extract stage settings and the input's ``options``): ``timeout``, ``max_page_bytes``, ``html_column``,
``url_column``, ``trafilatura`` (extra ``trafilatura.extract`` keyword arguments), and
``_firstpass`` (set by the extract step: the first pass of :mod:`corpus.extract.prefilter`, which sends pages that
are not math candidates to removed/ unextracted).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from corpus.extract.html import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    ExtractError,
    decode_with_evidence,
    domain_of,
    extract_page,
)
from corpus.extract.prefilter import decide, first_pass_signals
from corpus.extract.warc import iter_archive
from corpus.io import InputError, Reject, Skip, iter_records, open_file
from corpus.records import FileContext


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
        yield _page_or_removed(data, ctx, ctx.doc_id(), path=ctx.relpath)
    except ExtractError as e:
        yield Reject(path, 0, str(e))


def _page_or_removed(data: bytes | str, ctx: FileContext, doc_id: str, url: str | None = None,
                     header_charset: str | None = None, **extra: Any) -> dict:
    """The extracted page; with a first pass (``ctx.options['_firstpass']``) a page that is not a candidate
    comes back unextracted, as a removed row (``_removed``) holding its first-pass signals."""
    fp = ctx.options.get("_firstpass")
    if fp is None:
        return _page_row(data, ctx, doc_id, url=url, header_charset=header_charset, **extra)
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    limit = int(ctx.options.get("max_page_bytes", DEFAULT_MAX_BYTES))
    if not raw.strip():
        raise ExtractError("empty page")
    if limit and len(raw) > limit:
        raise ExtractError(f"page too large ({len(raw)} bytes > max_page_bytes {limit})")
    sig, _ = first_pass_signals(raw, lambda: decode_with_evidence(raw, header_charset)[0], fp.score,
                                fp.settings.text_chars, enough_markup=fp.settings.min_markup,
                                min_cues=fp.settings.min_cues)
    decide(sig, domain_of(url), fp.threshold, fp.settings)
    if not sig.candidate:
        return {"id": doc_id, "text": "", "url": url, "domain": domain_of(url), "firstpass": sig.to_dict(),
                "_removed": "firstpass", **extra}
    return _page_row(raw, ctx, doc_id, url=url, header_charset=header_charset, firstpass=sig.to_dict(), **extra)


def read_warc(path: str, ctx: FileContext) -> Iterator[dict | Reject | Skip]:
    """WARC/ARC (HTML ``response``/``resource`` records, extracted) and WET (``conversion`` records, text as is).

    Ids are the WARC-Record-ID; every document carries its provenance (``warc_file``, ``warc_offset``,
    ``warc_length``, ``warc_record_id``, ``crawl_date``). A corrupt record is a Reject and reading resumes at the
    next record (:mod:`corpus.extract.warc`); records that are no documents come out as :class:`Skip` (counted
    by reason: not_html, non_2xx, revisit, request ...)."""
    limit = int(ctx.options.get("max_page_bytes", DEFAULT_MAX_BYTES))
    n = 0
    for item in iter_archive(path, max_bytes=limit):
        n += 1
        if isinstance(item, Reject):  # a Skip is a Reject subclass: both go to the reader's counters
            yield item
            continue
        extra = item.provenance(ctx.relpath)
        url = extra.pop("url")
        rid = item.record_id or ctx.doc_id(n)
        where = f"{rid} at byte offset {item.offset}"
        if item.rec_type == "conversion":
            text = item.payload.decode("utf-8", "replace").strip()
            if not text:
                yield Reject(path, n, f"{where}: empty WET record")
                continue
            yield {"id": rid, "text": text, "url": url, "domain": domain_of(url), **extra, "_line": n}
            continue
        if len(item.payload) > limit:
            yield Reject(path, n, f"{where}: page too large (> max_page_bytes {limit})")
            continue
        try:
            row = _page_or_removed(item.payload, ctx, rid, url=url, header_charset=item.charset, **extra)
        except ExtractError as e:
            yield Reject(path, n, f"{where}: {e}")
            continue
        yield {**row, "_line": n}


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
            row = _page_or_removed(html, ctx, str(doc_id), url=url if isinstance(url, str) else None)
        except ExtractError as e:
            yield Reject(path, pos, f"{doc_id}: {e}")
            continue
        yield {**rec, **row, "_line": pos}

"""Recall rounds over a first-pass pool: domain expansion without rescanning the crawl.

The extract stage with a first pass leaves every web page in its ``kept/`` (candidates, extracted) or
``removed/`` (turned away, with signals and provenance) shards. A round reads only those shards: a domain whose
pages are math-rich (:func:`corpus.extract.prefilter.math_rich_domains`) lets its turned-away pages through:
each is fetched again by byte range (``warc_file``, ``warc_offset``, ``warc_length``) and extracted. The next
round sees those pages as candidates; domains expanded once are not expanded again. Layout::

    {out}/round_01/kept.parquet   pages extracted in the round (schema rows, ``firstpass.reason: domain``)
    {out}/round_01/report.json    domains with their shares, pages fetched / extracted / rejected, bytes read
    {out}/recall.json             every round (written last)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.extract.html import ExtractError
from corpus.extract.prefilter import math_rich_domains
from corpus.extract.warc import WarcRecord, read_record_at
from corpus.io import PARQUET_EXT, Reject, iter_records, list_shards, write_json, write_parquet
from corpus.records import FileContext
from corpus.schema import loads_metadata, normalize_row, rows_to_table


@dataclass
class RoundSettings:
    rounds: int = 2
    min_share: float = 0.3  # candidate share that makes a domain math-rich
    min_pages: int = 2  # ... with at least this many candidates
    options: dict[str, Any] = field(default_factory=dict)  # extraction options (timeout, max_page_bytes ...)


def pool_rows(stage_dir: str) -> Iterator[dict[str, Any]]:
    """``{id, url, domain, candidate, warc_file, warc_offset, warc_length}`` of every page of the stage."""
    for part, candidate in (("kept", True), ("removed", False)):
        for path in list_shards(f"{stage_dir}/{part}", PARQUET_EXT):
            for _, rec in iter_records(path):
                if isinstance(rec, Reject):
                    raise ExtractError(str(rec))
                meta = loads_metadata(rec.get("metadata"))
                if "warc_offset" not in meta:
                    continue  # not a crawl page (books, code, HTML files)
                yield {"id": rec["id"], "url": rec.get("url"), "domain": rec.get("domain"), "candidate": candidate,
                       "crawl_date": meta.get("crawl_date"), "warc_record_id": meta.get("warc_record_id"),
                       **{k: meta[k] for k in ("warc_file", "warc_offset", "warc_length")}}


def fetch_and_extract(row: dict[str, Any], resolve: Callable[[str], str], ctx: FileContext) -> dict | Reject:
    """One turned-away page, read again by byte range and extracted (its provenance kept); ``resolve`` maps the
    ``warc_file`` recorded in the provenance to a readable path or URL."""
    from corpus.extract.web import _page_row

    path = resolve(row["warc_file"])
    rec = read_record_at(path, int(row["warc_offset"]), int(row["warc_length"]))
    if not isinstance(rec, WarcRecord):
        return rec if type(rec) is Reject else Reject(path, 0, f"byte offset {row['warc_offset']}: no page there")
    prov = rec.provenance(row["warc_file"])
    url = prov.pop("url")
    try:
        return _page_row(rec.payload, ctx, row["id"], url=url, header_charset=rec.charset,
                         firstpass={"candidate": True, "reason": "domain"}, **prov)
    except ExtractError as e:
        return Reject(path, 0, f"{row['id']} at byte offset {row['warc_offset']}: {e}")


def run_rounds(stage_dir: str, resolve: Callable[[str], str] | str, out_dir: str,
               settings: RoundSettings) -> dict[str, Any]:
    """Run the rounds (a rerun redoes them: they are cheap and read no crawl bytes but the fetched pages)."""
    if isinstance(resolve, str):
        root = resolve
        resolve = lambda rel: os.path.join(root, rel)  # noqa: E731
    pool = list(pool_rows(stage_dir))
    ctx = FileContext("recall", "web", "", settings.options)
    known: set[str] = set()
    rounds = []
    for k in range(1, settings.rounds + 1):
        domains = math_rich_domains(pool, min_share=settings.min_share, min_pages=settings.min_pages, known=known)
        fetch = [r for r in pool if not r["candidate"] and r["domain"] in domains]
        rows, rejects, read = [], [], 0
        for r in fetch:
            read += int(r["warc_length"])
            out = fetch_and_extract(r, resolve, ctx)
            if isinstance(out, Reject):
                rejects.append(str(out))
            else:
                rows.append(normalize_row(out, source="web"))
            r["candidate"] = True
        known |= set(domains)
        rdir = f"{out_dir}/round_{k:02d}"
        write_parquet(rows_to_table(rows), f"{rdir}/kept.parquet")
        report = {"round": k, "domains": domains, "fetched": len(fetch), "extracted": len(rows),
                  "rejected": len(rejects), "rejects": rejects[:50], "bytes_read": read,
                  "pool_pages": len(pool)}
        write_json(report, f"{rdir}/report.json")
        rounds.append(report)
    summary = {"settings": asdict(settings), "rounds": rounds,
               "extracted": sum(r["extracted"] for r in rounds), "bytes_read": sum(r["bytes_read"] for r in rounds)}
    write_json(summary, f"{out_dir}/recall.json")
    return json.loads(json.dumps(summary))

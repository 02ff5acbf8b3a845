"""Input formats: which reader turns a file into document-schema rows.

The format of a file is the input group's ``format`` or, with ``auto``, inferred from its extension:

========================  ==========================================================================
format                    files
========================  ==========================================================================
``jsonl``, ``parquet``    document records (``text``, optional ``id`` and schema columns)
``html``                  ``.html``, ``.htm``, ``.xhtml`` (one page per file)
``warc``                  ``.warc(.gz)``, ``.arc(.gz)`` (HTML response records), ``.wet(.gz)`` (text)
``html-records``          JSONL/Parquet with raw HTML in ``options.html_column`` (declare the format)
``book``                  ``.epub``; ``.txt``/``.md``/``.tex`` when the input's source is not ``code``
``code``                  source files by extension, ``.ipynb`` notebooks
========================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from corpus.extract import TEXT_EXTENSIONS, read_text_file
from corpus.extract.books import read_book
from corpus.extract.code import LANGUAGES, read_code_file
from corpus.extract.web import read_html_file, read_html_records, read_warc
from corpus.io import InputError, Reject
from corpus.records import FileContext, read_record_file

Handler = Callable[[str, FileContext], Iterator[dict | Reject]]

FORMATS: dict[str, Handler] = {
    "jsonl": read_record_file,
    "parquet": read_record_file,
}

EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.zst": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def register_format(name: str, handler: Handler, extensions: tuple[str, ...] = ()) -> None:
    FORMATS[name] = handler
    for ext in extensions:
        EXTENSIONS[ext] = name


def detect_format(path: str, declared: str = "auto") -> str:
    """The format name for ``path``: ``declared`` unless it is ``auto``, else by (longest) extension."""
    if declared != "auto":
        if declared not in FORMATS:
            raise InputError(f"{path}: unknown input format {declared!r} (known: {', '.join(sorted(FORMATS))})")
        return declared
    lower = path.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return EXTENSIONS[ext]
    raise InputError(f"{path}: cannot tell the input format from the extension; set 'format' on the input")


def handler_for(fmt: str) -> Handler:
    return FORMATS[fmt]


def known_extensions() -> tuple[str, ...]:
    return tuple(EXTENSIONS)


register_format("html", read_html_file, (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz"))
register_format("warc", read_warc, (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz", ".warc.wet",
                                    ".warc.wet.gz"))
register_format("html-records", read_html_records)
register_format("book", read_book, (".epub",))
register_format("text", read_text_file, TEXT_EXTENSIONS)
register_format("code", read_code_file, tuple(LANGUAGES))

"""Extraction of web pages (math kept as LaTeX), books and code into the document schema.

Importing this package registers its input formats with :mod:`corpus.formats`:

========================  ==========================================================================
format                    files
========================  ==========================================================================
``html``                  ``.html``, ``.htm``, ``.xhtml`` (one page per file)
``warc``                  ``.warc(.gz)``, ``.arc(.gz)`` (HTML response records), ``.wet(.gz)`` (text)
``html-records``          JSONL/Parquet with raw HTML in ``options.html_column`` (declare the format)
``book``                  ``.epub``; ``.txt``/``.md``/``.tex`` when the input's source is not ``code``
``code``                  source files by extension, ``.ipynb`` notebooks
========================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterator

from corpus.extract.books import read_book
from corpus.extract.code import LANGUAGES, read_code_file
from corpus.extract.web import read_html_file, read_html_records, read_warc
from corpus.formats import FileContext, register_format
from corpus.io import Reject

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".tex", ".latex", ".rst")


def read_text_file(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """Plain text / Markdown / TeX: a code file inside a ``source: code`` input, else a book."""
    if ctx.source == "code":
        yield from read_code_file(path, ctx)
    else:
        yield from read_book(path, ctx)


register_format("html", read_html_file, (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz"))
register_format("warc", read_warc, (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz", ".warc.wet",
                                    ".warc.wet.gz"))
register_format("html-records", read_html_records)
register_format("book", read_book, (".epub",))
register_format("text", read_text_file, TEXT_EXTENSIONS)
register_format("code", read_code_file, tuple(LANGUAGES))

__all__ = ["read_book", "read_code_file", "read_html_file", "read_html_records", "read_text_file", "read_warc"]

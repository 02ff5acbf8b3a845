"""Extraction of web pages (math kept as LaTeX), books and code into the document schema.

The handlers here are registered as input formats by :mod:`corpus.formats`.
"""

from __future__ import annotations

from collections.abc import Iterator

from corpus.extract.books import read_book
from corpus.extract.code import read_code_file
from corpus.extract.web import read_html_file, read_html_records, read_warc
from corpus.io import Reject
from corpus.records import FileContext

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".tex", ".latex", ".rst")


def read_text_file(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """Plain text / Markdown / TeX: a code file inside a ``source: code`` input, else a book."""
    if ctx.source == "code":
        yield from read_code_file(path, ctx)
    else:
        yield from read_book(path, ctx)


__all__ = ["read_book", "read_code_file", "read_html_file", "read_html_records", "read_text_file", "read_warc"]

"""Book handlers: ``.txt``, ``.md``, ``.tex`` (comments and preamble dropped, math kept) and ``.epub``.

Long books are split at section, then paragraph, then line boundaries into parts under a token budget
(``options.max_tokens``, default 3500: fits a 4K-token context with room for special tokens). Part ids are
``FileContext.doc_id(part)``; metadata records ``part``, ``parts`` and the section title a part starts in.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from posixpath import dirname, join, normpath

from corpus.io import InputError, Reject, open_file
from corpus.records import FileContext

DEFAULT_MAX_TOKENS = 3500
MD_HEADING = re.compile(r"^#{1,6}\s+\S")
TXT_HEADING = re.compile(r"^(chapter|section|part|appendix|lecture)\b[\s\dIVXLC.:]+", re.I)
TEX_SECTION = re.compile(r"^\\(part|chapter|section|subsection)\*?\{")


def estimate_tokens(text: str) -> int:
    """Cheap token estimate (Qwen2-like BPE: ~3.6 characters a token on English/LaTeX; CJK ~1 per char)."""
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return int((len(text) - cjk) / 3.6) + cjk + 1


def decode_text(data: bytes, path: str) -> str:
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary content (NUL bytes), not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is None:
            raise InputError(f"{path}: cannot decode the text (not UTF-8, no charset detected)") from None
        return data.decode(best.encoding, "replace")


# ---- TeX ----------------------------------------------------------------------------------------------------

COMMENT = re.compile(r"(?<!\\)%.*$", re.M)


def clean_tex(src: str) -> str:
    """Drop ``%`` comments, the preamble up to ``\\begin{document}`` and everything after ``\\end{document}``."""
    src = src.replace("\\%", "\x00PCT\x00")
    src = COMMENT.sub("", src).replace("\x00PCT\x00", "\\%")
    src = re.sub(r"\\begin\{comment\}.*?\\end\{comment\}", "", src, flags=re.S)
    begin = src.find("\\begin{document}")
    if begin >= 0:
        src = src[begin + len("\\begin{document}"):]
    end = src.find("\\end{document}")
    if end >= 0:
        src = src[:end]
    src = re.sub(r"\\(maketitle|tableofcontents|newpage|clearpage|bibliographystyle\{[^}]*\})", "", src)
    return re.sub(r"\n[ \t]*\n(\s*\n)+", "\n\n", src).strip()


# ---- splitting ----------------------------------------------------------------------------------------------


def _is_heading(par: str, kind: str) -> bool:
    first = par.lstrip().split("\n", 1)[0]
    if kind == "md":
        return bool(MD_HEADING.match(first))
    if kind == "tex":
        return bool(TEX_SECTION.match(first))
    return bool(TXT_HEADING.match(first)) and len(first) < 120


def _pieces(par: str, max_tokens: int) -> list[str]:
    """A paragraph over the budget, cut at line boundaries, then at sentence ends / characters."""
    if estimate_tokens(par) <= max_tokens:
        return [par]
    out, cur = [], ""
    for line in par.split("\n"):
        if estimate_tokens(line) > max_tokens:
            step = int(max_tokens * 3.6)
            chunks = [line[i:i + step] for i in range(0, len(line), step)]
        else:
            chunks = [line]
        for chunk in chunks:
            if cur and estimate_tokens(cur) + estimate_tokens(chunk) > max_tokens:
                out.append(cur)
                cur = ""
            cur = f"{cur}\n{chunk}" if cur else chunk
    if cur:
        out.append(cur)
    return out


def split_text(text: str, max_tokens: int = DEFAULT_MAX_TOKENS, kind: str = "txt") -> list[tuple[str, str | None]]:
    """``(part_text, section)`` parts under ``max_tokens``, cut at section/paragraph/line boundaries."""
    pars = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    parts: list[tuple[str, str | None]] = []
    cur: list[str] = []
    cur_tokens = 0
    section = cur_section = None
    for par in pars:
        heading = _is_heading(par, kind)
        if heading:
            section = par.strip().split("\n", 1)[0][:200]
        for piece in _pieces(par, max_tokens):
            t = estimate_tokens(piece) + 1
            if cur and (cur_tokens + t > max_tokens or (heading and cur_tokens > max_tokens // 2)):
                parts.append(("\n\n".join(cur), cur_section))
                cur, cur_tokens = [], 0
            if not cur:
                cur_section = section
            cur.append(piece)
            cur_tokens += t
            heading = False
    if cur:
        parts.append(("\n\n".join(cur), cur_section))
    return parts


def _book_rows(text: str, ctx: FileContext, kind: str, **extra) -> Iterator[dict]:
    max_tokens = int(ctx.options.get("max_tokens", DEFAULT_MAX_TOKENS))
    parts = split_text(text, max_tokens, kind)
    for i, (part, section) in enumerate(parts):
        meta = {"path": ctx.relpath, "part": i, "parts": len(parts), "format": kind, **extra}
        if section:
            meta["section"] = section
        yield {"id": ctx.doc_id(i), "text": part, **meta, "_line": i + 1}


def _read(path: str) -> bytes:
    try:
        with open_file(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def read_book(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    """A ``.txt`` / ``.md`` / ``.tex`` / ``.epub`` book -> one document per part."""
    lower = path.lower()
    if lower.endswith(".epub"):
        yield from read_epub(path, ctx)
        return
    text = decode_text(_read(path), path)
    kind = "tex" if lower.endswith((".tex", ".latex")) else "md" if lower.endswith((".md", ".markdown")) else "txt"
    if kind == "tex":
        text = clean_tex(text)
    if not text.strip():
        yield Reject(path, 0, "empty book (no text after cleaning)")
        return
    yield from _book_rows(text, ctx, kind)


# ---- EPUB (zip of XHTML chapters; spine order from the OPF) ----------------------------------------------


def epub_chapters(path: str) -> Iterator[tuple[str, str]]:
    """``(href, xhtml)`` in reading order."""
    from lxml import etree

    with open_file(path, "rb") as fh, zipfile.ZipFile(fh) as z:
        container = etree.fromstring(z.read("META-INF/container.xml"))
        opf_path = container.xpath("//*[local-name()='rootfile']/@full-path")[0]
        opf = etree.fromstring(z.read(opf_path))
        manifest = {i.get("id"): i.get("href") for i in opf.xpath("//*[local-name()='item']")}
        for ref in opf.xpath("//*[local-name()='itemref']/@idref"):
            href = manifest.get(ref)
            if href:
                name = normpath(join(dirname(opf_path), href))
                yield href, z.read(name).decode("utf-8", "replace")


def xhtml_to_text(xhtml: str) -> str:
    """Chapter text: formulas as LaTeX (math pass), one paragraph per block element."""
    from lxml import html as lhtml

    from corpus.extract.math import restore, take_formulas

    root = lhtml.document_fromstring(xhtml.encode("utf-8"))
    mp = take_formulas(root)
    for el in root.iter("script", "style", "head"):
        el.drop_tree()
    blocks = []
    for el in root.iter("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "blockquote", "dd", "td"):
        if el.getparent() is not None and el.getparent().tag in ("li", "blockquote", "td"):
            continue
        txt = el.text_content().strip()
        if txt:
            blocks.append(("#" * int(el.tag[1]) + " " if el.tag[0] == "h" and el.tag[1:].isdigit() else "") + txt)
    text = "\n\n".join(blocks) if blocks else root.text_content().strip()
    return restore(text, mp)[0]


def read_epub(path: str, ctx: FileContext) -> Iterator[dict | Reject]:
    try:
        chapters = list(epub_chapters(path))
    except (KeyError, IndexError, zipfile.BadZipFile, ValueError) as e:
        yield Reject(path, 0, f"not a readable EPUB: {type(e).__name__}: {e}")
        return
    text = "\n\n".join(t for t in (xhtml_to_text(x) for _, x in chapters) if t)
    if not text.strip():
        yield Reject(path, 0, "empty EPUB (no text)")
        return
    yield from _book_rows(text, ctx, "md")

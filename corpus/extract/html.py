"""One HTML page -> main text in Markdown with its formulas as LaTeX (math pass + trafilatura).

:func:`extract_page` is pure (no I/O): bytes or str in, :class:`Page` out, or :class:`ExtractError` with a
one-line reason (binary content, too large, timed out, no main text). :func:`decode_with_evidence` picks the
charset from the BOM, the declared charset when the bytes agree with it, else the evidence in the bytes.
"""

from __future__ import annotations

import contextlib
import copy
import re
import signal
import threading
from dataclasses import dataclass, field
from html import escape as html_escape
from typing import Any
from urllib.parse import urlparse

from corpus.extract.math import PLACEHOLDER_RE, MathPass, formula_blocks, restore, take_formulas, wrap_loose_formulas

DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_TIMEOUT = 20.0
RECALL_BELOW = 0.97  # formula share under which the recall-oriented pass is tried
# trafilatura reads loose <div> text when the paragraphs of the part it extracts hold under 750 characters (3 x its
# MIN_EXTRACTED_SIZE); pages with less paragraph text than this get a retry without the formula paragraphs
SHORT_PAGE_PARAGRAPH_CHARS = 3000
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "output_format": "markdown",
    "include_tables": True,
    "include_formatting": True,
    "include_comments": False,  # comment sections: mostly boilerplate, and slow to extract (the recall pass keeps them)
    "include_links": False,
    "include_images": False,
    "fast": False,
}
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
DATE_META = ("article:published_time", "og:published_time", "datepublished", "date", "dc.date", "dc.date.issued",
             "citation_publication_date", "citation_date", "pubdate", "publishdate", "article:modified_time")


class ExtractError(Exception):
    """A page that cannot be extracted; the message is the one-line reason recorded in the rejects."""


@dataclass
class Page:
    text: str
    url: str | None = None
    domain: str | None = None
    date: str | None = None
    title: str | None = None
    formulas: int = 0  # formulas found in the page
    formulas_kept: int = 0  # ... of which survived the main-text extraction
    formula_kinds: dict[str, int] = field(default_factory=dict)
    charset: dict[str, Any] = field(default_factory=dict)  # the decoding decision when it was not the declared one

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"formulas": self.formulas, "formulas_kept": self.formulas_kept}
        if self.date:
            out["date"] = self.date
        if self.title:
            out["title"] = self.title
        if self.formula_kinds:
            out["formula_kinds"] = self.formula_kinds
        if self.charset.get("reason"):
            out["charset"] = self.charset
        return out


# ---- decoding --------------------------------------------------------------------------------------------


_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or b > 13)


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return not (head.startswith((b"\xff\xfe", b"\xfe\xff")))  # UTF-16 with BOM is text
    if not head:
        return False
    ctrl = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return ctrl / len(head) > 0.05


def _codec(name: str | None) -> str | None:
    import codecs

    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'").lower()).name
    except LookupError:
        return None


LATIN_LABELS = ("iso8859-1", "ascii", "cp1252", "latin-1", "iso-8859-1")
_MULTIBYTE_UTF8 = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


_ESCAPED = re.compile("[\udc80-\udcff]")


def _utf8_with_stray_bytes(data: bytes) -> tuple[str, int] | None:
    """UTF-8 text whose few invalid bytes are read as windows-1252 (one stray latin-1 byte in a UTF-8 page);
    None when invalid bytes are not rare next to valid multi-byte sequences (then it is not UTF-8)."""
    text = data.decode("utf-8", "surrogateescape")
    bad = len(_ESCAPED.findall(text))
    if bad > max(2, len(_MULTIBYTE_UTF8.findall(data)) // 10):
        return None
    return _ESCAPED.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", "replace"), text), bad


def decode_html(data: bytes | str, header_charset: str | None = None) -> tuple[str, str]:
    """``(text, encoding)`` for raw page bytes. Raises :class:`ExtractError` for binary content."""
    text, decision = decode_with_evidence(data, header_charset)
    return text, decision["charset"]


def decode_with_evidence(data: bytes | str, header_charset: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(text, decision)``: the charset is taken from the BOM, else the declared one (HTTP header, then
    ``<meta charset>``) when the bytes decode with it, else the evidence in the bytes decides:

    * a latin-1 / windows-1252 label on bytes that are valid UTF-8 with multi-byte sequences: UTF-8 (a single-byte
      text almost never forms valid UTF-8 sequences by chance);
    * a UTF-8 label (or none) with a few invalid bytes among valid multi-byte sequences: UTF-8, the stray bytes read
      as windows-1252;
    * otherwise charset detection (Resiliparse ``detect_encoding``, uchardet-based).

    ``decision`` holds ``charset`` and, when the declared charset was not used, ``declared`` and ``reason``
    (kept in the document's metadata)."""
    if isinstance(data, str):
        return data, {"charset": "str"}
    if looks_binary(data):
        raise ExtractError("binary content (not an HTML page)")
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(enc, "replace"), {"charset": enc, "reason": "byte order mark"}
    m = META_CHARSET.search(data[:4096])
    declared = _codec(header_charset) or (_codec(m.group(1).decode("ascii", "ignore")) if m else None)
    if declared in LATIN_LABELS:
        declared = "cp1252"  # what browsers do for latin-1 labels
    if declared == "cp1252" and _MULTIBYTE_UTF8.search(data):
        try:
            return data.decode("utf-8"), {"charset": "utf-8", "declared": declared,
                                          "reason": "declared single-byte charset, bytes are valid UTF-8"}
        except UnicodeDecodeError:
            pass
    if declared:
        try:
            return data.decode(declared), {"charset": declared}
        except (UnicodeDecodeError, LookupError):
            pass
    else:
        try:
            return data.decode("utf-8"), {"charset": "utf-8"}
        except UnicodeDecodeError:
            pass
    if declared not in (None, "utf-8"):
        try:
            return data.decode("utf-8"), {"charset": "utf-8", "declared": declared,
                                          "reason": f"declared {declared} does not decode; valid UTF-8"}
        except UnicodeDecodeError:
            pass
    if declared in (None, "utf-8"):
        mixed = _utf8_with_stray_bytes(data)
        if mixed is not None:
            return mixed[0], {"charset": "utf-8", "declared": declared, "invalid_bytes": mixed[1],
                              "reason": "mostly valid UTF-8; invalid bytes read as windows-1252"}
    from resiliparse.parse.encoding import detect_encoding

    enc = _codec(detect_encoding(data[:200_000])) or "utf-8"
    reason = f"declared {declared} does not decode; detected" if declared else "undeclared; detected"
    return data.decode(enc, "replace"), {"charset": enc, "declared": declared, "reason": reason}


# ---- time limit ------------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by the alarm; a BaseException so that libraries' ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`ExtractError` when the block runs longer than ``seconds``.

    In the main thread a ``SIGALRM`` timer interrupts the block; in any other thread a timer thread raises
    the deadline in it asynchronously (``PyThreadState_SetAsyncExc``). Either way the deadline lands between
    two Python bytecodes: one long call into C (libxml2 parsing a huge page) finishes first."""
    if not seconds or seconds <= 0:
        yield
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        limit = _signal_deadline(seconds)
    else:
        limit = _thread_deadline(seconds)
    try:
        with limit:
            yield
    except _Deadline:
        raise ExtractError(f"timed out after {seconds:g}s") from None


@contextlib.contextmanager
def _signal_deadline(seconds: float):
    def on_alarm(signum, frame):
        raise _Deadline

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def _thread_deadline(seconds: float):
    import ctypes

    tid, lock, state = threading.get_ident(), threading.Lock(), {"active": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(_Deadline))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["active"] = False
            if state["fired"]:  # fired as the block ended: drop the exception if it is still pending
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)


# ---- page metadata ---------------------------------------------------------------------------------------


def page_url(tree, fallback: str | None = None) -> str | None:
    """The page URL: ``fallback`` (WARC header / record field) else ``<link rel=canonical>`` else ``og:url``."""
    if fallback:
        return fallback
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            return link.get("href").strip()
    for meta in tree.iter("meta"):
        if (meta.get("property") or meta.get("name") or "").lower() == "og:url" and meta.get("content"):
            return meta.get("content").strip()
    return None


def domain_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlparse(url if "://" in url else f"http://{url}").hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def page_date(tree) -> str | None:
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in DATE_META and meta.get("content"):
            return meta.get("content").strip()[:40]
    for t in tree.iter("time"):
        if t.get("datetime"):
            return t.get("datetime").strip()[:40]
    return None


def page_title(tree) -> str | None:
    for t in tree.iter("title"):
        text = " ".join((t.text_content() if hasattr(t, "text_content") else t.text or "").split())
        return text[:500] or None
    return None


# ---- Markdown clean-up -----------------------------------------------------------------------------------

FENCE = re.compile(r"(^```.*?^```[ \t]*$)", re.M | re.S)
MD_ESCAPE = re.compile(r"(?<!\\)\\([*_`~\[\]<>#+\-])")


def unescape_markdown(text: str) -> str:
    """Undo trafilatura's CommonMark escapes in prose (``\\[1\\]``, ``snake\\_case``, ``\\<tag>``).

    In a math corpus an escaped ``\\[`` reads as a display-math opener; the formulas themselves are not
    touched (they are restored after this step), nor are fenced code blocks.
    """
    if "\\" not in text:
        return text
    parts = FENCE.split(text)
    parts[::2] = [MD_ESCAPE.sub(r"\1", p) for p in parts[::2]]
    return "".join(parts)


# ---- extraction ------------------------------------------------------------------------------------------


def parse_html(html: str):
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        raise ExtractError("not parseable as HTML")
    return tree


def math_text(
    tree, url: str | None = None, options: dict[str, Any] | None = None, recall_below: float = RECALL_BELOW,
    html: str | bytes | None = None,
) -> tuple[str | None, MathPass]:
    """Math pass + trafilatura on a parsed tree (modified in place): (Markdown text or None, formulas).

    Formulas in loose ``<div>`` text get paragraphs of their own first (:func:`wrap_loose_formulas`); when the
    pass still loses some of those on a page with little paragraph text, it is retried on the page as it was
    (extractors read div text on such pages, and new paragraphs can tip one over). When fewer than ``recall_below`` of
    the formulas are kept, a recall-oriented pass and then the posts of a Q&A page one by one are tried; each
    wins if it keeps more formulas. (trafilatura works on its own copy of the tree it is given.)
    """
    import trafilatura

    mp = take_formulas(tree, html)
    blocks = formula_blocks(tree) if mp.formulas else []
    opts = {**TRAFILATURA_OPTIONS, **(options or {})}
    retry = bool(mp.formulas) and recall_below > 0
    unwrapped = copy.deepcopy(tree) if retry else None
    moved = wrap_loose_formulas(blocks)
    text = trafilatura.extract(tree, url=url, **opts)
    if not retry:
        return text, mp
    found = set(PLACEHOLDER_RE.findall(text or ""))
    best = tree
    if moved - found and len("".join(unwrapped.xpath("//p//text()"))) < SHORT_PAGE_PARAGRAPH_CHARS:
        # a formula taken out of loose text is lost anyway, on a page with little paragraph text: the new
        # paragraphs may have tipped the extractor into dropping loose text; retry on the page as it was
        alt = trafilatura.extract(unwrapped, url=url, **opts)
        alt_found = set(PLACEHOLDER_RE.findall(alt or ""))
        if len(alt_found) > len(found):
            text, found, best = alt, alt_found, unwrapped
    kept = len(found)
    recall = {**opts, "favor_recall": True, "favor_precision": False, "include_comments": True}
    candidates = [lambda: trafilatura.extract(best, url=url, **recall)]
    qa = qa_blocks(unwrapped)
    if qa:
        candidates.append(lambda: "\n\n".join(
            t for t in (b if isinstance(b, str) else trafilatura.extract(b, **recall) for b in qa) if t))
    for candidate in candidates:
        if kept >= recall_below * len(mp.formulas):
            break
        alt = candidate()
        n = len(set(PLACEHOLDER_RE.findall(alt or "")))
        if n > kept:
            text, kept = alt, n
    return text, mp


QA_SCOPE = "//*[contains(@itemtype, 'schema.org/Question') or contains(@itemtype, 'schema.org/Answer')]"
QA_BLOCKS = f"{QA_SCOPE}//*[@itemprop='text'] | {QA_SCOPE}//*[contains(@class, 'comment-copy')]"


def qa_blocks(tree) -> list:
    """Question, answers and their comments of a schema.org QAPage (Stack Exchange, Discourse ...): each post
    as its own document, each comment as plain text.

    Main-text extractors keep the question and drop the answers, which is where most of the math is.
    """
    from lxml import html as lhtml

    blocks = tree.xpath(QA_BLOCKS)
    if len(blocks) < 2:
        return []
    title = next((t.text_content() for t in tree.iter("h1")), "") or page_title(tree) or ""
    docs = []
    for i, b in enumerate(blocks):
        if b.get("itemprop") != "text":
            docs.append(" ".join(b.text_content().split()))
            continue
        head = f"<h1>{html_escape(title)}</h1>" if i == 0 and title.strip() else "<hr/>"
        inner = lhtml.tostring(b, encoding="unicode", with_tail=False)
        docs.append(lhtml.document_fromstring(f"<html><body><article>{head}{inner}</article></body></html>"))
    return docs


def extract_page(
    data: bytes | str,
    url: str | None = None,
    *,
    header_charset: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | None = DEFAULT_TIMEOUT,
    options: dict[str, Any] | None = None,
) -> Page:
    """Extract one page. Raises :class:`ExtractError` (one-line reason) when it yields no document."""
    size = len(data)
    if isinstance(data, str) and max_bytes and max_bytes < 4 * size:  # UTF-8 takes 1 to 4 bytes a character
        size = len(data.encode("utf-8", "ignore"))
    if size == 0 or data.isspace():
        raise ExtractError("empty page")
    if max_bytes and size > max_bytes:
        raise ExtractError(f"page too large ({size} bytes > max_page_bytes {max_bytes})")
    with time_limit(timeout):
        html, charset = decode_with_evidence(data, header_charset)
        encoding = charset["charset"]
        tree = parse_html(html)
        url = page_url(tree, url)
        date, title = page_date(tree), page_title(tree)
        # the math markers are scanned on the raw bytes when their encoding writes ASCII as ASCII
        raw = data if isinstance(data, bytes) and "<".encode(encoding, "ignore") == b"<" else html
        text, mp = math_text(tree, url, options, html=raw)
    if not text or not text.strip():
        raise ExtractError("no main text found")
    text, kept = restore(unescape_markdown(text), mp)
    return Page(text=text.strip(), url=url, domain=domain_of(url), date=date, title=title,
                formulas=len(mp.formulas), formulas_kept=kept, formula_kinds=mp.counts(), charset=charset)

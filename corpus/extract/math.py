"""The math-aware DOM pass: every formula in an HTML tree becomes a placeholder word, restored as LaTeX later.

Sources, in the order they are taken (so nothing is counted twice): rendered duplicates are dropped first
(MathJax v2 previews and output spans, ``.katex-html``), then MathJax ``<script type="math/tex">`` (display
with ``mode=display``), KaTeX (``annotation encoding="application/x-tex"``), MathJax v3 ``<mjx-container>``
and Wikipedia ``.mwe-math-element`` (their MathML), ``<math>`` (TeX annotation, else ``alttext``, else a
MathML -> LaTeX conversion), LaTeX images (``alt`` of latex.php / codecogs / tex.cgi / mimetex / wp-latex /
``class="latex"``), ``<d-math>``-style custom elements, and finally TeX delimiters in text (``$$..$$``,
``\\[..\\]``, ``\\(..\\)``, ``$..$``, ``[tex]..[/tex]``, ``\\begin{env}..\\end{env}``; AsciiMath back-ticks on
pages that load AsciiMath). Each formula is replaced by a placeholder word that an extractor keeps verbatim;
:func:`restore` turns the placeholders in the extracted text back into ``$...$`` / ``$$...$$``.

AsciiMath (``<script type="math/asciimath">``, display with ``mode=display``, and back-ticks on pages that load
AsciiMath) is converted to LaTeX by :mod:`corpus.extract.asciimath` (kind ``asciimath``; the AsciiMath is kept in
``Formula.source``); a formula it cannot convert stays AsciiMath in back-ticks (kind ``asciimath-raw``), and one
of only spacing (``\\ \\ \\``) is dropped. (No maintained converter is on PyPI: py-asciimath's last release is
from 2020 and pins the deprecated ``lark-parser``; the newer ports tried mis-parse fractions and drop brackets.)

:func:`scan_markers` reads the raw page once and tells which tree passes can find anything (most pages carry
no math markup). After the pass, :func:`formula_blocks` turns ``<figure>`` / ``<figcaption>`` blocks holding
formulas into divs, and :func:`wrap_loose_formulas` gives formulas in loose ``<div>`` text (display equations,
captions, answer boxes) paragraphs of their own, which main-text extractors keep.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from lxml import etree

from corpus.extract.asciimath import asciimath_to_latex
from corpus.extract.mathml import mathml_to_latex

PLACEHOLDER = "ZqMATH{}Zq"
PLACEHOLDER_RE = re.compile(r"ZqMATH(\d+)Zq")

SKIP_TEXT_IN = {"pre", "code", "script", "style", "textarea", "kbd", "samp", "tt", "noscript", "template", "title",
                "head"}
RENDERED_CLASSES = {"MathJax_Preview", "MathJax", "MathJax_Display", "MathJax_SVG", "MathJax_SVG_Display",
                    "MathJax_CHTML", "katex-html"}
LATEX_IMG_SRC = re.compile(
    r"latex\.php|codecogs\.com|tex\.cgi|mimetex|mathtex|/latex\?|latex\.codecogs|chart\.apis\.google\.com/chart\?cht=tx"
    r"|wp-latex|/math/render/|mathurl|quicklatex|latex2png|texify|/tex/", re.I)
LATEX_IMG_CLASS = re.compile(r"(^|[\s_-])(latex|tex|math|equation|mwe-math-fallback-image)($|[\s_-])", re.I)
TEXLIKE = re.compile(r"[\\^_{}=<>+\-*/|]|^[A-Za-z]$|^[A-Za-z0-9]+'*$")
CUSTOM_ELEMENTS = ("d-math", "dt-math", "x-math", "tex-math", "latex-math", "math-tex", "ktx", "katex-math")


@dataclass
class Formula:
    tex: str
    display: bool
    kind: str  # mathjax | katex | mathml | mathml-alttext | mathml-converted | img | custom | text | asciimath
    #            | asciimath-raw (AsciiMath the converter gave up on: ``tex`` is the AsciiMath)
    source: str | None = None  # the AsciiMath an ``asciimath`` formula was converted from

    def render(self) -> str:
        if self.kind == "asciimath-raw":
            return f"`{self.tex}`"
        return f"$${self.tex}$$" if self.display else f"${self.tex}$"


@dataclass
class MathPass:
    """The formulas taken out of one page, in placeholder order."""

    formulas: list[Formula] = field(default_factory=list)

    def add(self, tex: str, display: bool, kind: str) -> str | None:
        """The placeholder for a new formula (AsciiMath is converted to LaTeX); None when there is no formula."""
        tex, source = clean_tex(tex), None
        if kind == "asciimath" and tex:
            source = tex
            try:
                tex = asciimath_to_latex(source)
            except Exception:  # noqa: BLE001 - a converter failure must not lose the formula: keep the AsciiMath
                tex, kind = source, "asciimath-raw"
        if not tex:
            return None
        self.formulas.append(Formula(tex, display, kind, source))
        return PLACEHOLDER.format(len(self.formulas) - 1)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.formulas:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out


GROUP_MARKERS = re.compile(r"^\s*(\\begingroup|\\endgroup)\s*$")


def clean_tex(tex: str) -> str:
    tex = tex.strip()
    if GROUP_MARKERS.match(tex):  # Stack Exchange's hidden $\begingroup$ / $\endgroup$ markers
        return ""
    if tex.startswith("%") and "\n" in tex:  # MathJax scripts sometimes start with a comment line
        tex = tex.split("\n", 1)[1].strip()
    return " ".join(tex.split()) if "\n" not in tex or len(tex) < 400 else tex


# ---- tree helpers ----------------------------------------------------------------------------------------


def _classes(el) -> list[str]:
    return (el.get("class") or "").split()


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _replace(el, text: str | None) -> None:
    """Replace ``el`` by ``text`` (kept with its tail) or remove it when ``text`` is None."""
    parent = el.getparent()
    if parent is None:
        return
    new = (text or "") + (el.tail or "")
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + new
    else:
        parent.text = (parent.text or "") + new
    parent.remove(el)


BLOCK_PARENTS = {"div", "section", "article", "main", "body", "figure", "d-article", "dt-article", "td", "li", "dd",
                 "blockquote", "center", "header", "aside"}


def _put(el, mp: MathPass, tex: str, display: bool, kind: str) -> None:
    """Replace ``el`` by the placeholder of a new formula; a display formula between blocks gets its own
    paragraph (extractors drop loose text between block elements)."""
    ph = mp.add(tex, display, kind)
    parent = el.getparent()
    if ph and display and parent is not None and _local(parent.tag) in BLOCK_PARENTS:
        p = el.makeelement("p", {})
        p.text, p.tail = ph, el.tail
        el.tail = None
        el.addprevious(p)
        parent.remove(el)
        return
    _replace(el, ph)


def _drop(el) -> None:
    _replace(el, None)


def _ancestors_skip(el) -> bool:
    return any(_local(a.tag) in SKIP_TEXT_IN for a in el.iterancestors())


# ---- element sources -------------------------------------------------------------------------------------


def _tex_of_math(math_el) -> tuple[str, str]:
    """(tex, kind) for a ``<math>`` element: TeX annotation, else alttext, else a conversion."""
    for ann in math_el.iter():
        if _local(ann.tag) == "annotation" and (ann.get("encoding") or "").lower() in (
            "application/x-tex", "text/x-tex", "tex", "latex", "application/x-latex",
        ) and (ann.text or "").strip():
            return ann.text, "mathml"
    alt = math_el.get("alttext")
    if alt and alt.strip():
        return alt, "mathml-alttext"
    return mathml_to_latex(math_el), "mathml-converted"


def _is_display_math(math_el) -> bool:
    return math_el.get("display") == "block" or math_el.get("mode") == "display"


def _strip_displaystyle(tex: str) -> str:
    m = re.fullmatch(r"\s*\{\\displaystyle\s*(.*)\}\s*", tex, re.S)
    return m.group(1) if m else tex


def _latex_image(img) -> str | None:
    src = img.get("src") or img.get("data-src") or img.get("data-lazy-src") or ""
    alt = (img.get("alt") or "").strip()
    cls = img.get("class") or ""
    if LATEX_IMG_SRC.search(src) or LATEX_IMG_CLASS.search(cls):
        if alt and not alt.lower().startswith(("image", "http", "figure")):
            return alt
        query = urlparse(src).query
        if query:
            qs = parse_qs(query)
            for key in ("latex", "tex", "chl", "eq", "formula"):
                if qs.get(key):
                    return qs[key][0]
            # codecogs / mimetex: the query is the TeX, "=" included (f(z)=\exp(z)-1); a named-parameter query
            # with none of the keys above (``a=1&b=2``) is not
            if "&" not in query and LATEX_IMG_SRC.search(src):
                return unquote(query)
        title = (img.get("title") or "").strip()
        if title and LATEX_IMG_SRC.search(src):
            return title
    return None


def _attached(el, root) -> bool:
    """Still in the tree (not inside a subtree an earlier replacement removed)."""
    top = el
    for top in el.iterancestors():  # noqa: B007
        pass
    return top is root


_CLASSED_XPATH = etree.XPath(
    "//*[contains(@class, 'MathJax') or contains(@class, 'katex') or contains(@class, 'mwe-math-element')]")
_TAGS = ("script", "math", "img", "mjx-container", *CUSTOM_ELEMENTS)


def _take_elements(root, mp: MathPass, classed_too: bool = True) -> None:
    classed = _CLASSED_XPATH(root) if classed_too else []  # the tag-based candidates come from root.iter(tags)
    # Rendered duplicates first (their glyph text would otherwise survive next to the TeX).
    for el in classed:
        cls = _classes(el)
        if not RENDERED_CLASSES.intersection(cls) or el.getparent() is None or not _attached(el, root):
            continue
        math_el = None
        if "katex-html" not in cls and "MathJax_Preview" not in cls and not _has_source_nearby(el):
            math_el = next((m for m in el.iter() if _local(m.tag) == "math"), None)
        if math_el is None:
            _drop(el)  # rendered glyphs: the TeX is in the script / annotation beside them
        else:  # saved after rendering: the assistive MathML is the only source left
            tex, kind = _tex_of_math(math_el)
            display = "MathJax_Display" in cls or _is_display_math(math_el)
            _put(el, mp, _strip_displaystyle(tex), display, kind)
    # Containers (KaTeX, Wikipedia) before the tags inside them; detached inner elements are skipped.
    for el in [*classed, *root.iter(*_TAGS)]:
        if not isinstance(el.tag, str) or el.getparent() is None or not _attached(el, root):
            continue
        tag = _local(el.tag)
        if tag == "script":
            typ = (el.get("type") or "").lower()
            if typ.startswith("math/tex") or typ.startswith("math/latex"):
                _put(el, mp, el.text or "", "mode=display" in typ, "mathjax")
            elif typ.startswith("math/asciimath"):
                _put(el, mp, el.text or "", "mode=display" in typ, "asciimath")
            elif typ.startswith("math/mml"):
                _put(el, mp, mathml_to_latex(el.text or "<math/>"), "display" in typ, "mathml-converted")
            continue
        cls = _classes(el)
        if "katex-display" in cls or ("katex" in cls and not _inside_class(el, "katex-display")):
            tex = next((a.text for a in el.iter() if _local(a.tag) == "annotation"
                        and (a.get("encoding") or "").lower() == "application/x-tex"), None)
            if tex:
                _put(el, mp, tex, "katex-display" in cls, "katex")
            continue
        if tag == "mjx-container" or "mwe-math-element" in cls:
            math_el = next((m for m in el.iter() if _local(m.tag) == "math"), None)
            if math_el is not None:
                tex, kind = _tex_of_math(math_el)
                display = el.get("display") == "true" or _is_display_math(math_el) or "mwe-math-element-block" in cls
                _put(el, mp, _strip_displaystyle(tex), display, kind)
            else:
                img = next((i for i in el.iter() if _local(i.tag) == "img"), None)
                if img is not None and (img.get("alt") or "").strip():
                    _put(el, mp, _strip_displaystyle(img.get("alt")), False, "img")
            continue
        if tag == "math":
            tex, kind = _tex_of_math(el)
            _put(el, mp, _strip_displaystyle(tex), _is_display_math(el), kind)
            continue
        if tag == "img":
            tex = _latex_image(el)
            if tex:
                display = "display" in (el.get("class") or "") or tex.startswith(r"\displaystyle")
                _put(el, mp, tex, display, "img")
            continue
        if tag in CUSTOM_ELEMENTS:
            tex = el.text_content() if hasattr(el, "text_content") else "".join(el.itertext())
            _put(el, mp, tex, el.get("block") is not None or el.get("display") in ("block", "true"),
                                "custom")


def _inside_class(el, name: str) -> bool:
    return any(name in _classes(a) for a in el.iterancestors())


def _has_source_nearby(el) -> bool:
    """MathJax v2 output spans are followed by their ``math/tex`` script (or carry MathML)."""
    nxt = el.getnext()
    for _ in range(3):
        if nxt is None:
            break
        if _local(nxt.tag) == "script" and (nxt.get("type") or "").lower().startswith("math/"):
            return True
        nxt = nxt.getnext()
    return False


# ---- text delimiters -------------------------------------------------------------------------------------

_ENVS = r"equation|align|gather|multline|eqnarray|displaymath|math|split|cases|matrix|[pbvBV]matrix|array|flalign"
DELIMS = re.compile(
    r"(?P<dd>(?<![\\$])\$\$(?P<dd_b>.+?)(?<!\\)\$\$)"
    r"|(?P<br>\\\[(?P<br_b>.+?)\\\])"
    r"|(?P<pa>\\\((?P<pa_b>.+?)\\\))"
    r"|(?P<env>\\begin\{(?P<env_n>(?:" + _ENVS + r")\*?)\}(?P<env_b>.+?)\\end\{(?P=env_n)\})"
    r"|(?P<bb>\[(?P<bb_t>tex|latex|math|itex|imath)\](?P<bb_b>.+?)\[/(?P=bb_t)\])"
    r"|(?P<sd>(?<![\\$\w])\$(?P<sd_b>[^\s$](?:[^$\n]|\n(?!\s*\n)){0,2000}?)(?<![\s\\])\$(?![\w$]))",
    re.S | re.I,
)
ASCIIMATH = re.compile(r"(?<!\\)`((?:[^`\n]|\n(?!\s*\n)){1,500}?)(?<!\\)`")  # may wrap lines, not paragraphs
OPENERS = re.compile(r"\$\$|\\\[|\\\(|\\begin\{(?:" + _ENVS + r")\*?\}|\[(?:tex|latex|math|itex|imath)\]", re.I)


def _dollar_ok(body: str, page_has_engine: bool, in_math_class: bool) -> bool:
    if page_has_engine or in_math_class:
        return True
    return bool(TEXLIKE.search(body.strip()))


def _sub_text(text: str, mp: MathPass, page_has_engine: bool, in_math_class: bool, asciimath: bool) -> str:
    def repl(m: re.Match) -> str:
        kind = m.lastgroup
        if m.group("dd") is not None:
            return mp.add(m.group("dd_b"), True, "text") or m.group(0)
        if m.group("br") is not None:
            return mp.add(m.group("br_b"), True, "text") or m.group(0)
        if m.group("pa") is not None:
            return mp.add(m.group("pa_b"), False, "text") or m.group(0)
        if m.group("env") is not None:
            return mp.add(m.group("env"), True, "text") or m.group(0)
        if m.group("bb") is not None:
            return mp.add(m.group("bb_b"), m.group("bb_t").lower() in ("tex", "latex", "math"), "text") or m.group(0)
        del kind
        body = m.group("sd_b")
        if _dollar_ok(body, page_has_engine, in_math_class):
            return mp.add(body, False, "text") or m.group(0)
        return m.group(0)

    out = DELIMS.sub(repl, text) if ("$" in text or "\\" in text or "[" in text) else text
    if asciimath and "`" in out:
        out = ASCIIMATH.sub(lambda m: _asciimath_sub(m.group(1), mp), out)
    return out


def _asciimath_sub(body: str, mp: MathPass) -> str:
    """The placeholder for a back-tick formula; the converter drops spacing (``\\ ``) at the formula's edges,
    which separated it from the text around, so a plain space takes its place (a formula of only spacing
    becomes one space)."""
    ph = mp.add(body, False, "asciimath")
    if ph is None:
        return " "
    if mp.formulas[-1].kind != "asciimath":
        return ph
    body = body.strip()
    lead, trail = body.startswith("\\ "), body.endswith("\\") and not body.endswith("\\\\")
    return (" " if lead else "") + ph + (" " if trail else "")


def _unclosed(text: str) -> bool:
    """True when ``text`` opens a delimited formula it does not close (so it continues after a ``<br>``)."""
    rest = DELIMS.sub("", text)
    return bool(OPENERS.search(rest))


TEXT_OPENERS = "$\\[`"  # the characters a formula in text can start with


@functools.lru_cache(maxsize=16)
def _text_xpath(chars: str) -> etree.XPath:
    """Text nodes (outside scripts and styles) holding one of ``chars``."""
    test = " or ".join(f"contains(., '{c}')" for c in chars)
    return etree.XPath(f"/descendant::text()[{test}][not(parent::script) and not(parent::style)]")


_HINT = re.compile(r"[$\\\[`]")


def _merge_br(root) -> bool:
    """Join text split by ``<br>`` inside a formula (``[tex]a<br>b[/tex]``, ``$$a<br>b$$``); True if any was."""
    merged = False
    for br in list(root.iter("br")):
        parent = br.getparent()
        if parent is None:
            continue
        prev = br.getprevious()
        before = (prev.tail if prev is not None else parent.text) or ""
        if before and _HINT.search(before) and _unclosed(before):
            _replace(br, "\n")
            merged = True
    return merged


def _take_text(root, mp: MathPass, page_has_engine: bool, asciimath: bool, chars: str = TEXT_OPENERS) -> None:
    if not asciimath:
        chars = chars.replace("`", "")
    if not chars:
        return
    nodes = _text_xpath(chars)(root)
    if nodes and _merge_br(root):
        nodes = _text_xpath(chars)(root)
    for node in nodes:
        el = node.getparent()
        if el is None or not isinstance(el.tag, str):
            continue
        has_text, has_tail = bool(node.is_text and el.text), bool(node.is_tail and el.tail)
        tag = _local(el.tag)
        if has_text and not (tag in SKIP_TEXT_IN or _ancestors_skip(el)):
            in_math = any("math" in c.lower() or "tex" in c.lower() for c in _classes(el))
            el.text = _sub_text(el.text, mp, page_has_engine, in_math, asciimath)
        if has_tail and not _ancestors_skip(el):
            parent = el.getparent()
            pin = parent is not None and any("math" in c.lower() for c in _classes(parent))
            el.tail = _sub_text(el.tail, mp, page_has_engine, pin, asciimath)


ENGINE_RE = re.compile(r"mathjax|katex|MathJax\.Hub|texmath|mathml|math/tex|asciimath", re.I)
# MathJax v2 combined configurations that load AsciiMath: config=AM_CHTML, TeX-MML-AM_SVG, AM_HTMLorMML-full ...
AM_CONFIG = re.compile(rb"[=,/\-]am_(?:chtml|htmlormml|svg)")


def page_engines(root) -> tuple[bool, bool]:
    """(loads a TeX engine, loads AsciiMath) from script sources and inline configs."""
    engine = ascii_ = False
    for s in root.iter("script", "link"):
        blob = (s.get("src") or s.get("href") or "") + " " + ((s.text or "")[:4000] if s.tag == "script" else "")
        if ENGINE_RE.search(blob):
            engine = True
        low = blob.lower()
        if "asciimath" in low or ("am_" in low and AM_CONFIG.search(low.encode())):
            ascii_ = True
    return engine, ascii_


# Containers whose loose text extractors drop (they keep <p>, <li>, <td>, headings ... but not text sitting directly
# in a <div> next to block children, nor the text of <figure> / <figcaption>); custom elements (with a "-") count too.
LOOSE_TEXT_CONTAINERS = frozenset({"div", "section", "article", "main", "body", "header", "center", "figure",
                                   "figcaption"})
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "center", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "textarea", "tfoot", "th", "thead",
    "tr", "ul", "caption", "html", "head", "noscript", "template", "script", "style"})
EXTRACTOR_DROPPED = {"figure": "div", "figcaption": "div"}  # dropped wholesale (with their formulas) by extractors
_PLACEHOLDER_TEXT = etree.XPath("//text()[contains(., 'ZqMATH')]")


def _is_block(el) -> bool:
    tag = _local(el.tag)  # "" for comments: inline
    return tag in BLOCK_TAGS or "-" in tag


def _wrap_loose_runs(holder) -> set[str]:
    """Wrap each run of inline content (text, inline elements) of ``holder`` that holds a formula into a ``<p>``;
    returns the placeholder numbers that moved."""
    runs, lead, current = [], None, []  # lead: the block child whose tail opens the run (None: holder.text)
    for child in holder:
        if _is_block(child):
            runs.append((lead, current))
            lead, current = child, []
        else:
            current.append(child)
    runs.append((lead, current))
    moved: set[str] = set()
    for lead, inline in runs:
        text = holder.text if lead is None else lead.tail
        run_text = (text or "") + "".join("".join(el.itertext()) + (el.tail or "") for el in inline)
        found = PLACEHOLDER_RE.findall(run_text)
        if not found:
            continue
        moved.update(found)
        p = holder.makeelement("p", {})
        p.text = text
        if lead is None:
            holder.text = None
            holder.insert(0, p)
        else:
            lead.tail = None
            lead.addnext(p)
        for el in inline:
            p.append(el)  # moves the element (with its tail) into the paragraph
    return moved


def formula_blocks(root) -> list:
    """The blocks holding formula text, after making them visible to a main-text extractor: ``<figure>`` /
    ``<figcaption>`` (dropped wholesale by extractors) around a formula become divs."""
    holders = {}
    for node in _PLACEHOLDER_TEXT(root):
        el = node.getparent()
        if el is None:
            continue
        holder = el if node.is_text else el.getparent()
        while holder is not None and not _is_block(holder):
            holder = holder.getparent()
        if holder is None:
            continue
        for a in (holder, *holder.iterancestors()):
            new_tag = EXTRACTOR_DROPPED.get(_local(a.tag))
            if new_tag:
                a.tag = new_tag
        holders[id(holder)] = holder
    return list(holders.values())


def wrap_loose_formulas(blocks: list) -> set[str]:
    """Give formulas in loose text of a div-like container (``<div>\\[x\\]</div>`` between paragraphs, a
    caption, an answer box) a paragraph of their own, with the inline text around them; ``blocks`` come from
    :func:`formula_blocks`. Returns the placeholder numbers that moved. (Inside a paragraph a custom element is
    an inline footnote or citation: left alone.)"""
    moved: set[str] = set()
    for holder in blocks:
        tag = _local(holder.tag)
        if (tag in LOOSE_TEXT_CONTAINERS or "-" in tag) and not any(a.tag == "p" for a in holder.iterancestors()):
            moved |= _wrap_loose_runs(holder)
    return moved


_HIDDEN_XPATH = etree.XPath("//*[contains(translate(@style, ' ', ''), 'display:none')]"
                            "[.//d-math or .//dt-math or .//script[starts-with(@type, 'math/')]][not(.//math)]")


def _drop_hidden(root) -> None:
    """Inline-hidden formula caches (pre-rendered ``<d-math>`` / MathJax sources) are not page content.

    Only hidden blocks holding formula sources go: other hidden blocks (collapsed forum posts) are left to the
    extractor, and hidden assistive MathML is a formula's only source."""
    for el in _HIDDEN_XPATH(root):
        if el.getparent() is not None and _local(el.tag) not in ("html", "body"):
            _drop(el)


@dataclass(frozen=True)
class Markers:
    """What kinds of math markup a raw page can hold, from a cheap scan of its bytes (all True: scan the tree)."""

    classed: bool = True  # MathJax / KaTeX / Wikipedia containers found by class
    tags: bool = True  # math scripts, <math>, <mjx-container>, LaTeX images, <d-math>-style elements
    hidden: bool = True  # formula caches hidden with display:none (under <d-math> / math scripts)
    engine: bool = True  # loads a TeX engine (then the tree's scripts decide)
    text: str = TEXT_OPENERS  # characters that can open a formula in text


def _around(low: bytes, word: bytes, before: int = 12, after: int = 12) -> bytes:
    """The bytes around every occurrence of ``word`` in ``low``, joined: a small index to test the markers
    that contain ``word`` without scanning the whole page once per marker."""
    parts, i, n = [], low.find(word), len(word)
    while i >= 0:
        parts.append(low[max(0, i - before):i + n + after])
        i = low.find(word, i + n)
    return b"|".join(parts)


# Markers, tested on the bytes around each "math" / "tex" in the page (class words: whole words only, since
# "text" and "context" are everywhere).
_MATH_AT = re.compile(rb"<math|math/|-math|mathjax|mathml|mathtex|mathurl|asciimath|[\s\"'_]math(?:[\s\"'_-]|$)")
_TEX_AT = re.compile(rb"latex|katex|mimetex|tex\.cgi|texify|/tex/|texmath|<tex-|[\s\"'_-]tex(?:[\s\"'_-]|$)")
_ANYWHERE = (b"codecogs", b"cht=tx", b"<ktx", b"equation")
_ENGINE_AT = re.compile(rb"mathjax|mathml|math/tex|texmath|asciimath")
_BACKSLASH_OPENERS = re.compile(rb"\\(?:[(\[]|begin)")
_CHAR_REF = re.compile(rb"&#(0*36|0*92|x0*24|x0*5c);", re.I)  # a $ or \ written as a character reference


def scan_markers(html: str | bytes) -> Markers:
    """The kinds of math markup ``html`` (the raw page) may hold. Errs on the side of True: a marker that is
    found only means the matching tree pass runs."""
    raw = html if isinstance(html, bytes) else html.encode("utf-8", "ignore")
    low = raw.lower()
    m, t = _around(low, b"math"), _around(low, b"tex")
    classed = b"katex" in t or b"mathjax" in m or b"mwe-math" in m
    tags = classed or bool(_MATH_AT.search(m) or _TEX_AT.search(t)) or any(k in low for k in _ANYWHERE)
    text = "$" if b"$" in raw else ""
    if _BACKSLASH_OPENERS.search(raw):
        text += "\\"
    if b"tex]" in t or b"math]" in m:  # [tex] [latex] [itex] [math] [imath] bulletin-board tags
        text += "["
    for ref in _CHAR_REF.findall(raw):  # &#36; &#x24; &#92; &#x5c;
        opener = "$" if ref.endswith((b"36", b"24")) else "\\"
        text += opener if opener not in text else ""
    if b"asciimath" in m or (b"am_" in low and AM_CONFIG.search(low)):
        text += "`"
    return Markers(classed=classed, tags=tags, hidden=b"<d-math" in m or b"<dt-math" in m or b"math/" in m,
                   engine=b"katex" in t or bool(_ENGINE_AT.search(m)), text=text)


def take_formulas(root, html: str | bytes | None = None) -> MathPass:
    """Replace every formula under ``root`` (an lxml tree, modified in place) by a placeholder word.

    With the page's raw ``html`` the tree passes whose markup the page does not carry are skipped (a scan
    of the bytes is much cheaper than walking the tree)."""
    mp = MathPass()
    mk = scan_markers(html) if html is not None else Markers()
    engine, asciimath = page_engines(root) if mk.engine else (False, False)
    if mk.hidden:
        _drop_hidden(root)
    if mk.tags:
        _take_elements(root, mp, mk.classed)
    _take_text(root, mp, engine, asciimath, mk.text)
    return mp


def restore(text: str, mp: MathPass) -> tuple[str, int]:
    """Put the formulas back into extracted ``text``; returns the text and how many placeholders were found."""
    found = 0

    def repl(m: re.Match) -> str:
        nonlocal found
        i = int(m.group(1))
        if i >= len(mp.formulas):
            return m.group(0)
        found += 1
        return mp.formulas[i].render()

    return PLACEHOLDER_RE.sub(repl, text), found

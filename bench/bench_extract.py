"""Extraction benchmark: formula preservation, main-text F1 and throughput, ours vs plain trafilatura / datatrove.

    python bench/bench_extract.py [--quick] [--data ../shared/data] [--rounds 3] [--only preservation] [--lost]

1. Formula preservation on ``web/math/*.html``, counted from an independent reference: the formulas each page
   carries are found by a small lxml parser written here (``reference_formulas``; not our ``corpus.extract``
   detector): ``<script type="math/tex">`` / ``math/asciimath``, TeX between the delimiters the page's
   MathJax/KaTeX config turns on (plus MathJax's defaults and ``\\begin{env}`` blocks) in visible text nodes,
   ``<math>`` elements (TeX from their ``application/x-tex`` annotation or ``alttext``, else MathML only),
   ``<d-math>``/``<dt-math>``, LaTeX images (alt text or the TeX in the image URL). A formula with TeX is kept
   when that TeX (whitespace ignored) stands between standard LaTeX delimiters in the extracted text, once per
   occurrence on the page; one without TeX (MathML only, AsciiMath) when an unused LaTeX (or, for AsciiMath,
   back-tick) span holds the same one-letter identifiers and numbers in order (``count_kept``). The previous
   measure (formulas found by our own math pass) is printed beside it.
2. Main-text token F1 (lower-cased ``\\w+`` tokens, bag of words) on the general pages with ground truth
   (``web/ground_truth.jsonl``).
3. Throughput: datatrove's ``Trafilatura`` extractor step vs our ``MathExtractor`` step over the same pages
   in the same run (both sandboxed with the same timeout); the ratio is ours / datatrove's seconds, wall clock
   and CPU (this process plus the steps' sandbox processes; steadier than wall clock on a shared machine); totals
   over ``--rounds`` rounds and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import re
import resource
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = re.compile(r"\w+")


def norm(s: str) -> str:
    return "".join(s.split())


def delimited(tex: str, backticks: bool = True) -> tuple[str, ...]:
    """The written forms of a formula that count as LaTeX in an extracted text (whitespace removed)."""
    t = norm(tex)
    if t.startswith("\\begin{"):
        return (t,)
    return (f"${t}$", f"\\({t}\\)", f"\\[{t}\\]", f"[tex]{t}[/tex]", f"[itex]{t}[/itex]") + ((f"`{t}`",) * backticks)


def survives(forms: tuple[str, ...], text: str) -> bool:
    return any(form in text for form in forms)


def page_formulas(html: bytes) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per formula, the written forms that count as kept (whitespace removed) for our extraction and for plain
    trafilatura: the TeX delimited, except for AsciiMath: ours must hold its LaTeX conversion delimited as LaTeX
    (or, when the converter gave up, the AsciiMath in back-ticks), plain trafilatura the AsciiMath in back-ticks."""
    from corpus.extract.html import decode_html, parse_html
    from corpus.extract.math import take_formulas

    tree = parse_html(decode_html(html)[0])
    out = []
    for f in take_formulas(tree).formulas:
        if f.kind == "asciimath":
            out.append((delimited(f.tex, backticks=False), (f"`{norm(f.source or '')}`",)))
        elif f.kind == "asciimath-raw":
            out.append(((f"`{norm(f.tex)}`",),) * 2)
        else:
            out.append((delimited(f.tex),) * 2)
    return out


# ---- independent reference: what formulas a page carries (not corpus.extract) ---------------------------------

SKIP_TAGS = {"script", "style", "noscript", "textarea", "template", "head", "title", "pre", "code", "math", "svg",
             "d-math", "dt-math"}  # MathJax's default skipTags, plus elements whose text is no loose TeX
RENDERED = re.compile(r"\b(MathJax|MJX|mjx-|katex-html|MathJax_Preview)", re.I)  # rendered copies of a formula
MATH_CLASS = re.compile(r"math|tex", re.I)
LATEX_IMG = re.compile(r"latex|mimetex|mathtex|codecogs|/tex\?|\.tex\?|math/render|mwe-math", re.I)
PAIR = re.compile(r"""\[\s*(['"])(.*?)\1\s*,\s*(['"])(.*?)\3\s*\]""")
KATEX_PAIR = re.compile(r"""left\s*:\s*(['"])(.*?)\1\s*,\s*right\s*:\s*(['"])(.*?)\3""")
CONFIG = re.compile(r"(?:inlineMath|displayMath)\s*:\s*(?:\{[^:]*:\s*)?(\[\s*\[.*?\]\s*\])", re.S)
ENV = r"\\begin\{([a-zA-Z]+\*?)\}.*?\\end\{\1\}"


@dataclasses.dataclass
class RefFormula:
    kind: str  # script | text | mathml-tex | mathml | d-math | img | asciimath
    tex: str | None  # the TeX source, when the page has one
    leaves: tuple[str, ...] = ()  # for formulas without TeX (MathML, AsciiMath): identifiers and numbers in order


def _js_delim(s: str) -> str:
    """A delimiter as written in a JS config string: any run of backslashes before a bracket means one."""
    s = re.sub(r"\\+", lambda m: "\\", s)
    return s


def page_delimiters(html: str) -> list[tuple[str, str]]:
    """TeX delimiter pairs a page's MathJax/KaTeX config turns on, plus MathJax's defaults (``\\(``, ``\\[``,
    ``$$``)."""
    pairs = [("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)")]
    for block in CONFIG.findall(html):
        pairs += [(_js_delim(m[2]), _js_delim(m[4])) for m in PAIR.finditer(block)]
    if "renderMathInElement" in html:
        pairs += [(_js_delim(m[2]), _js_delim(m[4])) for m in KATEX_PAIR.finditer(html)]
    out = []
    for p in pairs:
        if p not in out and p[0] and p[1]:
            out.append(p)
    return sorted(out, key=lambda p: -len(p[0]))  # "$$" before "$"


def _text_pattern(pairs: list[tuple[str, str]]) -> re.Pattern:
    alts = [ENV] + [rf"(?<!\\){re.escape(a)}(.+?)(?<!\\){re.escape(b)}" for a, b in pairs]
    return re.compile("|".join(f"(?:{a})" for a in alts), re.S)


HIDDEN_CLASSES = {"d-none", "sr-only", "visually-hidden", "screen-reader-text"}  # never shown ("hidden" toggles)


def _hidden(el) -> bool:
    style = (el.get("style") or "").replace(" ", "").lower()
    return ("display:none" in style or el.get("hidden") is not None
            or not HIDDEN_CLASSES.isdisjoint((el.get("class") or "").split()))


def _has_image_copy(el) -> bool:
    """A hidden ``<math>`` whose visible rendering is a LaTeX image next to it (Wikipedia's MathML + SVG)."""
    up = el.getparent()
    up = up.getparent() if up is not None else None
    return up is not None and any(_img_tex(img) for img in up.iter("img"))


def _rendered(el) -> bool:
    return bool(RENDERED.search(el.get("class") or ""))


def _img_tex(el) -> str | None:
    src = " ".join(el.get(a) or "" for a in ("src", "data-src", "data-lazy-src"))
    if not ((LATEX_IMG.search(src) and "?" in src) or LATEX_IMG.search(el.get("class") or "")):  # TeX in the URL
        return None
    alt = (el.get("alt") or "").strip()
    if alt:
        return alt.strip("$")
    query = (el.get("src") or "").partition("?")[2].replace("&space;", " ")
    if "latex=" in query:  # WordPress latex.php: a form-encoded parameter
        tex = urllib.parse.unquote_plus(query.split("latex=", 1)[1].split("&")[0])
    else:  # mimetex.cgi?TEX, codecogs gif.latex?TEX: the TeX itself, percent-escaped
        tex = urllib.parse.unquote(query)
    return tex or None


def reference_formulas(html: bytes) -> list[RefFormula]:
    """The formulas a page carries, by a parser of its own (lxml, not ``corpus.extract``): MathJax scripts
    (``math/tex``, ``math/asciimath``), TeX between the delimiters the page's MathJax/KaTeX config turns on (and
    MathJax's defaults, ``\\begin{env}`` blocks) in visible text nodes outside ``pre``/``code``, ``<math>`` elements
    (TeX from a KaTeX/MathML ``application/x-tex`` annotation or ``alttext``; else MathML only), Distill's
    ``<d-math>``, LaTeX images (a LaTeX-rendering ``src``: alt text, else the TeX in the URL). Rendered copies
    (MathJax/KaTeX output spans) and hidden elements are skipped."""
    import lxml.html

    text = html.decode("utf-8", "replace")  # for the config regexes only
    root = lxml.html.document_fromstring(html)  # bytes: lxml takes the page's declared charset
    delims = page_delimiters(text)
    pattern = _text_pattern(delims)
    dollar = _text_pattern(sorted({*delims, ("$", "$")}, key=lambda p: -len(p[0])))  # in an element classed math
    asciimath = bool(ASCIIMATH_PAGE.search(text))
    out: list[RefFormula] = []

    def scan(s: str | None, math_element: bool = False) -> None:
        for m in (dollar if math_element else pattern).finditer(s or ""):
            body = m.group(0) if m.group(0).startswith("\\begin") else next(g for g in m.groups()[1:] if g)
            if body.strip():
                out.append(RefFormula("text", body))
        if asciimath:  # asciimath2jax's delimiters: back-ticks
            out.extend(RefFormula("asciimath", None, _leaves(m.group(1))) for m in BACKTICK_SPAN.finditer(s or "")
                       if m.group(1).strip(" \\"))

    def walk(el, skip: bool, hidden: bool = False) -> None:
        if not isinstance(el.tag, str):  # comment or processing instruction: only its tail is page text
            if not (skip or hidden):
                scan(el.tail)
            return
        tag = el.tag.lower()
        skip_all = tag.startswith("mjx-") or (tag != "math" and _rendered(el))
        inner_hidden = hidden or _hidden(el)  # a hidden formula is none, except a <math> beside its image
        if not skip_all and not skip:
            if tag == "script" and not inner_hidden:
                kind = (el.get("type") or "").lower()
                if kind.startswith("math/tex") and (el.text or "").strip():
                    out.append(RefFormula("script", el.text))
                elif kind.startswith("math/asciimath") and (el.text or "").strip():
                    out.append(RefFormula("asciimath", None, _leaves(el.text)))
            elif tag == "math" and (not inner_hidden or _has_image_copy(el)):
                is_leaf = lambda n: isinstance(n.tag, str) and n.tag.rsplit("}", 1)[-1] in ("mi", "mn")  # noqa: E731
                ann = el.xpath(".//*[local-name()='annotation'][contains(@encoding,'tex')]")
                tex = ann[0].text_content() if ann else el.get("alttext")
                if tex and tex.strip():
                    out.append(RefFormula("mathml-tex", tex))
                else:
                    leaves = [t for n in el.iter() if is_leaf(n) for t in _leaves(n.text_content())]
                    leaves = leaves or _leaves(el.text_content())  # text straight inside <math>
                    out.append(RefFormula("mathml", None, tuple(leaves)))
            elif tag in ("d-math", "dt-math") and not inner_hidden and el.text_content().strip():
                out.append(RefFormula("d-math", el.text_content()))
            elif tag == "img" and not inner_hidden:
                tex = _img_tex(el)
                parent = el.getparent()
                if tex and not (parent is not None and parent.xpath(".//*[local-name()='math']")):  # a <math>'s copy
                    out.append(RefFormula("img", tex))
        inner_skip = skip or skip_all or tag in SKIP_TAGS
        if not (inner_skip or inner_hidden):
            scan(el.text, MATH_CLASS.search(el.get("class") or "") is not None)
        if not (skip_all or tag == "math"):
            for child in el:
                walk(child, inner_skip, inner_hidden)
        if not (skip or hidden):  # the tail belongs to the parent's text
            scan(el.tail)

    walk(root, False)
    return [f for f in out if f.tex is None or tex_key(f.tex)]  # an empty TeX (``{\\displaystyle }``) is none


def _leaves(s: str) -> tuple[str, ...]:
    """Identifiers and numbers of a formula without TeX source, in order (letters and digits only)."""
    return tuple(re.findall(r"[A-Za-z]+|[0-9]+(?:\.[0-9]+)?", s or ""))


ASCIIMATH_PAGE = re.compile(r"ASCIIMath|AsciiMath|asciimath|AM_(?:CHTML|HTML|SVG)", re.S)
OPEN, CLOSE = r"(?:\$\$|\$|\\\(|\\\[)", r"(?:\$\$|\$|\\\)|\\\])"
OUT_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(.+?)(?<!\\)\$"
                      r"|(\\begin\{([a-zA-Z]+\*?)\}.*?\\end\{\6\})", re.S)
BACKTICK_SPAN = re.compile(r"(?<!\\)`([^`]+?)(?<!\\)`")  # \` is an escaped, literal back-tick (MathJax, Markdown)


def _single(tokens) -> list[str]:
    """Tokens that read the same in any notation: one-letter identifiers and numbers (``sin``, ``oo``, ``alpha``
    are spelled differently in MathML, AsciiMath and LaTeX, so they are not compared)."""
    return [t for t in tokens if len(t) == 1 or t[0].isdigit()]


def tex_key(tex: str) -> str:
    """TeX without whitespace and without a ``{\\displaystyle ..}`` wrapper (Wikipedia's annotations carry one)."""
    t = norm(tex)
    if t.startswith("{\\displaystyle") and t.endswith("}"):
        t = t[len("{\\displaystyle"):-1]
    return t


def count_kept(formulas: list[RefFormula], output: str) -> int:
    """How many of the page's formulas an extracted text keeps *as LaTeX*.

    A formula with TeX source is kept when its TeX (whitespace ignored) stands between standard LaTeX delimiters
    (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``; a ``\\begin{env}`` block as it is), once per occurrence (a
    TeX written 3 times on the page needs 3 delimited copies). A formula without TeX (MathML only, AsciiMath) is
    kept when a LaTeX span (for AsciiMath also a back-tick span) not used by another such formula has the same
    one-letter identifiers and numbers in the same order."""
    flat = norm(output)
    kept = 0
    by_tex = collections.Counter(tex_key(f.tex) for f in formulas if f.tex is not None)
    for tex, k in by_tex.items():
        if tex.startswith("\\begin{"):
            n = flat.count(tex)
        else:
            n = sum(1 for _ in re.finditer(OPEN + re.escape(tex) + CLOSE, flat))
        kept += min(k, n)
    rest = [f for f in formulas if f.tex is None]
    if rest:
        spans = [(m.start(), next(g for g in m.groups() if g)) for m in OUT_SPAN.finditer(output)]
        spans += [(m.start(), m.group(1)) for m in BACKTICK_SPAN.finditer(output)]  # \` is a literal back-tick
        free = collections.Counter(tuple(_single(_leaves(body))) for _, body in spans)
        for f in rest:
            want = tuple(_single(f.leaves))
            if free[want] > 0:
                free[want] -= 1
                kept += 1
    return kept


def lost_formulas(ref: list[RefFormula], output: str) -> list[str]:
    """The formulas ``count_kept`` does not find kept, as ``kind:TeX xN`` (N copies short of the page's count)."""
    out, seen = [], set()
    for r in ref:
        key = tex_key(r.tex) if r.tex is not None else r.leaves
        if key in seen:
            continue
        seen.add(key)
        same = [x for x in ref if (tex_key(x.tex) if x.tex is not None else x.leaves) == key]
        short = len(same) - count_kept(same, output)
        if short:
            out.append(f"{r.kind}:{(r.tex or ' '.join(r.leaves)).strip()[:50]!r}" + (f" x{short}" if short > 1 else ""))
    return out


def preservation(files: list[Path], show_lost: bool = False) -> dict:
    """Formulas kept as LaTeX by ours and by plain trafilatura, counted from the independent reference parser
    (``reference_formulas``); the count from our own detector (``page_formulas``, the previous measure) beside it."""
    import trafilatura

    from corpus.extract.html import ExtractError, extract_page

    res = {"pages": len(files), "formulas": 0, "ours": 0, "plain": 0, "kinds": collections.Counter(),
           "kinds_ours": collections.Counter(), "kinds_plain": collections.Counter(),
           "detector_formulas": 0, "detector_ours": 0, "detector_plain": 0, "per_page": {}}
    for f in files:
        data = f.read_bytes()
        try:
            out = extract_page(data, timeout=None).text
        except ExtractError:
            out = ""
        base = trafilatura.extract(data.decode("utf-8", "replace")) or ""
        ref = reference_formulas(data)
        ours, plain = count_kept(ref, out), count_kept(ref, base)
        res["formulas"] += len(ref)
        res["ours"] += ours
        res["plain"] += plain
        for kind in {r.kind for r in ref}:
            sub = [r for r in ref if r.kind == kind]
            res["kinds"][kind] += len(sub)
            res["kinds_ours"][kind] += count_kept(sub, out)
            res["kinds_plain"][kind] += count_kept(sub, base)
        res["per_page"][f.name] = (len(ref), ours, plain)
        detected = page_formulas(data)
        flat, flat_base = norm(out), norm(base)
        res["detector_formulas"] += len(detected)
        res["detector_ours"] += sum(1 for forms, _ in detected if survives(forms, flat))
        res["detector_plain"] += sum(1 for _, forms in detected if survives(forms, flat_base))
        if show_lost and ours < len(ref):
            print(f"  {f.name}: {len(ref) - ours} of {len(ref)} lost: " + " | ".join(lost_formulas(ref, out)[:12]))
    return res


def f1(pred: str, gold: str) -> float:
    p = collections.Counter(t.lower() for t in TOKEN.findall(pred or ""))
    g = collections.Counter(t.lower() for t in TOKEN.findall(gold or ""))
    common = sum((p & g).values())
    if not common:
        return 0.0
    prec, rec = common / sum(p.values()), common / sum(g.values())
    return 2 * prec * rec / (prec + rec)


def main_text_f1(web: Path, limit: int | None) -> dict:
    import trafilatura

    from corpus.extract.html import ExtractError, extract_page

    rows = [json.loads(line) for line in (web / "ground_truth.jsonl").open()]
    rows = [r for r in rows if r["file"].startswith("general/")][:limit]
    ours, plain = [], []
    for r in rows:
        data = (web / r["file"]).read_bytes()
        try:
            text = extract_page(data, timeout=None).text
        except ExtractError:
            text = ""
        ours.append(f1(text, r["text"]))
        plain.append(f1(trafilatura.extract(data.decode("utf-8", "replace")) or "", r["text"]))
    return {"pages": len(rows), "ours": sum(ours) / len(ours), "plain": sum(plain) / len(plain)}


def throughput(groups: dict[str, list[Path]], rounds: int) -> dict:
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura

    from pipelines.steps.extract import MathExtractor

    def cpu() -> float:  # this process and its finished children (each step's sandbox process is joined at its end)
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def run(step, pages: list[str]) -> tuple[float, float]:
        docs = [Document(text=h, id=str(i)) for i, h in enumerate(pages)]
        t0, c0 = time.perf_counter(), cpu()
        for _ in step.run(iter(docs)):
            pass
        return time.perf_counter() - t0, cpu() - c0

    # Alternate the two steps over small chunks (order flipped every chunk) so that load from other
    # processes on the machine hits both about equally.
    times = {g: {"peer": 0.0, "ours": 0.0, "peer_cpu": 0.0, "ours_cpu": 0.0, "pages": len(files)}
             for g, files in groups.items()}
    chunks = []
    for g, files in groups.items():
        htmls = [f.read_bytes().decode("utf-8", "replace") for f in files]
        chunks += [(g, htmls[i:i + 20]) for i in range(0, len(htmls), 20)]
    per_round = []
    for r in range(rounds):
        this = collections.Counter()
        for c, (g, chunk) in enumerate(chunks):
            steps = [("peer", Trafilatura(timeout=30)), ("ours", MathExtractor(timeout=30))]
            for name, step in steps if (r + c) % 2 == 0 else steps[::-1]:
                wall, used = run(step, chunk)
                times[g][name] += wall
                times[g][f"{name}_cpu"] += used
                this[name] += wall
                this[f"{name}_cpu"] += used
        per_round.append((this["ours"] / this["peer"], this["ours_cpu"] / this["peer_cpu"]))
    times["rounds"] = per_round
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subset of pages, one throughput round")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds over all pages (median printed)")
    ap.add_argument("--only", choices=["preservation"], help="only the formula preservation count")
    ap.add_argument("--lost", action="store_true", help="list the formulas our extraction loses, per page")
    args = ap.parse_args()
    from pipelines.logs import quiet_logs

    quiet_logs(False)
    web = Path(args.data) / "web"
    math_files = sorted((web / "math").glob("*.html"))
    general = sorted((web / "general").glob("*.html"))
    if args.quick:
        math_files, general = math_files[::3], general[::8]
    p = preservation(math_files, args.lost)
    print(f"formula preservation, independent reference ({p['pages']} math pages, {p['formulas']} formulas): "
          f"ours {p['ours'] / p['formulas']:.1%} ({p['ours']})  plain trafilatura {p['plain'] / p['formulas']:.1%} "
          f"({p['plain']})")
    for kind, n in p["kinds"].most_common():
        print(f"    {kind}: {n} formulas, ours {p['kinds_ours'][kind]}, plain trafilatura {p['kinds_plain'][kind]}")
    d = p["detector_formulas"]
    print(f"  (previous measure, formulas found by our own detector: {d}; ours {p['detector_ours'] / d:.1%} "
          f"({p['detector_ours']}), plain trafilatura {p['detector_plain'] / d:.1%})")
    if args.only == "preservation":
        return
    q = main_text_f1(web, 40 if args.quick else None)
    print(f"main-text token F1 ({q['pages']} general pages with ground truth): "
          f"ours {q['ours']:.3f}  plain trafilatura {q['plain']:.3f}")
    rounds = 1 if args.quick else args.rounds
    t = throughput({"general": general, "math": math_files}, rounds)
    per_round = t.pop("rounds")
    tot = {k: sum(v[k] for v in t.values()) for k in ("peer", "ours", "peer_cpu", "ours_cpu")}
    print(f"throughput ({len(general) + len(math_files)} pages x {rounds}): datatrove Trafilatura {tot['peer']:.1f}s, "
          f"ours {tot['ours']:.1f}s, ratio ours/datatrove {tot['ours'] / tot['peer']:.2f} (wall clock); "
          f"CPU {tot['peer_cpu']:.1f}s vs {tot['ours_cpu']:.1f}s, ratio {tot['ours_cpu'] / tot['peer_cpu']:.2f}")
    for g, v in t.items():
        print(f"    {g} pages ({v['pages']}): datatrove {v['peer']:.1f}s, ours {v['ours']:.1f}s, "
              f"ratio {v['ours'] / v['peer']:.2f}; CPU ratio {v['ours_cpu'] / v['peer_cpu']:.2f}")
    wall, cpu = [w for w, _ in per_round], [c for _, c in per_round]
    print(f"  per round (all pages): wall ratios {' / '.join(f'{w:.2f}' for w in wall)}, median "
          f"{statistics.median(wall):.2f}; CPU ratios {' / '.join(f'{c:.2f}' for c in cpu)}, median "
          f"{statistics.median(cpu):.2f}")


if __name__ == "__main__":
    main()

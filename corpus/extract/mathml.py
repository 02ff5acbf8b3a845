"""MathML -> LaTeX for the common presentation elements (used when a ``<math>`` carries no TeX annotation).

Covers mi, mn, mo, mtext, ms, mspace, mrow, mstyle, mpadded, mphantom, mfrac, msup, msub, msubsup, msqrt,
mroot, mover, munder, munderover, mfenced, mtable/mtr/mtd, menclose and semantics. Unknown elements
fall back to the conversion of their children, so the output never loses the symbols it was given.
"""

from __future__ import annotations

from lxml import etree

# Unicode operators and letters that have a TeX command (the frequent ones; others pass through as is).
SYMBOLS = {
    "\u00b1": r"\pm", "\u00d7": r"\times", "\u00f7": r"\div", "\u2212": "-", "\u2217": "*", "\u22c5": r"\cdot",
    "\u00b7": r"\cdot", "\u2218": r"\circ", "\u2264": r"\leq", "\u2265": r"\geq", "\u2260": r"\neq",
    "\u2248": r"\approx", "\u2261": r"\equiv", "\u223c": r"\sim", "\u2245": r"\cong", "\u221d": r"\propto",
    "\u2208": r"\in", "\u2209": r"\notin", "\u220b": r"\ni", "\u2282": r"\subset", "\u2283": r"\supset",
    "\u2286": r"\subseteq", "\u2287": r"\supseteq", "\u222a": r"\cup", "\u2229": r"\cap", "\u2205": r"\emptyset",
    "\u2200": r"\forall", "\u2203": r"\exists", "\u00ac": r"\neg", "\u2227": r"\wedge", "\u2228": r"\vee",
    "\u2192": r"\to", "\u2190": r"\leftarrow", "\u2194": r"\leftrightarrow", "\u21d2": r"\Rightarrow",
    "\u21d0": r"\Leftarrow", "\u21d4": r"\Leftrightarrow", "\u21a6": r"\mapsto", "\u221e": r"\infty",
    "\u2202": r"\partial", "\u2207": r"\nabla", "\u2211": r"\sum", "\u220f": r"\prod", "\u222b": r"\int",
    "\u222e": r"\oint", "\u221a": r"\sqrt", "\u2032": "'", "\u2033": "''", "\u2026": r"\ldots", "\u22ef": r"\cdots",
    "\u22ee": r"\vdots", "\u22f1": r"\ddots", "\u27e8": r"\langle", "\u27e9": r"\rangle", "\u2016": r"\|",
    "\u230a": r"\lfloor", "\u230b": r"\rfloor", "\u2308": r"\lceil", "\u2309": r"\rceil", "\u2297": r"\otimes",
    "\u2295": r"\oplus", "\u22a5": r"\perp", "\u2225": r"\parallel", "\u2061": "", "\u2062": "", "\u2063": "",
    "\u2064": "", "\u00a0": " ", "\u2009": r"\,", "\u200b": "", "\u210f": r"\hbar", "\u2113": r"\ell",
    "\u2135": r"\aleph", "\u211d": r"\mathbb{R}", "\u2115": r"\mathbb{N}", "\u2124": r"\mathbb{Z}",
    "\u211a": r"\mathbb{Q}", "\u2102": r"\mathbb{C}", "\u2223": r"\mid", "\u2220": r"\angle", "\u25b3": r"\triangle",
    "\u00b0": r"^\circ", "\u02c6": r"\hat{}", "\u00af": r"\bar{}", "\u2192\u0338": r"\nrightarrow",
    "\u22a2": r"\vdash", "\u22a8": r"\models", "\u2020": r"\dagger", "\u2217\u2217": "**",
}
GREEK = {
    "\u03b1": "alpha", "\u03b2": "beta", "\u03b3": "gamma", "\u03b4": "delta", "\u03b5": "epsilon",
    "\u03f5": "epsilon", "\u03b6": "zeta", "\u03b7": "eta", "\u03b8": "theta", "\u03d1": "vartheta", "\u03b9": "iota",
    "\u03ba": "kappa", "\u03bb": "lambda", "\u03bc": "mu", "\u03bd": "nu", "\u03be": "xi", "\u03c0": "pi",
    "\u03c1": "rho", "\u03c3": "sigma", "\u03c2": "varsigma", "\u03c4": "tau", "\u03c5": "upsilon", "\u03c6": "phi",
    "\u03d5": "phi", "\u03c7": "chi", "\u03c8": "psi", "\u03c9": "omega", "\u0393": "Gamma", "\u0394": "Delta",
    "\u0398": "Theta", "\u039b": "Lambda", "\u039e": "Xi", "\u03a0": "Pi", "\u03a3": "Sigma", "\u03a5": "Upsilon",
    "\u03a6": "Phi", "\u03a8": "Psi", "\u03a9": "Omega",
}
SYMBOLS.update({k: "\\" + v for k, v in GREEK.items()})
ACCENTS = {"^": r"\hat", "\u02c6": r"\hat", "~": r"\tilde", "\u02dc": r"\tilde", "\u00af": r"\bar", "\u203e": r"\bar",
           "_": r"\underline", "\u2192": r"\vec", "\u20d7": r"\vec", ".": r"\dot", "\u02d9": r"\dot",
           "\u00a8": r"\ddot", "\u23de": r"\overbrace", "\u23df": r"\underbrace"}
FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "max", "min", "sup", "inf",
             "det", "dim", "ker", "deg", "gcd", "arg", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "Pr"}
LARGE_OPS = {r"\sum", r"\prod", r"\int", r"\oint", r"\lim", r"\max", r"\min", r"\sup", r"\inf", r"\bigcup",
             r"\bigcap"}


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _symbols(text: str) -> str:
    out = []
    for ch in text:
        tex = SYMBOLS.get(ch)
        if tex is None:
            out.append("\\" + ch if ch in "{}%#&$_" else ch)
        else:
            out.append(tex + (" " if tex[-1:].isalpha() else ""))
    return "".join(out).strip() if len(text) > 1 else "".join(out)


def _group(tex: str) -> str:
    return tex if len(tex) == 1 or (tex.startswith("{") and tex.endswith("}")) else "{" + tex + "}"


def _kids(el) -> list:
    return [c for c in el if isinstance(c.tag, str)]


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        if not p:
            continue
        if out and out[-1].isalpha() and p[0].isalpha() and "\\" in out.rsplit(" ", 1)[-1]:
            out += " "
        out += p
    return out


def convert(el) -> str:
    """LaTeX for one MathML element (``<math>`` or any presentation element)."""
    tag = _local(el.tag)
    kids = _kids(el)
    text = (el.text or "").strip()
    if tag == "mi":
        if text in FUNCTIONS:
            return "\\" + text + " "
        if len(text) > 1 and text.isalpha():
            return r"\mathrm{" + text + "}"
        variant = el.get("mathvariant", "")
        body = _symbols(text)
        if variant == "double-struck":
            return r"\mathbb{" + body + "}"
        if variant in ("bold", "bold-italic"):
            return r"\mathbf{" + body + "}"
        if variant in ("fraktur",):
            return r"\mathfrak{" + body + "}"
        if variant in ("script",):
            return r"\mathcal{" + body + "}"
        return body
    if tag in ("mn",):
        return _symbols(text)
    if tag == "mo":
        if text in FUNCTIONS:
            return "\\" + text + " "
        if text in ("{", "}"):
            return "\\" + text
        return _symbols(text)
    if tag in ("mtext", "ms"):
        return r"\text{" + text + "}" if text.strip() else " "
    if tag == "mspace":
        return r"\ "
    if tag == "annotation-xml" or tag == "annotation":
        return ""
    if tag == "semantics":
        return convert(kids[0]) if kids else ""
    if tag == "mfrac":
        if len(kids) == 2:
            cmd = r"\binom" if el.get("linethickness") in ("0", "0px") else r"\frac"
            return f"{cmd}{{{convert(kids[0])}}}{{{convert(kids[1])}}}"
    elif tag == "msup" and len(kids) == 2:
        return f"{_group(convert(kids[0]))}^{_group(convert(kids[1]))}"
    elif tag == "msub" and len(kids) == 2:
        return f"{_group(convert(kids[0]))}_{_group(convert(kids[1]))}"
    elif tag == "msubsup" and len(kids) == 3:
        return f"{_group(convert(kids[0]))}_{_group(convert(kids[1]))}^{_group(convert(kids[2]))}"
    elif tag == "msqrt":
        return r"\sqrt{" + _join([convert(k) for k in kids]) + "}"
    elif tag == "mroot" and len(kids) == 2:
        return rf"\sqrt[{convert(kids[1])}]{{{convert(kids[0])}}}"
    elif tag in ("mover", "munder", "munderover") and len(kids) >= 2:
        base = convert(kids[0]).strip()
        if tag == "mover" and len(kids) == 2:
            acc = (kids[1].text or "").strip()
            if _local(kids[1].tag) == "mo" and acc in ACCENTS:
                return f"{ACCENTS[acc]}{{{base}}}"
            return rf"\overset{{{convert(kids[1])}}}{{{base}}}"
        if tag == "munder" and len(kids) == 2:
            acc = (kids[1].text or "").strip()
            if _local(kids[1].tag) == "mo" and acc in ("_", "\u23df"):
                return f"{ACCENTS[acc]}{{{base}}}"
            if base in LARGE_OPS or base.rstrip() in LARGE_OPS:
                return f"{base.rstrip()}_{_group(convert(kids[1]))}"
            return rf"\underset{{{convert(kids[1])}}}{{{base}}}"
        if len(kids) == 3:
            return f"{base}_{_group(convert(kids[1]))}^{_group(convert(kids[2]))}"
    elif tag == "mfenced":
        open_, close = el.get("open", "("), el.get("close", ")")
        seps = el.get("separators", ",")
        body = (seps[:1] or ",").join(convert(k) for k in kids)
        return rf"\left{_fence(open_)}{body}\right{_fence(close)}"
    elif tag == "mtable":
        rows = []
        for tr in kids:
            cells = [_join([convert(c) for c in _kids(td)]) if _local(td.tag) == "mtd" else convert(td)
                     for td in (_kids(tr) if _local(tr.tag) in ("mtr", "mlabeledtr") else [tr])]
            rows.append(" & ".join(cells))
        return r"\begin{matrix}" + r" \\ ".join(rows) + r"\end{matrix}"
    elif tag == "menclose" and "radical" in el.get("notation", ""):
        return r"\sqrt{" + _join([convert(k) for k in kids]) + "}"
    elif tag == "mphantom":
        return ""
    return _join([convert(k) for k in kids]) if kids else _symbols(text)


def _fence(ch: str) -> str:
    if ch in ("{", "}"):
        return "\\" + ch
    return SYMBOLS.get(ch, ch) or "."


def mathml_to_latex(el) -> str:
    """LaTeX for a ``<math>`` element, or a MathML string."""
    if isinstance(el, str):
        el = etree.fromstring(el.encode("utf-8"), etree.XMLParser(recover=True))
    return " ".join(convert(el).split())

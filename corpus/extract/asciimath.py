"""AsciiMath -> LaTeX, following the grammar of the AsciiMath spec (asciimath.org):

    S ::= v | lr E rr | u S | b S S        simple: symbol, bracketed expression, unary / binary operator
    I ::= S_S | S^S | S_S^S | S            intermediate: scripts
    E ::= I E | I/I E                      expression: ``/`` makes a fraction of the intermediates beside it

Symbols are matched longest first over the spec's symbol table (plus the LaTeX names AsciiMath also accepts);
letters that match no symbol are single-letter variables. As in the spec, the outer brackets of a fraction's
operands, of scripts and of the arguments of unary / binary operators are dropped (``(a+b)/2`` ->
``\\frac{a+b}{2}``, ``x_(i+1)`` -> ``x_{i+1}``, ``sqrt(x)`` -> ``\\sqrt{x}``), while functions keep theirs
(``sin(x)`` -> ``\\sin(x)``). A bracketed, comma-separated list of rows in equal brackets with equal column counts
is a matrix (``[(a,b),(c,d)]`` -> ``bmatrix``; ``{(..),(..):}`` -> ``cases``). ``|..|`` pairs up when a closing
bar follows at the same level, else ``|`` is a symbol. Whitespace between symbols is kept as one space.

:func:`asciimath_to_latex` raises :class:`AsciiMathError` when it gives up (too much backtracking, too deep).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple


class AsciiMathError(ValueError):
    """The input could not be converted."""


_GREEK = ("alpha beta gamma Gamma delta Delta epsilon varepsilon zeta eta theta Theta vartheta iota kappa lambda "
          "Lambda mu nu xi Xi pi Pi rho sigma Sigma tau upsilon Upsilon phi Phi varphi chi psi Psi omega Omega")
# LaTeX names AsciiMath accepts as they are (written with or without the backslash).
_FUNCTION_NAMES = "sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh coth exp log ln det gcd"
_LATEX_NAMES = ("times div cdot ast star circ pm mp setminus oplus otimes odot wedge vee cap cup bigwedge bigvee "
                "bigcap bigcup sum prod int oint partial nabla infty emptyset aleph angle triangle therefore because "
                "ldots cdots vdots ddots quad qquad diamond square frown le ge leq geq ne neq ll gg prec succ preceq "
                "succeq in notin subset supset subseteq supseteq equiv cong approx sim propto neg forall exists bot "
                "top vdash models implies iff to rightarrow leftarrow leftrightarrow Rightarrow Leftarrow "
                "Leftrightarrow uparrow downarrow mapsto twoheadrightarrow rightarrowtail lfloor rfloor lceil rceil "
                "langle rangle lim max min dim")

CONSTANTS: dict[str, str] = {
    **{g: "\\" + g for g in _GREEK.split()},
    **{n: "\\" + n for n in _LATEX_NAMES.split()},
    # operations
    "+": "+", "-": "-", "*": r"\cdot", "**": r"\ast", "***": r"\star", "//": "/", "\\\\": r"\backslash",
    "xx": r"\times", "|><": r"\ltimes", "><|": r"\rtimes", "|><|": r"\bowtie", "-:": r"\div", "divide": r"\div",
    "@": r"\circ", "o+": r"\oplus", "ox": r"\otimes", "o.": r"\odot", "^^": r"\wedge", "^^^": r"\bigwedge",
    "vv": r"\vee", "vvv": r"\bigvee", "nn": r"\cap", "nnn": r"\bigcap", "uu": r"\cup", "uuu": r"\bigcup",
    # relations
    "=": "=", "!=": r"\ne", "<": "<", ">": ">", "<=": r"\le", ">=": r"\ge", "lt": "<", "gt": ">", "lt=": r"\le",
    "gt=": r"\ge", "mlt": r"\ll", "mgt": r"\gg", "-<": r"\prec", "-<=": r"\preceq", ">-": r"\succ",
    ">-=": r"\succeq", "!in": r"\notin", "sub": r"\subset", "sup": r"\supset", "sube": r"\subseteq",
    "supe": r"\supseteq", "-=": r"\equiv", "~=": r"\cong", "~~": r"\approx", "~": r"\sim", "prop": r"\propto",
    ":=": ":=",
    # logic
    "and": r"\text{ and }", "or": r"\text{ or }", "not": r"\neg", "=>": r"\Rightarrow", "if": r"\text{ if }",
    "<=>": r"\Leftrightarrow", "AA": r"\forall", "EE": r"\exists", "_|_": r"\bot", "TT": r"\top",
    "|--": r"\vdash", "|==": r"\models",
    # arrows
    "uarr": r"\uparrow", "darr": r"\downarrow", "rarr": r"\rightarrow", "->": r"\to", ">->": r"\rightarrowtail",
    "->>": r"\twoheadrightarrow", ">->>": r"\twoheadrightarrow", "|->": r"\mapsto", "larr": r"\leftarrow",
    "harr": r"\leftrightarrow", "rArr": r"\Rightarrow", "lArr": r"\Leftarrow", "hArr": r"\Leftrightarrow",
    # miscellaneous
    "del": r"\partial", "grad": r"\nabla", "+-": r"\pm", "-+": r"\mp", "O/": r"\emptyset", "oo": r"\infty",
    "/_": r"\angle", "/_\\": r"\triangle", "'": "'", ":.": r"\therefore", ":'": r"\because", "...": r"\ldots",
    "\\ ": r"\ ", "|__": r"\lfloor", "__|": r"\rfloor", "|~": r"\lceil", "~|": r"\rceil", "CC": r"\mathbb{C}",
    "NN": r"\mathbb{N}", "QQ": r"\mathbb{Q}", "RR": r"\mathbb{R}", "ZZ": r"\mathbb{Z}", "Lim": r"\operatorname*{Lim}",
    "mod": r"\bmod", "lub": r"\operatorname*{lub}", "glb": r"\operatorname*{glb}",
    "dx": "dx", "dy": "dy", "dz": "dz", "dt": "dt",  # the spec's differentials: ``dy/dx`` is one fraction
}
FUNCTIONS: dict[str, str] = {
    **{f: "\\" + f for f in _FUNCTION_NAMES.split()},
    "sech": r"\operatorname{sech}", "csch": r"\operatorname{csch}", "lcm": r"\operatorname{lcm}", "f": "f", "g": "g",
}
LEFT = {"(": "(", "[": "[", "{": r"\{", "(:": r"\langle", "<<": r"\langle", "{:": "."}
RIGHT = {")": ")", "]": "]", "}": r"\}", ":)": r"\rangle", ">>": r"\rangle", ":}": "."}
UNARY: dict[str, tuple[str, str]] = {
    "sqrt": (r"\sqrt{", "}"), "hat": (r"\hat{", "}"), "bar": (r"\overline{", "}"), "overline": (r"\overline{", "}"),
    "ul": (r"\underline{", "}"), "underline": (r"\underline{", "}"), "vec": (r"\vec{", "}"), "dot": (r"\dot{", "}"),
    "ddot": (r"\ddot{", "}"), "tilde": (r"\tilde{", "}"), "ubrace": (r"\underbrace{", "}"),
    "underbrace": (r"\underbrace{", "}"), "obrace": (r"\overbrace{", "}"), "overbrace": (r"\overbrace{", "}"),
    "cancel": (r"\cancel{", "}"), "bb": (r"\mathbf{", "}"), "bbb": (r"\mathbb{", "}"), "cc": (r"\mathcal{", "}"),
    "tt": (r"\mathtt{", "}"), "fr": (r"\mathfrak{", "}"), "sf": (r"\mathsf{", "}"), "abs": ("|", "|"),
    "floor": (r"\lfloor ", r"\rfloor"), "ceil": (r"\lceil ", r"\rceil"), "norm": (r"\|", r"\|"),
    **{f"math{f}": (rf"\math{f}{{", "}") for f in ("bf", "bb", "cal", "tt", "frak", "sf", "rm")},
}
BINARY: dict[str, tuple[str, str, str]] = {
    "frac": (r"\frac{", "}{", "}"), "root": (r"\sqrt[", "]{", "}"), "stackrel": (r"\stackrel{", "}{", "}"),
    "overset": (r"\overset{", "}{", "}"), "underset": (r"\underset{", "}{", "}"),
}
TEXT_OPS = ("text", "mbox")
_KINDS = {**dict.fromkeys(CONSTANTS, "const"), **dict.fromkeys(FUNCTIONS, "func"), **dict.fromkeys(LEFT, "left"),
          **dict.fromkeys(RIGHT, "right"), **dict.fromkeys(UNARY, "unary"), **dict.fromkeys(BINARY, "binary"),
          **dict.fromkeys(TEXT_OPS, "textop"), "color": "color", "_": "sub", "^": "sup", "/": "frac", "|": "bar"}
_SYMBOL = re.compile("|".join(re.escape(s) for s in sorted(_KINDS, key=len, reverse=True)))
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_BACKSLASH_WORD = re.compile(r"\\([A-Za-z]+)")
_WORD_OR_CHAR = re.compile(r"\w+|\S")
_NOT_IN_COLOR = re.compile(r"[^A-Za-z0-9#]")
_ESCAPE = {"#": r"\#", "%": r"\%", "&": r"\&", "$": r"\$"}
_TEXT_ESCAPE = str.maketrans({"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "%": r"\%",
                              "&": r"\&", "#": r"\#", "_": r"\_", "^": r"\^{}", "~": r"\~{}"})
_CLOSING = {"(": ")", "[": "]", "{": "}"}
_ENDS_IN_COMMAND = re.compile(r"\\[A-Za-z]+$")
_TALL = re.compile(r"\\(?:frac|begin|sum|prod|int|oint|stackrel|overset|underset|big)")
_SPACES = {r"\ ", r"\quad", r"\qquad"}
_MATRIX_ENVS = {("(", ")"): "pmatrix", ("[", "]"): "bmatrix", ("{", "}"): "Bmatrix", ("|", "|"): "vmatrix",
                ("{:", ":}"): "matrix", ("{", ":}"): "cases"}


class Token(NamedTuple):
    kind: str  # const num func left right bar unary binary text color sub sup frac
    src: str  # the input it came from (the text itself for text tokens)
    tex: str
    space: bool  # whitespace before it in the input


def _raw_group(s: str, i: int) -> tuple[str, int]:
    """The raw text of ``text(..)``'s argument at ``s[i:]`` (brackets of its kind nest) and the end position."""
    j = i
    while j < len(s) and s[j] == " ":
        j += 1
    if j < len(s) and s[j] in _CLOSING:
        opener, closer, depth = s[j], _CLOSING[s[j]], 0
        for k in range(j, len(s)):
            depth += (s[k] == opener) - (s[k] == closer)
            if depth == 0:
                return s[j + 1:k], k + 1
        return s[j + 1:], len(s)
    m = _WORD_OR_CHAR.match(s, j)
    return (m.group(), m.end()) if m else ("", j)


def tokenize(s: str) -> list[Token]:
    """Split AsciiMath into tokens, longest symbol first; unknown letters and characters are single tokens."""
    toks: list[Token] = []
    i, n = 0, len(s)
    while i < n:
        j = i
        while j < n and s[j].isspace():
            j += 1
        space, i = j > i, j
        if i >= n:
            break
        c = s[i]
        if c == '"':
            end = s.find('"', i + 1)
            end = n if end < 0 else end
            toks.append(Token("text", s[i + 1:end], "", space))
            i = end + 1
            continue
        if c == "\\" and i + 1 < n and s[i + 1].isalpha():  # a LaTeX habit: \sqrt, \alpha read as AsciiMath
            word = _BACKSLASH_WORD.match(s, i)
            if word.group(1) not in _KINDS:  # other commands pass through
                toks.append(Token("const", word.group(), word.group(), space))
                i = word.end()
                continue
            i += 1
        num, sym = _NUMBER.match(s, i), _SYMBOL.match(s, i)
        if num and (sym is None or num.end() >= sym.end()):
            toks.append(Token("num", num.group(), num.group(), space))
            i = num.end()
            continue
        if sym:
            name, kind = sym.group(), _KINDS[sym.group()]
            i = sym.end()
            if kind in ("textop", "color"):  # text(..) and the colour of color(..)(..) are read raw
                body, i = _raw_group(s, i)
                toks.append(Token("text", body, "", space) if kind == "textop"
                        else Token("color", _NOT_IN_COLOR.sub("", body), "", space))
                continue
            tex = CONSTANTS.get(name) or FUNCTIONS.get(name) or LEFT.get(name) or RIGHT.get(name) or name
            toks.append(Token(kind, name, tex, space))
            continue
        if c == "\\":  # a lone backslash: \{ \, \; ... pass through; at the end or before anything else: dropped
            if i + 1 < n and s[i + 1] in "{}$%&#_,;:!|":
                toks.append(Token("const", s[i:i + 2], s[i:i + 2], space))
                i += 2
            else:
                i += 1
            continue
        toks.append(Token("const", c, _ESCAPE.get(c, c), space))
        i += 1
    return toks


@dataclass
class Piece:
    """A converted part: its LaTeX, and for a bracket group its content and brackets (for fractions, scripts,
    operator arguments and matrices)."""

    tex: str
    space: bool = False
    src: str = ""  # the input of a single symbol
    items: list[Piece] | None = None  # a bracket group's content
    inner: str | None = None  # ... rendered without the brackets
    left: str = ""
    right: str = ""

    @property
    def arg(self) -> str:
        return self.inner if self.inner is not None else self.tex


def _cat(a: str, b: str, space: bool = False) -> str:
    if not a or not b:
        return a + b
    if space or (_ENDS_IN_COMMAND.search(a) and b[0].isalnum()):
        return f"{a} {b}"
    return a + b


def _join(pieces: list[Piece]) -> str:
    out = ""
    for p in pieces:
        out = _cat(out, p.tex, p.space)
    return out


def _split(pieces: list[Piece], sep: str = ",") -> list[list[Piece]]:
    parts: list[list[Piece]] = [[]]
    for p in pieces:
        if p.src == sep:
            parts.append([])
        else:
            parts[-1].append(p)
    return parts


def _script(tex: str) -> str:
    return tex if len(tex) == 1 and tex.isalnum() else "{" + tex + "}"


def _matrix(left: str, right: str, items: list[Piece]) -> str | None:
    """A matrix when ``items`` are two or more bracket groups (``(..)`` or ``[..]``, all alike) with commas between,
    each holding the same number of comma-separated cells."""
    rows = _split(items)
    if len(rows) < 2 or any(len(r) != 1 or r[0].items is None or r[0].left not in ("(", "[") for r in rows):
        return None
    if len({(r[0].left, r[0].right) for r in rows}) != 1:
        return None
    cells = [_split(r[0].items or []) for r in rows]
    if len({len(c) for c in cells}) != 1:
        return None
    body = r" \\ ".join(" & ".join(_join(cell) for cell in row) for row in cells)
    env = _MATRIX_ENVS.get((left, right))
    if env:
        return rf"\begin{{{env}}} {body} \end{{{env}}}"
    return rf"\left{LEFT.get(left, left)}\begin{{matrix}} {body} \end{{matrix}}\right{RIGHT.get(right, right)}"


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.toks, self.i = tokens, 0
        self.budget = 40 * len(tokens) + 200  # bounds the backtracking of unmatched bars

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        self.i += 1
        return self.toks[self.i - 1]

    def expr(self, closers: frozenset[str]) -> list[Piece]:
        """E: intermediates (and fractions of two) up to a closer or the end."""
        out: list[Piece] = []
        while (t := self.peek()) is not None and t.kind not in closers:
            if t.kind in ("right", "frac"):  # a stray closing bracket, or a slash with nothing on its left
                self.take()
                out.append(Piece("" if t.tex == "." else t.tex, t.space, src=t.src))
                continue
            p = self.intermediate()
            if (t := self.peek()) is not None and t.kind == "frac":
                self.take()
                nxt = self.peek()
                if nxt is None or nxt.kind in closers or nxt.kind == "right":
                    out += [p, Piece("/", t.space, src="/")]
                    continue
                q = self.intermediate()
                p = Piece(rf"\frac{{{p.arg}}}{{{q.arg}}}", p.space)
            out.append(p)
        return out

    def intermediate(self) -> Piece:
        """I: a simple expression with an optional subscript and superscript."""
        base = self.simple()
        scripts: dict[str, Piece] = {}
        while (t := self.peek()) is not None and t.kind in ("sub", "sup") and t.kind not in scripts:
            self.take()
            scripts[t.kind] = self.script_operand()
        if not scripts:
            return base
        tex = base.tex if base.tex else "{}"
        for kind, mark in (("sub", "_"), ("sup", "^")):
            if kind in scripts:
                tex += mark + _script(scripts[kind].arg)
        return Piece(tex, base.space)

    def script_operand(self) -> Piece:
        t = self.peek()
        if t is not None and t.src == "-" and self.i + 1 < len(self.toks):  # x^-1, p^-s, e^-(x+1): a negated S
            nxt = self.toks[self.i + 1]
            if not nxt.space and nxt.kind not in ("sub", "sup", "right", "frac"):
                self.take()
                return Piece("-" + self.simple().tex, t.space)
        return self.simple()

    def simple(self) -> Piece:
        """S: a symbol, a bracket group, or an operator with its arguments."""
        self.budget -= 1
        if self.budget < 0:
            raise AsciiMathError("too much backtracking")
        t = self.peek()
        if t is None or t.kind in ("sub", "sup", "right"):  # nothing to take: an empty operand
            return Piece("", t.space if t else False)
        self.take()
        if t.kind == "left":
            items = self.expr(frozenset({"right"}))
            close = self.peek()
            right = self.take().src if close is not None else ""
            return self.group(t, items, right)
        if t.kind == "bar":
            start = self.i
            items = self.expr(frozenset({"right", "bar"}))
            close = self.peek()
            if close is not None and close.kind == "bar":
                self.take()
                return self.group(t, items, "|")
            self.i = start
            return Piece("|", t.space, src="|")
        if t.kind == "unary":
            pre, post = UNARY[t.src]
            return Piece(pre + self.simple().arg + post, t.space)
        if t.kind == "binary":
            pre, mid, post = BINARY[t.src]
            a = self.simple().arg
            return Piece(pre + a + mid + self.simple().arg + post, t.space)
        if t.kind == "text":
            return Piece(r"\text{" + t.src.translate(_TEXT_ESCAPE) + "}", t.space)
        if t.kind == "color":
            a = self.simple().arg
            return Piece(rf"{{\color{{{t.src}}}{a}}}" if t.src else a, t.space)
        if t.kind == "func":
            nxt = self.peek()
            if (nxt is None or nxt.kind in ("sub", "sup", "frac", "bar", "right") or nxt.src == ","
                    or (len(t.src) == 1 and nxt.kind != "left")):
                return Piece(t.tex, t.space, src=t.src)  # no argument follows (f', sin^2 x, f = ..)
            a = self.simple()
            return Piece(_cat(t.tex, a.tex, a.space), t.space)
        return Piece(t.tex, t.space, src=t.src)

    def group(self, left: Token, items: list[Piece], right: str) -> Piece:
        inner = _join(items)
        l_tex, r_tex = LEFT.get(left.src, left.src), RIGHT.get(right, right)
        matrix = _matrix(left.src, right, items) if right else None
        if matrix:
            tex = inner = matrix
        elif not right:  # never closed
            tex = inner if l_tex == "." else _cat(l_tex, inner)
        elif l_tex == "." and r_tex == ".":
            tex = inner
        elif l_tex == "." or r_tex == "." or _TALL.search(inner):
            tex = _cat(rf"\left{l_tex}", inner) + rf"\right{r_tex}"
        else:
            tex = _cat(l_tex, inner) + r_tex
        return Piece(tex, left.space, items=items, inner=inner, left=left.src, right=right)


def asciimath_to_latex(text: str) -> str:
    """The LaTeX for one AsciiMath formula (without math delimiters); ``""`` for a formula of only spacing."""
    parser = _Parser(tokenize(text))
    try:
        pieces = parser.expr(frozenset())
    except RecursionError as e:
        raise AsciiMathError("nested too deeply") from e
    while pieces and pieces[0].tex in _SPACES:  # spacing at the edges of a formula is layout, not math
        pieces.pop(0)
    while pieces and pieces[-1].tex in _SPACES:
        pieces.pop()
    return _join(pieces)

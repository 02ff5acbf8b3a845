"""AsciiMath -> LaTeX: the spec's examples (asciimath.org) and its grammar rules, one row per construct."""

from __future__ import annotations

import pytest

from corpus.extract.asciimath import AsciiMathError, asciimath_to_latex, tokenize

SPEC = [
    # fractions drop the outer brackets of their operands; scripts of their operand
    ("sum_(i=1)^n i^3=((n(n+1))/2)^2", r"\sum_{i=1}^n i^3=\left(\frac{n(n+1)}{2}\right)^2"),
    ("a/b", r"\frac{a}{b}"),
    ("(a+b)/(c+d)", r"\frac{a+b}{c+d}"),
    ("x^2/3", r"\frac{x^2}{3}"),
    ("1/(2!)x^2", r"\frac{1}{2!}x^2"),
    ("e^(x/2)", r"e^{\frac{x}{2}}"),
    ("a/b/c", r"\frac{a}{b}/c"),
    ("dy/dx", r"\frac{dy}{dx}"),
    ("x_(i+1)", r"x_{i+1}"),
    ("x_10^alpha", r"x_{10}^{\alpha}"),
    ("x^-1 + p^-s", r"x^{-1} + p^{-s}"),
    ("e^(i pi)+1=0", r"e^{i \pi}+1=0"),
    ("f^((n))(a)", r"f^{(n)}(a)"),
    # operators with arguments: unary / binary drop the brackets, functions keep them
    ("sqrt(x^2+1)", r"\sqrt{x^2+1}"),
    ("sqrt x", r"\sqrt{x}"),
    ("root(3)(x)", r"\sqrt[3]{x}"),
    ("frac(a)(b)", r"\frac{a}{b}"),
    ("stackrel(def)(=)", r"\stackrel{def}{=}"),
    ("color(orange)(x+1)", r"{\color{orange}x+1}"),
    ("sin(x)/2", r"\frac{\sin(x)}{2}"),
    ("sin^2 x + cos^2 x = 1", r"\sin^2 x + \cos^2 x = 1"),
    ("ln x + log_2 y", r"\ln x + \log_2 y"),
    ("abs(x) <= 1", r"|x| \le 1"),
    ("floor(x/2) + ceil(y) + norm(v)", r"\lfloor \frac{x}{2}\rfloor + \lceil y\rceil + \|v\|"),
    ("hat x, bar(AB), vec v, dot x, ddot y, ul u",
     r"\hat{x}, \overline{AB}, \vec{v}, \dot{x}, \ddot{y}, \underline{u}"),
    ("obrace(1+2+3+4)^(\"4 terms\")", r"\overbrace{1+2+3+4}^{\text{4 terms}}"),
    ("bb A, bbb R, cc F, text(if) x != 0", r"\mathbf{A}, \mathbb{R}, \mathcal{F}, \text{if} x \ne 0"),
    ('"speed" = d/t', r"\text{speed} = \frac{d}{t}"),
    # calculus
    ("int_0^1 f(x)dx", r"\int_0^1 f(x)dx"),
    ("lim_(x->oo) 1/x = 0", r"\lim_{x\to\infty} \frac{1}{x} = 0"),
    ("d/dx f(x)=lim_(h->0)(f(x+h)-f(x))/h", r"\frac{d}{dx} f(x)=\lim_{h\to 0}\frac{f(x+h)-f(x)}{h}"),
    ("f(x)=sum_(n=0)^oo(f^((n))(a))/(n!)(x-a)^n", r"f(x)=\sum_{n=0}^{\infty}\frac{f^{(n)}(a)}{n!}(x-a)^n"),
    # symbols: longest match first
    ("alpha, beta, oo, xx, -:, <=", r"\alpha, \beta, \infty, \times, \div, \le"),
    ("a +- b, a ** b, a // b, a @ b, a != b", r"a \pm b, a \ast b, a / b, a \circ b, a \ne b"),
    ("x in RR, ZZ sub QQ sube CC, n !in NN", r"x \in \mathbb{R}, \mathbb{Z} \subset \mathbb{Q} \subseteq \mathbb{C}, "
                                             r"n \notin \mathbb{N}"),
    ("AA x EE y: x => y <=> z", r"\forall x \exists y: x \Rightarrow y \Leftrightarrow z"),
    ("f: A -> B, x |-> x^2, A ->> B", r"f: A \to B, x \mapsto x^2, A \twoheadrightarrow B"),
    ("int cos x dx", r"\int \cos x dx"),
    # brackets
    ("(:a,b:)", r"\langle a,b\rangle"),
    ("{:a+b:}", "a+b"),
    ("|x| + |y|", "|x| + |y|"),
    ("a|b", "a|b"),
    ("x in {1,2,3}", r"x \in \{1,2,3\}"),
    # matrices
    ("[[a,b],[c,d]]", r"\begin{bmatrix} a & b \\ c & d \end{bmatrix}"),
    ("[(a,b),(c,d)]", r"\begin{bmatrix} a & b \\ c & d \end{bmatrix}"),
    ("((1,2),(3,4))", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"),
    ("((1),(0))", r"\begin{pmatrix} 1 \\ 0 \end{pmatrix}"),
    ("|(a,b),(c,d)|=ad-bc", r"\begin{vmatrix} a & b \\ c & d \end{vmatrix}=ad-bc"),
    ("|x|= {(x, if x >= 0),(-x, if x < 0):}",
     r"|x|= \begin{cases} x & \text{ if } x \ge 0 \\ -x & \text{ if } x < 0 \end{cases}"),
    ("((1,2),(3))", "((1,2),(3))"),  # rows of unequal length: no matrix
]


@pytest.mark.parametrize("ascii_,tex", SPEC, ids=[a for a, _ in SPEC])
def test_spec_examples_convert(ascii_, tex):
    assert asciimath_to_latex(ascii_) == tex


def test_longest_symbol_wins_and_unknown_letters_are_variables():
    assert [t.src for t in tokenize("int in sin ->> -> <=> ab")] == ["int", "in", "sin", "->>", "->", "<=>", "a", "b"]
    assert [t.kind for t in tokenize('sqrt frac sin ( ) | "t" text(x) _ ^ / 2.5')] == [
        "unary", "binary", "func", "left", "right", "bar", "text", "text", "sub", "sup", "frac", "num"]


def test_latex_habits_spacing_and_special_characters():
    assert asciimath_to_latex(r"\sqrt(x) + \alpha") == r"\sqrt{x} + \alpha"  # LaTeX names with a backslash
    assert asciimath_to_latex(r"\mathrm{d}x + \unknown") == r"\mathrm{d}x + \unknown"
    assert asciimath_to_latex(r"\ \ a=3, \ \ b=-3,\ \ ") == r"a=3, \ \ b=-3,"  # spacing at the edges dropped
    assert asciimath_to_latex(r"\ \ \ ") == ""
    assert asciimath_to_latex("50% & $5 #1") == r"50\% \& \$5 \#1"
    assert asciimath_to_latex('text(50% off_{x})') == r"\text{50\% off\_\{x\}}"


def test_broken_input_converts_without_losing_symbols():
    assert asciimath_to_latex("(a+b") == "(a+b"
    assert asciimath_to_latex("a+b)") == "a+b)"
    assert asciimath_to_latex("x^") == "x^{}"
    assert asciimath_to_latex('"unclosed') == r"\text{unclosed}"


@pytest.mark.parametrize("bad", ["(" * 3000 + "x", "(|a" * 100])
def test_pathological_input_raises_a_conversion_error(bad):
    with pytest.raises(AsciiMathError):
        asciimath_to_latex(bad)

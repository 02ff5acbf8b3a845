"""Extraction: the math pass, MathML conversion, bad web input, books, code, and the stage end to end."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
import time

import pytest

from corpus.extract.books import clean_tex, estimate_tokens, read_book, split_text
from corpus.extract.code import read_code_file
from corpus.extract.html import ExtractError, decode_html, extract_page, parse_html
from corpus.extract.math import scan_markers, take_formulas
from corpus.extract.mathml import mathml_to_latex
from corpus.extract.web import read_html_file, read_warc
from corpus.io import Reject
from corpus.records import FileContext
from pipelines.steps.io import read_shards

PROSE = " ".join(["This paragraph explains the result in plain words so that the extractor sees real prose."] * 3)


def page(body: str, head: str = "") -> str:
    return (f"<html><head><title>T</title>{head}</head><body><article><h1>Heading</h1><p>{PROSE}</p>{body}"
            f"<p>{PROSE}</p></article></body></html>")


def ctx(source: str = "web", relpath: str = "p.html", **options) -> FileContext:
    return FileContext("in", source, relpath, options)


# ---- math pass ---------------------------------------------------------------------------------------------


def test_mathjax_scripts_katex_mathml_images_and_custom_elements_become_latex():
    body = (
        '<p>Inline <span class="MathJax_Preview">x</span><span class="MathJax">GLYPHS</span>'
        '<script type="math/tex">a^2+b^2=c^2</script> and display:</p>'
        '<p><script type="math/tex; mode=display">\\int_0^1 x\\,dx</script></p>'
        '<p>KaTeX <span class="katex"><span class="katex-mathml"><math><semantics><mi>y</mi>'
        '<annotation encoding="application/x-tex">y=\\frac{1}{2}</annotation></semantics></math></span>'
        '<span class="katex-html">y=12RENDERED</span></span> here.</p>'
        '<p>MathML alt <math alttext="\\sqrt{2}"><msqrt><mn>2</mn></msqrt></math> and plain '
        '<math><mfrac><mi>p</mi><mi>q</mi></mfrac></math> and an image '
        '<img src="https://latex.codecogs.com/png.latex?e^{i\\pi}" alt="e^{i\\pi}+1=0"> and '
        '<d-math>\\theta_t</d-math> done.</p>'
    )
    p = extract_page(page(body), url="https://www.example.org/a")
    for tex in ("$a^2+b^2=c^2$", "$$\\int_0^1 x\\,dx$$", "$y=\\frac{1}{2}$", "$\\sqrt{2}$", "$\\frac{p}{q}$",
                "$e^{i\\pi}+1=0$", "$\\theta_t$"):
        assert tex in p.text, tex
    assert "GLYPHS" not in p.text and "RENDERED" not in p.text
    assert p.formulas == p.formulas_kept == 7
    assert p.domain == "example.org"


def test_text_delimiters_are_kept_but_currency_and_code_are_not_math():
    body = ("<p>Euler: \\(e^{i\\pi}=-1\\) and $$\\sum_n 1/n^2 = \\pi^2/6$$ and $x_1$.</p>"
            "<p>It costs $5 and $10 in total, which is cheap for a good book on the matter.</p>"
            "<pre><code>echo $HOME $PATH</code></pre>")
    p = extract_page(page(body))
    assert "$e^{i\\pi}=-1$" in p.text and "$$\\sum_n 1/n^2 = \\pi^2/6$$" in p.text and "$x_1$" in p.text
    assert "$5 and $10" in p.text
    assert "echo $HOME $PATH" in p.text
    assert p.formulas == 3


def test_tables_and_code_blocks_survive_as_markdown():
    body = ("<table><tr><th>n</th><th>square</th></tr><tr><td>3</td><td>9</td></tr></table>"
            "<pre><code>def f(x):\n    return x * x</code></pre>")
    p = extract_page(page(body))
    assert "| n | square |" in p.text.replace("  ", " ")
    assert "def f(x):\n    return x * x" in p.text


def test_markdown_escapes_are_undone_so_brackets_do_not_read_as_display_math():
    p = extract_page(page("<p>See reference [12] and the snake_case name &lt;tag&gt; in this sentence.</p>"))
    assert "[12]" in p.text and "\\[" not in p.text and "snake_case" in p.text and "<tag>" in p.text


def test_hidden_formula_caches_are_not_content_and_qa_answers_keep_their_math():
    hidden = '<div style="display: none"><d-math>\\cache</d-math></div>'
    p = extract_page(page("<p>Visible \\(v\\) here.</p>" + hidden))
    assert p.formulas == 1 and "cache" not in p.text
    qa = (
        '<html itemscope itemtype="https://schema.org/QAPage"><head><title>Q</title></head><body>'
        '<div itemprop="mainEntity" itemscope itemtype="https://schema.org/Question"><h1>Why?</h1>'
        f'<div itemprop="text"><p>{PROSE} Is \\(x^2\\ge 0\\)?</p></div></div>'
        + "".join(f'<div itemscope itemtype="https://schema.org/Answer"><div itemprop="text"><p>Answer {i}: '
                  f'{PROSE} since \\(x_{i}^2 = x_{i} x_{i}\\) and \\(y_{i}\\ge 0\\).</p></div></div>'
                  for i in range(3))
        + "</body></html>"
    )
    p = extract_page(qa)
    assert p.formulas == 7 and p.formulas_kept == 7, p.text
    assert "$x_2^2 = x_2 x_2$" in p.text


MARKUP_PAGES = [
    '<p>A <SCRIPT TYPE="Math/TeX">a^2</SCRIPT> and <span class="katex">'
    '<annotation encoding="application/x-tex">k</annotation></span>.</p>',
    '<p><math><mi>m</mi></math> and <img class="LaTeX" alt="\\alpha"> and <img src="/cgi-bin/mimetex.cgi?b_1"> and '
    '<img class="equation" alt="e=1"> and <img src="https://chart.apis.google.com/chart?cht=tx&chl=c^2"></p>',
    '<div class="MathJax_Display">GLYPHS</div><script type="math/tex; mode=display">d</script><d-math>\\theta</d-math>'
    '<div style="display:none"><dt-math>\\cache</dt-math></div>',
    "<p>Character references: &#36;x^2&#36; and &#92;(y&#92;) and &#x24;&#x24;z&#x24;&#x24;; [TEX]t[/TEX].</p>",
    '<script src="https://cdn.example.org/ASCIIMathML.js"></script><p>AsciiMath `a/b` and $c_1$ and \\[D\\].</p>',
    '<script src="https://cdn.example.org/MathJax.js?config=TeX-MML-AM_CHTML"></script><p>`sqrt x` and $y$.</p>',
    "<p>No math at all: just prose, $5 prices and a [1] reference.</p>",
]


@pytest.mark.parametrize("body", MARKUP_PAGES)
def test_marker_scan_skips_only_passes_that_would_find_nothing(body):
    html = page(body)
    full, scanned = take_formulas(parse_html(html)), take_formulas(parse_html(html), html.encode())
    assert full.formulas or "No math" in body
    assert [(f.tex, f.kind) for f in scanned.formulas] == [(f.tex, f.kind) for f in full.formulas]


def test_marker_scan_of_a_page_without_math_markup_runs_no_tree_pass():
    m = scan_markers(page("<p>Prices go from $5 to $10, see [1].</p>").encode())
    assert not (m.classed or m.tags or m.hidden or m.engine) and m.text == "$"
    assert scan_markers(b"<p>&#36;x&#36; &#x5C;(y&#x5c;)</p>").text == "$\\"


def test_formulas_in_captions_answer_boxes_and_loose_div_text_survive():
    long = "".join(f"<p>{PROSE} Paragraph {i}.</p>" for i in range(12))  # long enough that extractors skip div text
    body = (f"{long}<div class=\"math\">\\[E = mc^2\\]</div>{long}"
            "<figure><img src=\"f.png\"><figcaption>The loss \\(L(\\theta)\\) over time.</figcaption></figure>"
            "<div><figcaption>Caption with <d-math>\\lambda_1</d-math> in it.</figcaption></div>"
            "<div class=\"answer\">Typing \\(2 \\times 7\\) gives <b>the same</b> output.<p></p>"
            f"Or \\(2 \\cdot 7\\).</div>{long}")
    p = extract_page(page(body))
    for tex in ("$$E = mc^2$$", "$L(\\theta)$", "$\\lambda_1$", "$2 \\times 7$", "$2 \\cdot 7$"):
        assert tex in p.text, tex
    assert "Typing $2 \\times 7$ gives" in " ".join(p.text.split()).replace("**", "")
    assert p.formulas == p.formulas_kept == 5


def test_asciimath_page_comes_out_as_latex_and_unconvertible_formulas_stay_asciimath(monkeypatch):
    head = '<script src="https://cdn.example.org/MathJax.js?config=AM_CHTML"></script>'
    body = ("<p>The sum `sum_(i=1)^n i = (n(n+1))/2` holds for every n,\\ \\ ` \\ \\ ` and `x_(i+1)` too.</p>"
            '<div><script type="math/asciimath; mode=display">int_0^1 x^2 dx = 1/3</script></div>'
            '<p>Inline script <script type="math/asciimath">[(a,b),(c,d)]</script> is a matrix, `y =\n2 \\ `so.</p>')
    p = extract_page(page(body, head))
    text = " ".join(p.text.split())
    for tex in (r"$\sum_{i=1}^n i = \frac{n(n+1)}{2}$", "$x_{i+1}$", r"$$\int_0^1 x^2 dx = \frac{1}{3}$$",
                r"$\begin{bmatrix} a & b \\ c & d \end{bmatrix}$", "$y = 2$ so"):  # wrapped line, edge spacing
        assert tex in text, tex
    assert "`" not in p.text and p.formula_kinds == {"asciimath": 5} and p.formulas == p.formulas_kept == 5

    def fail(_: str) -> str:
        raise RuntimeError("converter bug")

    monkeypatch.setattr("corpus.extract.math.asciimath_to_latex", fail)
    p = extract_page(page(body, head))
    assert "`sum_(i=1)^n i = (n(n+1))/2`" in p.text and "$" not in p.text
    assert p.formula_kinds == {"asciimath-raw": 6} and p.formulas_kept == 6  # the spacing one is kept too


def test_canonical_link_gives_url_and_domain():
    p = extract_page(page("", head='<link rel="canonical" href="https://math.example.com/q/1">'))
    assert p.url == "https://math.example.com/q/1" and p.domain == "math.example.com"


@pytest.mark.parametrize("xml,tex", [
    ("<math><msup><mi>x</mi><mn>2</mn></msup></math>", "x^2"),
    ("<math><msubsup><mi>a</mi><mi>i</mi><mn>2</mn></msubsup></math>", "a_i^2"),
    ("<math><mroot><mi>x</mi><mn>3</mn></mroot></math>", "\\sqrt[3]{x}"),
    ("<math><mover><mi>v</mi><mo>\u2192</mo></mover></math>", "\\vec{v}"),
    ("<math><mrow><mi>\u03b1</mi><mo>\u2264</mo><mi>\u03b2</mi></mrow></math>", "\\alpha \\leq \\beta"),
    ("<math><mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>0</mn></mtd></mtr></mtable></math>",
     "\\begin{matrix}1 & 0\\end{matrix}"),
])
def test_mathml_to_latex(xml, tex):
    assert mathml_to_latex(xml).replace(" ", "") == tex.replace(" ", "")


# ---- bad web input -----------------------------------------------------------------------------------------


def test_bad_pages_are_rejected_with_a_reason(tmp_path):
    cases = {
        "empty.html": b"",
        "binary.html": bytes(range(256)) * 40,
        "huge.html": b"<html><body><p>" + b"x " * 11_000_000 + b"</p></body></html>",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    reasons = {}
    for name in cases:
        out = list(read_html_file(str(tmp_path / name), ctx(relpath=name, max_page_bytes=20_000_000)))
        assert len(out) == 1 and isinstance(out[0], Reject), name
        reasons[name] = out[0].error
    assert "empty" in reasons["empty.html"]
    assert "binary" in reasons["binary.html"]
    assert "too large" in reasons["huge.html"]


def test_truncated_html_and_other_encodings_are_extracted(tmp_path):
    truncated = page("<p>Cut here: \\(x^2\\) and more words follow in this sentence")[:-60]
    (tmp_path / "cut.html").write_text(truncated)
    rows = list(read_html_file(str(tmp_path / "cut.html"), ctx(relpath="cut.html")))
    assert not isinstance(rows[0], Reject) and "$x^2$" in rows[0]["text"]
    cyr = page("<p>Теорема Пифагора: квадрат гипотенузы равен сумме квадратов катетов, " * 3 + "</p>",
               head='<meta charset="windows-1251">')
    text, enc = decode_html(cyr.encode("cp1251"))
    assert enc == "cp1251" and "Теорема Пифагора" in text
    (tmp_path / "ru.html").write_bytes(cyr.encode("cp1251"))
    rows = list(read_html_file(str(tmp_path / "ru.html"), ctx(relpath="ru.html")))
    assert "квадрат гипотенузы" in rows[0]["text"]


def test_timeout_is_a_reject_reason_in_the_main_thread_and_in_others():
    big = page("".join(f"<p>{PROSE} \\(x_{{{i}}}\\)</p>" for i in range(3000)))
    with pytest.raises(ExtractError, match="timed out"):
        extract_page(big, timeout=0.01)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            extract_page(big, timeout=0.01)
        except BaseException as e:  # noqa: BLE001 - the test inspects what escaped
            errors.append(e)
        try:  # a page done in time leaves no deadline behind to hit the code after it
            extract_page(page("<p>quick</p>"), timeout=0.2)
            time.sleep(0.4)
            errors.append(None)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert len(errors) == 2 and isinstance(errors[0], ExtractError) and "timed out" in str(errors[0])
    assert errors[1] is None, errors[1]


def test_truncated_warc_is_counted_and_the_rest_is_read(shared_data):
    rows = list(read_warc(str(shared_data / "warc" / "resiliparse__clipped.warc.gz"), ctx(relpath="c.warc.gz")))
    assert any(isinstance(r, Reject) and ("corrupt" in r.error or "truncated" in r.error) for r in rows)
    good = [r for r in read_warc(str(shared_data / "warc" / "dolma__science-0.warc.gz"), ctx(relpath="s.warc.gz"))
            if not isinstance(r, Reject)]
    math_page = next(r for r in good if r["url"].endswith("math.html"))
    assert "$E = mc^2$" in math_page["text"] and math_page["id"].startswith("urn:uuid:")
    assert math_page["domain"] == "localhost" and math_page["crawl_date"]


# ---- books -------------------------------------------------------------------------------------------------


def test_tex_cleaning_drops_comments_and_preamble_keeps_math():
    src = ("\\documentclass{article}\n\\usepackage{amsmath} % packages\n\\begin{document}\n"
           "\\section{Intro}\nWe have $a+b$ % a comment\nand 50\\% of it.\n\\[ x^2 \\]\n\\end{document}\ntrailing")
    out = clean_tex(src)
    assert "documentclass" not in out and "comment" not in out and "trailing" not in out
    assert "$a+b$" in out and "50\\%" in out and "\\[ x^2 \\]" in out


def test_long_books_split_under_the_token_budget_at_boundaries(tmp_path):
    sections = [f"# Chapter {i}\n\n" + "\n\n".join(f"Paragraph {i}.{j}: {PROSE}" for j in range(30))
                for i in range(4)]
    (tmp_path / "book.md").write_text("\n\n".join(sections))
    rows = list(read_book(str(tmp_path / "book.md"), ctx("book", "book.md", max_tokens=800)))
    assert len(rows) > 4 and all(estimate_tokens(r["text"]) <= 800 for r in rows)
    assert [r["id"] for r in rows] == [f"in/book.md#{i}" for i in range(len(rows))]
    assert all(r["text"].startswith(("# Chapter", "Paragraph")) for r in rows)  # cut at paragraph starts
    joined = "\n\n".join(r["text"] for r in rows)
    assert all(f"Paragraph {i}.29" in joined for i in range(4))
    assert split_text("short", 800) == [("short", None)]


# ---- code --------------------------------------------------------------------------------------------------


def test_code_tree_skips_vendored_generated_and_binary_and_reads_notebooks(tmp_path):
    files = {
        "src/solve.py": "def solve(n):\n    return n * (n + 1) // 2\n",
        "proofs/Nat.lean": "theorem add_zero (n : Nat) : n + 0 = n := rfl\n",
        "node_modules/x/index.js": "module.exports = 1\n",
        "api_pb2.py": "# Generated by the protocol buffer compiler.  DO NOT EDIT!\nx = 1\n",
        "gen.py": "# This file is automatically generated. Do not edit.\nx = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "blob.c").write_bytes(b"\x00\x01\x02binary")
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Title\n", "Some $x$ math"]},
                    {"cell_type": "code", "source": "print(1)", "outputs": [{"text": "OUTPUT-1"}]}],
          "metadata": {"kernelspec": {"language": "python"}}}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    results = {}
    for rel in [*files, "blob.c", "nb.ipynb"]:
        out = list(read_code_file(str(tmp_path / rel), ctx("code", rel)))
        results[rel] = out[0]
    assert results["src/solve.py"]["language"] == "python" and results["src/solve.py"]["path"] == "src/solve.py"
    assert results["proofs/Nat.lean"]["language"] == "lean"
    for rel in ("node_modules/x/index.js", "api_pb2.py", "gen.py", "blob.c"):
        assert isinstance(results[rel], Reject), rel
    assert "vendored" in results["node_modules/x/index.js"].error
    nb_text = results["nb.ipynb"]["text"]
    assert "```python\nprint(1)\n```" in nb_text and "Some $x$ math" in nb_text and "OUTPUT-1" not in nb_text


# ---- the stage end to end ----------------------------------------------------------------------------------


def test_extract_stage_end_to_end(tmp_path, shared_data):
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    web = tmp_path / "web"
    web.mkdir()
    (web / "a.html").write_text(page("<p>Formula \\(a^2\\)</p>", head='<link rel="canonical" href="https://x.org/a">'))
    (web / "empty.html").write_bytes(b"")
    shutil.copy(shared_data / "warc" / "dolma__science-0.warc.gz", web)
    shutil.copy(shared_data / "warc" / "resiliparse__clipped.warc.gz", web)
    with gzip.open(web / "pages.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"id": "rec-1", "html": page("<p>$$x=1$$</p>"), "url": "https://y.org/r"}) + "\n")
    (tmp_path / "book.tex").write_text("\\begin{document}\n\\section{A}\n" + PROSE + " $e^x$\n\\end{document}")
    code = tmp_path / "code"
    (code / "vendor").mkdir(parents=True)
    (code / "m.py").write_text("x = 1\n")
    (code / "vendor" / "v.py").write_text("y = 2\n")
    (tmp_path / "m.yaml").write_text(f"""
name: t
output: {tmp_path}/run
executor: {{kind: local, tasks: 2}}
inputs:
  - {{name: web, source: web, paths: [web/*.html, web/*.warc.gz]}}
  - {{name: recs, source: web, paths: [web/pages.jsonl.gz], format: html-records, options: {{html_column: html}}}}
  - {{name: books, source: book, paths: [book.tex]}}
  - {{name: code, source: code, paths: [code]}}
stages:
  - stage: extract
    timeout: 10
    max_tokens: 1000
""")
    result = run_manifest(load_manifest(tmp_path / "m.yaml"), executor="local", progress=lambda s: None)
    rows = read_shards(result.corpus_dir).to_pylist()
    by_id = {r["id"]: r for r in rows}
    assert by_id["web/a.html"]["url"] == "https://x.org/a" and "$a^2$" in by_id["web/a.html"]["text"]
    assert by_id["rec-1"]["domain"] == "y.org" and "$$x=1$$" in by_id["rec-1"]["text"]
    assert by_id["books/book.tex#0"]["source"] == "book" and "$e^x$" in by_id["books/book.tex#0"]["text"]
    assert json.loads(by_id["code/m.py"]["metadata"])["language"] == "python"
    assert "code/vendor/v.py" not in by_id
    assert any(r["source"] == "web" and (r["url"] or "").endswith("math.html") for r in rows)
    stage = result.stages[0]
    assert stage["rejects"] == 2  # empty page, clipped archive (the vendored file is a skip, counted apart)
    stats = json.loads((tmp_path / "run/stages/00_extract/logs/extract/stats.json").read_text())
    counters = {k for s in stats for k in s["stats"]}
    assert "rejected_empty" in counters and {"rejected_corrupt_archive", "rejected_truncated"} & counters
    assert "skipped_vendored" in counters and "rejected_skipped_vendored" not in counters


def test_cli_extract_books(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    (tmp_path / "notes.txt").write_text("Chapter 1\n\n" + PROSE)
    res = CliRunner().invoke(app, ["extract", str(tmp_path / "notes.txt"), "--source", "book",
                                   "--output", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    rows = read_shards(str(tmp_path / "out" / "corpus")).to_pylist()
    assert len(rows) == 1 and rows[0]["source"] == "book" and rows[0]["id"] == "book/notes.txt#0"


def test_latex_image_query_with_an_equals_sign_is_the_tex():
    """mimetex/codecogs put the TeX in the query, '=' included; a query of named parameters is not TeX."""
    html = page('<p>Let <img src="/cgi-bin/mimetex.cgi?f(z)=\\exp(z)-1"> and '
                '<img src="https://latex.codecogs.com/gif.latex?x%3D5"> and '
                '<img src="https://s0.wp.com/latex.php?latex=a%5E2&bg=ffffff"></p>')
    texs = [f.tex for f in take_formulas(parse_html(html)).formulas]
    assert texs == ["f(z)=\\exp(z)-1", "x=5", "a^2"]

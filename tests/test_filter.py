"""Math-aware quality heuristics, tiers, and the langid/filter stages end to end (real Parquet, local executor)."""

from __future__ import annotations

import json

import pytest

from corpus.filters.heuristics import HeuristicsConfig, RatioConfig, check_text
from corpus.filters.tiers import TierConfig, quality_tier

PROSE = ("We prove that the sum of the first n odd numbers is a perfect square. The proof is by induction on n, "
         "and it uses only the definition of a square and the distributive law. ")
LATEX = r"""\begin{theorem}\label{thm:odd} For every $n \ge 1$ we have $\sum_{k=1}^{n} (2k-1) = n^2$. \end{theorem}
\begin{proof} For $n=1$ both sides equal $1$. Assume $\sum_{k=1}^{n}(2k-1)=n^2$; then
\[ \sum_{k=1}^{n+1} (2k-1) = n^2 + 2n + 1 = (n+1)^2 . \]
Hence the claim holds for all $n$ by induction, and $\{x \in \mathbb{N} : x = m^2\}$ contains every such sum.
\end{proof}
\begin{align} f(x) &= \frac{x^2+1}{x-1} \\ g(x) &= \int_0^x f(t)\,dt \\ h(x) &= \lim_{y\to x} g(y) \end{align}
"""


def test_formula_heavy_latex_is_kept():
    doc = PROSE + LATEX + LATEX.replace("n", "m").replace("x", "y")
    verdict = check_text(doc)
    assert verdict.keep, verdict


def test_repeated_lines_are_removed():
    spam = "\n".join(["Buy the best cheap watches online today with free shipping and returns."] * 8 + [PROSE])
    verdict = check_text(spam)
    assert not verdict.keep and verdict.reason.startswith("repetition.")
    assert verdict.value > verdict.threshold


def test_ngram_spam_in_one_paragraph_is_removed():
    text = PROSE + " ".join(["cheap loans fast approval no credit check apply now"] * 30)
    assert check_text(text).reason.startswith("repetition.")


def test_boilerplate_and_navigation_pages_are_removed():
    nav = "\n".join(["Home", "About us", "Contact", "Blog", "Shop", "News", "Careers", "Help", "FAQ", "Sitemap",
                     "Press", "Events"])
    assert check_text(nav).reason == "boilerplate.nav_lines"
    policy = "\n".join(["We use cookies to improve your experience.", "Privacy Policy", "Terms of Use",
                        "All rights reserved © 2024", "Share on Facebook", PROSE])
    assert check_text(policy).reason == "boilerplate.boilerplate_lines"
    assert check_text(PROSE + " Lorem ipsum dolor sit amet.").reason == "boilerplate.lorem_ipsum"


def test_multiple_choice_options_are_not_navigation():
    mcq = "Which number is prime?\n\nA) 21\nB) 27\nC) 29\nD) 33\n\nThe answer is C, since 29 has no divisors."
    assert check_text(mcq).keep


def test_junk_characters_and_short_fragments():
    assert check_text(PROSE + "\ufffd" * 40).reason == "ratios.junk_chars"
    assert check_text("Page not found").reason == "length.too_short"
    assert check_text("» » » | • • • *** --- »» •• »»» ** ** ** » » »", HeuristicsConfig(length=None)).reason == \
        "ratios.content_words"


def test_math_ellipses_are_not_gopher_ellipses():
    text = "Let $a_1, ..., a_n$ be reals. " + "We have 1, 2, 3, ..., n and x_1 + ... + x_n = s. " * 10 + PROSE
    assert check_text(text, HeuristicsConfig(repetition=None)).keep
    assert check_text("Well... " * 30 + PROSE, HeuristicsConfig(repetition=None)).reason == "ratios.ellipsis_per_word"


def test_stop_word_rule_is_language_aware():
    words = " ".join(f"tokenword{i % 40}" for i in range(120))
    assert check_text(words).reason == "ratios.stop_words"
    assert check_text(words, lang="fr").reason != "ratios.stop_words"
    off = HeuristicsConfig(ratios=RatioConfig(min_stop_words=None))
    assert check_text(words, off).reason != "ratios.stop_words"


def test_real_math_documents_are_kept(shared_data):
    docs = []
    for name in ("math_text", "math_text_zh"):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            docs += [json.loads(line)["text"] for _, line in zip(range(120), fh, strict=False)]
    with open(shared_data / "evalsets/math/test.jsonl", encoding="utf-8") as fh:
        docs += [(r := json.loads(line))["problem"] + "\n\n" + r["solution"] for _, line in zip(range(200), fh,
                                                                                              strict=False)]
    removed = [check_text(d).reason for d in docs if not check_text(d).keep]
    assert len(removed) <= 0.03 * len(docs), removed


def test_tiers_rank_math_above_prose():
    story = ("It was a bright cold day in April, and the clocks were striking thirteen. Winston walked home "
             "slowly through the glass doors, though not quickly enough to prevent a swirl of gritty dust. ") * 6
    math_doc = PROSE + LATEX
    assert quality_tier(math_doc) > quality_tier(story)
    assert quality_tier(story, math_score=0.99) > quality_tier(story, math_score=0.01)
    assert 0 <= quality_tier("", math_score=0.0) <= 5
    with pytest.raises(ValueError):
        TierConfig(thresholds=[0.5, 0.4, 0.6, 0.7, 0.8])


def _manifest(tmp_path, stages: str) -> str:
    rows = [{"id": "math", "text": PROSE + LATEX},
            {"id": "zh", "text": "设函数 $f(x)=x^2$ 在区间 $[0,1]$ 上连续。我们证明它在该区间上的积分等于三分之一，"
                                 "并且利用牛顿—莱布尼茨公式计算 $\\int_0^1 x^2 dx = 1/3$。这个结果是基本的。"},
            {"id": "fr", "text": "Le théorème de Pythagore met en relation les longueurs des côtés d'un triangle "
                                 "rectangle, et il s'énonce souvent sous une forme simple."},
            {"id": "spam", "text": "\n".join(["Cheap watches, best prices online, order today now!"] * 10)},
            {"id": "story", "text": "The old man sat by the sea and told the children about the storms of his "
                                    "youth, and the children listened, and the evening came slowly over them."}]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    path = tmp_path / "m.yaml"
    path.write_text(f"""name: t
output: {tmp_path}/run
executor: {{kind: local, tasks: 1}}
inputs: [{{name: x, source: web, paths: [in.jsonl]}}]
stages:
  - stage: extract
{stages}""", encoding="utf-8")
    return str(path)


def test_langid_and_filter_stages(tmp_path):
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest
    from pipelines.steps.io import read_shards

    manifest = load_manifest(_manifest(tmp_path, "  - stage: langid\n  - stage: filter\n    min_tier: 2\n"))
    run_manifest(manifest, progress=lambda *_: None)
    langs = {r["id"]: r["lang"] for r in read_shards(f"{tmp_path}/run/stages/01_langid/kept").to_pylist()}
    assert langs == {"math": "en", "zh": "zh", "fr": "fr", "spam": "en", "story": "en"}
    kept = {r["id"]: r for r in read_shards(f"{tmp_path}/run/stages/02_filter/kept").to_pylist()}
    removed = {r["id"]: r for r in read_shards(f"{tmp_path}/run/stages/02_filter/removed").to_pylist()}
    assert set(kept) == {"math", "zh"}
    assert all(r["quality_tier"] >= 2 for r in kept.values())
    assert removed["fr"]["reason"] == "lang.not_selected"
    assert removed["spam"]["reason"].split(".")[0] in ("repetition", "ratios")
    assert removed["story"]["reason"] in ("tier.below_min", "length.too_short")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    summary = run["stages"][2]["summary"]
    assert summary["removed_by_reason"]["lang.not_selected"] == 1
    assert sum(summary["quality_tiers"].values()) == 2


def test_filter_settings_are_validated(tmp_path):
    from pipelines.manifest import ManifestError, load_manifest

    with pytest.raises(ManifestError, match=r"stages\[1\]\.ratios\.max_junk_frac"):
        load_manifest(_manifest(tmp_path, "  - stage: filter\n    ratios: {max_junk_frac: 0.1}\n"))
    m = load_manifest(_manifest(tmp_path, "  - stage: filter\n    repetition: null\n    languages: [zh]\n"))
    assert m.stages[1].settings.repetition is None and m.stages[1].settings.heuristics().repetition is None


def test_strip_lines_cleans_whole_page_text():
    from corpus.filters.heuristics import BoilerplateConfig, strip_boilerplate_lines

    page = "\n".join(["Home", "Forums", "Log in", "Privacy Policy", PROSE, LATEX, "Share on Twitter", "Back to top"])
    cleaned, n = strip_boilerplate_lines(page, BoilerplateConfig(strip_lines=True))
    assert n == 6 and "Privacy" not in cleaned and r"\sum_{k=1}" in cleaned
    assert check_text(cleaned).keep


def test_cli_filter(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main
    from pipelines.steps.io import read_shards

    _manifest(tmp_path, "")  # writes in.jsonl
    monkeypatch.setattr("sys.argv", ["mathcorpus", "filter", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o"),
                                     "--languages", "en"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    report = json.loads((tmp_path / "o" / "filter_report.json").read_text())
    assert report["removed_by_reason"]["lang.not_selected"] == 2  # zh and fr
    assert {r["id"] for r in read_shards(str(tmp_path / "o" / "kept")).to_pylist()} >= {"math"}
    monkeypatch.setattr("sys.argv", ["mathcorpus", "filter", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "p"),
                                     "--lid-model", str(tmp_path / "missing.bin")])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "missing.bin" in capsys.readouterr().err


def test_tier_model_from_the_classifiers_api(tmp_path, shared_data):
    """A second fastText model, trained with the classifiers API (positive class = high quality), drives the
    quality part of the tier."""
    from classifiers.data import MATH, OTHER, Example
    from classifiers.model import TrainParams, train_model
    from corpus.schema import row_to_document
    from pipelines.stages.filter import FilterSettings, build_step
    from pipelines.steps.io import read_shards

    train = []
    for name, label in (("math_text", MATH), ("general_text", OTHER)):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            train += [Example((r := json.loads(line))["text"][:3000], label, r["id"])
                      for _, line in zip(range(40), fh, strict=False)]
    params = TrainParams(dim=16, epoch=10, min_count=1, bucket=20_000, threads=1)
    train_model(str(tmp_path / "quality"), train, [], params)

    story = "The old captain told the children about the storms of his youth, and they listened until dark. " * 4
    docs = [row_to_document({"id": "m", "text": PROSE + LATEX, "math_score": 0.5}),
            row_to_document({"id": "p", "text": story, "math_score": 0.5})]
    settings = FilterSettings(tier_model_path=str(tmp_path / "quality"), repetition=None, boilerplate=None,
                              ratios=None, languages=None)
    step = build_step(settings, str(tmp_path / "removed"))
    q_math, q_story = step.tier_model.score([PROSE + LATEX, story])
    assert q_math > q_story
    tiers = {d.id: d.metadata["quality_tier"] for d in step.run(iter(docs))}
    assert tiers["m"] > tiers["p"], (q_math, q_story, tiers)
    assert read_shards(str(tmp_path / "removed")).num_rows == 0


# ---- repetition on real web pages: code blocks and listings beside formulas ---------------------------------


def _page_text(path) -> str:
    from corpus.extract.web import read_html_file
    from corpus.records import FileContext

    row = next(read_html_file(str(path), FileContext("web", "web", path.name)))
    assert isinstance(row, dict), row
    return row["text"]


def test_code_lines_are_not_prose():
    from corpus.filters.markup import is_code_line

    for line in ("1 2 3 4 5 6 7 8", "for (int i = 0; i < 4; i++) {", ">>> np.linalg.norm(x, ord=2)",
                 "x : array_like", "0x80 0x00 0x80 0x00 0x1f", "    return haystack.find(needle);", "}",
                 "| 1 2 3 4 | ``` using std::string; class Solution { public: int f(); }; ``` |"):
        assert is_code_line(line), line
    for line in ("The probability of obtaining a head is one half, as we showed above.",
                 "这是一个关于矩阵的例子，我们先看定义。", "Let f be a continuous function on [a, b] with f(a) < 0.",
                 "Theorem 2. Every bounded monotone sequence converges.", "Returns the norm of the matrix."):
        assert not is_code_line(line), line


def test_repeated_code_beside_formulas_is_not_repetition(shared_data):
    """A real Chinese algorithm post (KMP, formulas + code blocks): its code unfenced (as some extractors leave
    it) and repeated is still kept; its prose repeated is removed."""
    text = _page_text(shared_data / "web2" / "math" / "billhu0__billhu0.github.io__48_kmp.html")
    assert check_text(text, lang="zh").keep
    blocks = text.split("```")[1::2]
    assert len(blocks) >= 3
    unfenced = text.replace("```", "\n") + "\n" + "\n".join(blocks * 3)
    verdict = check_text(unfenced, lang="zh")
    assert verdict.keep, verdict
    prose = "\n\n".join(p for p in text.split("```")[0::2])
    assert not check_text(unfenced + ("\n\n" + prose) * 3, lang="zh").keep


def test_quality_filters_keep_real_web_math_pages(shared_data, tmp_path):
    """Every real math page of web + web2 (150 pages, 80 sites, English, Chinese and others): the quality
    filters remove at most 2 % of them (3 were removed before code lines were left out of repetition)."""
    from classifiers.pages import read_pages

    lists = []
    for name in ("web", "web2"):
        rows = [json.loads(x) for x in (shared_data / name / "pages.jsonl").read_text(encoding="utf-8").splitlines()]
        lines = [json.dumps({**r, "file": str(shared_data / name / r["file"])}) for r in rows if r["label"] == "math"]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        lists.append(str(tmp_path / f"{name}.jsonl"))
    rejects: list[str] = []
    pages = read_pages(lists, rejects)
    assert len(pages) + len(rejects) == 150 and not rejects
    removed = {p.file: check_text(p.text, lang=p.lang).reason for p in pages}
    removed = {k: v for k, v in removed.items() if v}
    assert len(removed) <= 0.02 * len(pages), removed

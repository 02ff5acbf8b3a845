"""decontam: eval-set registry, item extraction, the 13-gram + LCS matcher and the audit report (no Ray)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from corpus.normalize import math_tokens, source_token_spans
from decontam.config import DecontamConfig
from decontam.evalsets import EvalSetError, EvalSetSpec, load_registry, load_set, load_sets
from decontam.index import NGramIndex
from decontam.matcher import Matcher, window_bounds
from decontam.run import decontaminate_files

HOST = ("Category theory studies objects and morphisms. A functor maps objects to objects and arrows to arrows "
        "while preserving identities and composition. ") * 3


@pytest.fixture(scope="module")
def evalsets_root(shared_data) -> str:
    return str(shared_data / "evalsets")


@pytest.fixture(scope="module")
def small_sets(evalsets_root):
    return load_sets("gsm8k,math500,cmath,olympiadbench,gaokao_math_qa,college_math", evalsets_root)


@pytest.fixture(scope="module")
def index(small_sets):
    return NGramIndex.build(small_sets)


def _part(sets, evalset, item_id, part="question"):
    for s in sets:
        for p in s.parts:
            if (p.evalset, p.item_id, p.part) == (evalset, item_id, part):
                return p
    raise KeyError((evalset, item_id, part))


# ---- registry ---------------------------------------------------------------------------------------------


def test_registry_covers_every_shared_eval_file_and_profiles(evalsets_root):
    reg = load_registry()
    registered = {s.path for s in reg.sets.values() if s.root == "evalsets"}
    on_disk = {str(p.relative_to(evalsets_root)) for p in Path(evalsets_root).glob("*/*.jsonl")}
    assert on_disk == registered
    assert [s.name for s in reg.select("pretrain")] == ["gsm8k", "math"]
    post = {s.name for s in reg.select("posttrain")}
    assert {"gsm8k", "math", "minerva_math", "gaokao2023en", "olympiadbench", "college_math", "mmlu_stem", "cmath",
            "cn_middle_school", "aime24", "amc23"} <= post and {"gaokao_math_qa", "gaokao_math_cloze"} <= post
    every = {s.name for s in reg.select("all")}
    assert "gsm8k_train" not in every and "demo" not in every and post <= every and len(every) == 19
    assert [s.name for s in reg.select("pretrain,cmath")] == ["cmath", "gsm8k", "math"]
    with pytest.raises(EvalSetError, match=r"evalsets\.yaml: unknown eval set or profile 'gsm9k'"):
        reg.select("gsm9k")


def test_bad_registry_and_missing_root_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MATHCORPUS_EVALSETS_ROOT", raising=False)
    bad = tmp_path / "r.yaml"
    bad.write_text("sets:\n  x: {path: x.jsonl, question: [q], colour: red}\n")
    with pytest.raises(EvalSetError, match=r"r\.yaml: sets\.x: unknown key\(s\) colour"):
        load_registry(bad)
    spec = EvalSetSpec(name="x", path="x/test.jsonl", question=("q",))
    with pytest.raises(EvalSetError, match="--evalsets-root"):
        load_set(spec, None)
    with pytest.raises(EvalSetError, match="file not found"):
        load_set(spec, str(tmp_path))


def test_items_counts_sha256_and_nested_fields(small_sets, evalsets_root):
    by = {s.spec.name: s for s in small_sets}
    assert by["gsm8k"].items == 1319 and by["cmath"].items == 600 and by["olympiadbench"].items == 675
    raw = (Path(evalsets_root) / "gsm8k/test.jsonl").read_bytes()
    assert by["gsm8k"].sha256 == hashlib.sha256(raw).hexdigest()
    # GSM8K calculator annotations stripped from the solution
    ans = _part(small_sets, "gsm8k", "L1", "answer").text
    assert "<<" not in ans and "16 - 3 - 4 = 9 duck eggs" in ans
    # option dicts are part of the question (Gaokao multiple choice)
    rec = json.loads((Path(evalsets_root) / "gaokao_math_qa/test.jsonl").read_text().splitlines()[0])
    q = _part(small_sets, "gaokao_math_qa", "L1").text
    assert q.startswith(rec["question"]) and f"D. {rec['options']['D']}" in q
    # OlympiadBench: one part per alternative solution (list field)
    olymp = [p for p in by["olympiadbench"].parts if p.item_id == "1614"]
    assert {"question", "solution[0]", "solution[1]", "solution[2]"} <= {p.part for p in olymp}


# ---- matching ---------------------------------------------------------------------------------------------


def test_verbatim_reformatted_and_solution_only_are_found(small_sets, index):
    m = Matcher(index)
    q = _part(small_sets, "math500", "test/precalculus/807.json").text
    assert m.find(f"{HOST}\n\n{q}\n\n{HOST}")[0].item_id == "test/precalculus/807.json"
    # spacing, case, TeX delimiters, punctuation
    reformatted = q.replace("$(0,3)$", r"\( ( 0 , 3 ) \)").replace("  ", " ").upper().replace(r"\PI", r"\pi")
    found = m.find(f"{HOST}\n{reformatted}\n{HOST}")
    assert found and found[0].item_id == "test/precalculus/807.json" and found[0].lcs_ratio >= 0.9
    sol = _part(small_sets, "gsm8k", "L2", "answer").text
    best = m.find(HOST + sol + HOST)[0]
    assert (best.evalset, best.part) == ("gsm8k", "answer")


def test_chinese_full_width_item_is_found(small_sets, index):
    q = _part(small_sets, "cmath", "L1").text  # 芳芳买了一本书有99页，看了90页，...
    wide = q.replace("99", "９９").replace("90", "９０").replace("？", "?")
    found = Matcher(index).find("这是一段关于数学教育的文字。" + wide + "其他内容与题目无关。")
    assert found and found[0].evalset == "cmath" and found[0].item_id == "L1"


def test_hard_negative_shares_a_13gram_but_not_the_item(small_sets, index):
    q = _part(small_sets, "gsm8k", "L1").text
    assert len(math_tokens(q)) >= 40
    thirteen = " ".join(q.split()[:14])
    doc = f"{HOST}\n{thirteen}\n{HOST}"
    assert Matcher(index).find(doc) == []
    ngram_only = Matcher(NGramIndex.build(small_sets, DecontamConfig(lcs_ratio=0.0, min_lcs=0)))
    assert ngram_only.find(doc)[0].item_id == "L1"


def test_lcs_is_on_the_aligned_window_not_the_whole_document(small_sets, index):
    q = _part(small_sets, "gsm8k", "L1").text
    words = q.split()
    # a long page: the item's first 14 words, then (far away) all of its words scattered in order
    scattered = " ".join(f"{w} {HOST}" for w in words[14:])
    doc = " ".join(words[:14]) + " " + HOST * 5 + scattered
    assert Matcher(index).find(doc) == []
    assert window_bounds(anchor=95, n_item=40, slack=4, n_doc=100) == (52, 100)  # shifted at the end
    assert window_bounds(anchor=-3, n_item=40, slack=4, n_doc=100) == (0, 48)
    assert window_bounds(anchor=0, n_item=40, slack=4, n_doc=20) == (0, 20)  # document shorter than item


def test_short_parts_rule(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"id": "a", "q": "Simplify: $-10-4(n-5)$", "ans": "$10-4 n$"}) + "\n")
    spec = EvalSetSpec(name="s", path=str(f), question=("q",), answer=("ans",), id="id")
    idx = NGramIndex.build([load_set(spec)])
    assert idx.sets[0]["parts_short_exact"] == 1 and idx.sets[0]["parts_skipped_short"] == 1
    m = Matcher(idx)
    hit = m.find("Exercise 3. SIMPLIFY -10 - 4 ( n - 5 ). Then check your work.")
    assert hit and hit[0].rule == "short_exact" and hit[0].lcs_ratio == 1.0
    assert m.find("Simplify: $-10-4(n-6)$") == []  # one token differs: no exact match
    # a short final answer is no evidence on its own (any textbook has it) unless asked for
    f.write_text(json.dumps({"id": "b", "q": "Expand.", "ans": r"$\cos ^{2} x-\sin ^{2} x$"}) + "\n")
    text = r"so the derivative is \cos^2 x - \sin^2 x here"
    assert Matcher(NGramIndex.build([load_set(spec)])).find(text) == []
    strict = NGramIndex.build([load_set(spec)], DecontamConfig(short_exact_answers=True))
    assert strict.sets[0]["parts_short_exact"] == 1 and Matcher(strict).find(text)[0].part == "ans"


def test_source_token_spans_align_with_math_tokens():
    text = r"Let $f(x)=\left(x^2+3x\right)$. ＡＢ１２ Straße 芳芳买了９０页"
    spans = source_token_spans(text)
    assert spans is not None and len(spans) == len(math_tokens(text))
    assert [text[a:b] for a, b in spans][:6] == ["Let", "f", "(", "x", ")", "="] and text[slice(*spans[-2])] == "９０"


# ---- run + report -----------------------------------------------------------------------------------------


def _inputs(tmp_path, small_sets) -> Path:
    q = _part(small_sets, "gsm8k", "L3").text
    rows = [{"id": "clean-1", "text": HOST, "source": "web"},
            {"id": "dirty-1", "text": HOST + q + HOST, "source": "book", "url": "https://example.org/p"},
            {"id": "clean-2", "text": "x^2 + 3x = 10 " * 20, "source": "HoTT/book@578b85:basics.tex"}]
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    return p


def test_report_is_complete_and_byte_identical(tmp_path, small_sets, index):
    src = _inputs(tmp_path, small_sets)
    r1 = decontaminate_files([str(src)], small_sets, index, str(tmp_path / "a"))
    decontaminate_files([str(src)], small_sets, index, str(tmp_path / "b"))
    for name in ("report.json", "report.md", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    t = r1["totals"]
    assert (t["documents"], t["removed"], t["kept"]) == (3, 1, 2) and r1["config"]["rejects"] == 1
    assert r1["inputs"][0]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert t["by_source"]["book"] == {"documents": 1, "removed": 1}
    rem = r1["removals"][0]
    assert (rem["doc_id"], rem["evalset"], rem["item_id"], rem["url"]) == ("dirty-1", "gsm8k", "L3",
                                                                            "https://example.org/p")
    assert len(rem["matched_ngram"].split()) == 13 and rem["lcs_ratio"] == 1.0
    a, b = rem["highlights"][0]
    assert rem["snippet"][a:b].startswith(_part(small_sets, "gsm8k", "L3").text[:20])
    assert r1["items_found"] == [{"evalset": "gsm8k", "item_id": "L3", "documents": 1}]
    html = (tmp_path / "a" / "report.html").read_text()
    assert "<mark>" in html and "<link" not in html and "<script" not in html and "src=" not in html
    import pyarrow.parquet as pq

    removed = pq.read_table(next((tmp_path / "a" / "removed").glob("*.parquet")))
    assert removed.column("evalset").to_pylist() == ["gsm8k"] and removed.column("reason").to_pylist() == [
        "decontam"]
    kept = pq.read_table(next((tmp_path / "a" / "kept").glob("*.parquet")))
    assert sorted(kept.column("id").to_pylist()) == ["clean-1", "clean-2"]
    assert (tmp_path / "a" / "rejects.jsonl").read_text().count("\n") == 1


def test_columns_mode_checks_qa_records(tmp_path, small_sets, index):
    q = _part(small_sets, "cmath", "L5").text
    src = tmp_path / "sft.jsonl"
    src.write_text(json.dumps({"id": 1, "question": q, "answer": "42"}) + "\n"
                   + json.dumps({"id": 2, "question": "What is 2+2?", "answer": "4"}) + "\n")
    r = decontaminate_files([str(src)], small_sets, index, str(tmp_path / "o"), columns=["question", "answer"])
    assert r["totals"]["removed"] == 1 and r["removals"][0]["column"] == "question"
    kept = [json.loads(x) for x in next((tmp_path / "o" / "kept").glob("*.jsonl")).read_text().splitlines()]
    removed = [json.loads(x) for x in next((tmp_path / "o" / "removed").glob("*.jsonl")).read_text().splitlines()]
    assert kept == [{"id": 2, "question": "What is 2+2?", "answer": "4"}]
    assert removed[0]["decontam"]["evalset"] == "cmath" and removed[0]["question"] == q


# ---- spacing rules, short items, reworded items (issue 15) -------------------------------------------------


def test_despace_rules_and_spans_map_to_the_original_text():
    from decontam.normalize import decontam_token_spans, decontam_tokens, despace

    assert despace("苗 苗 家 里 有 5 0 个 苹 果")[0] == "苗苗家里有50个苹果"
    assert despace("H o w   m a n y   i s   $ 3 5 . 2   +   4 9 . 3 $ ?")[0] == "How many is $35.2 + 49.3$?"
    assert despace(r"then \ s q r t x and \ f r a c{1}{2}")[0] == r"then \sqrt x and \frac{1}{2}"
    assert despace("it costs 4 .20 dollars")[0] == "it costs 4.20 dollars"
    assert despace("共有 2 0 个苹果，吃了 3 个")[0] == "共有 20 个苹果，吃了 3 个"  # CJK-dominant: digits joined
    assert despace("pages 2 0 and 3")[0] == "pages 2 0 and 3"  # not in English prose
    words = {"how", "many", "apples", "does", "john", "have"}
    assert despace("h o w m a n y a p p l e s d o e s j o h n h a v e", words=words)[0] == \
        "how many apples does john have"
    assert despace("x + y = z", rules=())[0] == "x + y = z"
    text = "Intro. 苗 苗 有 5 0 个"
    spans = decontam_token_spans(text)
    assert [text[a:b] for a, b in spans] == ["Intro", "苗", "苗", "有", "5 0", "个"]
    assert decontam_tokens(text) == ["intro", "苗", "苗", "有", "50", "个"]


def test_numbers_read_digits_words_and_chinese_numerals():
    from decontam.numbers import numbers

    vals = [v for v, _ in numbers("16 eggs, three for breakfast, twenty-four, a dozen, half, twice, 1,200, 3/4, "
                                  r"\frac{1}{2}, three hundred and five, 50%")]
    assert vals == ["16", "3", "24", "12", "0.5", "2", "1200", "0.75", "0.5", "305", "50"]
    zh = numbers("九十页，两个，二十五，一半，三百零五，二零二四")
    assert [v for v, _ in zh] == ["90", "2", "25", "0.5", "305", "2024"]


def test_spaced_out_items_are_found_and_each_rule_matters(small_sets, index):
    from decontam.normalize import decontam_tokens

    m = Matcher(index)
    q = _part(small_sets, "cmath", "L2").text  # 小勇拍皮球，第一次拍了77下 ...
    found = m.find("这是一段关于数学教育的文字。\n" + " ".join(q) + "\n其他内容与题目无关。")
    assert found and (found[0].evalset, found[0].item_id) == ("cmath", "L2")
    en = _part(small_sets, "gsm8k", "L3").text
    assert m.find(f"{HOST}\n{' '.join(en)}\n{HOST}")[0].item_id == "L3"  # word gaps kept (3 blanks)
    no_gaps = " ".join(ch for ch in en if not ch.isspace())
    assert m.find(f"{HOST}\n{no_gaps}\n{HOST}")[0].item_id == "L3"  # words recovered from the eval vocabulary
    tex = _part(small_sets, "math500", "test/precalculus/807.json").text
    split = re.sub(r"\\([a-zA-Z]{2,})", lambda x: "\\ " + " ".join(x.group(1)), tex)
    assert split != tex and m.find(f"{HOST}\n{split}\n{HOST}")[0].item_id == "test/precalculus/807.json"
    off = Matcher(NGramIndex.build(small_sets, DecontamConfig(normalize=(), reworded=False)))
    assert off.find(f"{HOST}\n{no_gaps}\n{HOST}") == []
    digits_apart = q.replace("77", "7 7")  # the only spaced run: the CJK rule joins it
    assert m.find(digits_apart)[0].item_id == "L2"
    assert "77" in decontam_tokens(digits_apart) and "77" not in decontam_tokens(digits_apart, ("spaced", "tex"))


def test_short_items_with_solution_alone_on_a_line_and_not_inside_prose(small_sets, index):
    m = Matcher(index)
    uid = "test/prealgebra/572.json"  # Write $\frac{3}{20}$ as a decimal.
    q, sol = _part(small_sets, "math500", uid).text, _part(small_sets, "math500", uid, "solution").text
    assert len(math_tokens(q)) < 8
    with_solution = m.find(f"{HOST}\n\n{q} {sol}\n\n{HOST}")
    assert with_solution and with_solution[0].item_id == uid
    line = m.find(f"{HOST}\n3. {q}\n{HOST}")
    assert line and (line[0].item_id, line[0].rule) == (uid, "short_line")
    assert m.find(f"{HOST} In class we were asked to {q} {HOST}") == []  # inside prose, without its answer
    pair = m.find(f"{HOST} Exercise: {q} Answer: $0.15$. {HOST}")
    assert pair and (pair[0].item_id, pair[0].rule) == (uid, "qa_pair")
    assert m.find(f"{HOST} Exercise: {q} Answer: $0.25$. {HOST}") == []  # another answer
    strict = Matcher(NGramIndex.build(small_sets, DecontamConfig(qa_pairs=False, min_line_tokens=8)))
    assert strict.find(f"{HOST}\n3. {q}\n{HOST}") == []


def test_reworded_item_is_found_with_its_evidence_and_the_tier_can_be_turned_off(small_sets, index, evalsets_root):
    # GSM8K test L1, reworded by hand: synonyms, clause order, voice, number words <-> digits
    reworded = ("Janet's ducks lay sixteen eggs every day. She bakes muffins for her pals daily with 4, and each "
                "morning 3 are eaten for breakfast. The remainder is sold at the farmers' market for $2 per fresh "
                "duck egg. In dollars, what does she make at the market each day?")
    m = Matcher(index)
    found = m.find(f"{HOST}\n{reworded}\n{HOST}")
    assert found and (found[0].evalset, found[0].item_id, found[0].rule) == ("gsm8k", "L1", "reworded")
    assert set(found[0].numbers) == {"16", "3", "4", "2"} and found[0].lcs_ratio >= index.config.reword_similarity
    ev = m.evidence(f"{HOST}\n{reworded}\n{HOST}", found)
    assert ev["numbers_matched"] and "Janet" in ev["item_text"] and "sixteen" in ev["snippet"]
    a, b = ev["highlights"][0]
    assert ev["snippet"][a:b] in {"sixteen", "3", "4", "$2"}
    off = Matcher(NGramIndex.build(small_sets, DecontamConfig(reworded=False)))
    assert off.find(f"{HOST}\n{reworded}\n{HOST}") == []
    # distinct problems of the same style (GSM8K train, with their solutions) are not removed by this tier (the
    # 13-gram + LCS rule does remove one: "Bella bought stamps ..." is test L633's template with other numbers)
    train = [json.loads(x) for x in (Path(evalsets_root) / "gsm8k/train.jsonl").read_text().splitlines()[:150]]
    hits = {r["question"][:20]: m.find(r["question"] + "\n" + r["answer"]) for r in train}
    assert {k: v[0].rule for k, v in hits.items() if v} == {"Bella bought stamps ": "ngram_lcs"}


def test_report_lists_rules_shares_and_near_misses(tmp_path, small_sets, index):
    q = _part(small_sets, "gsm8k", "L1").text
    near_doc = f"{HOST}\n{' '.join(q.split()[:16])}\n{HOST}"  # a 13-gram hit the LCS rule rejects
    rows = [{"id": "near", "text": near_doc}, {"id": "clean", "text": HOST},
            {"id": "short", "text": f"{HOST}\n{_part(small_sets, 'math500', 'test/prealgebra/572.json').text}\n"}]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = decontaminate_files([str(src)], small_sets, index, str(tmp_path / "o"))
    assert r["totals"]["removed"] == 1 and r["totals"]["by_rule"] == {"short_line": 1}
    share = r["totals"]["by_evalset"]["math500"]
    assert share["items_found"] == 1 and share["share_found"] == round(1 / share["items"], 6)
    assert [(x["doc_id"], x["tier"], x["item_id"]) for x in r["near_misses"]][:1] == [("near", "ngram_lcs", "L1")]
    assert 0 < r["near_misses"][0]["score"] < 0.6
    md = (tmp_path / "o" / "report.md").read_text()
    assert "## Near misses" in md and "short_line" in md and "eval item: Write" in md


def test_report_stays_readable_with_many_removals():
    from decontam.report import SHOWN, build_report, render_html, render_markdown

    removals = [{"doc_id": f"d{k:06d}", "source": "web", "url": None, "input": "x", "evalset": "gsm8k",
                 "item_id": f"L{k % 50}", "part": "question", "rule": "ngram_lcs", "matched_ngram": "a b",
                 "lcs": 20, "lcs_ratio": 0.6 + (k % 40) / 100, "item_tokens": 20, "window_tokens": 22,
                 "snippet": "text", "highlights": [[0, 2]], "item_text": "item",
                 "matches": [{"evalset": "gsm8k", "item_id": f"L{k % 50}"}]}
                for k in range(SHOWN * 5)]
    report = build_report(config=DecontamConfig(), evalsets=[{"name": "gsm8k", "items": 1319, "path": "p",
                                                               "sha256": "0"}],
                          inputs=[], documents_by_source={"web": SHOWN * 10}, removals=removals)
    assert len(report["removals"]) == SHOWN * 5 and report["totals"]["by_evalset"]["gsm8k"]["items_found"] == 50
    md = render_markdown(report)
    assert md.count("\n### d") == SHOWN and f"{SHOWN * 5} removals; the first {SHOWN} shown" in md
    assert md.index("## Eval sets") < md.index("## Removals")  # summary first
    first = md.index("### d")
    assert "ratio 0.6 " in md[first : first + 600]  # weakest evidence first
    assert render_html(report).count("<div class=snip>text</div>") <= SHOWN

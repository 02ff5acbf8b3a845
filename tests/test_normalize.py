"""Math-safe normalization: numbers, operators, grouping and TeX commands are content."""

from corpus.normalize import fold, math_tokens, ngrams, normalize_text


def test_numbers_and_operators_are_content():
    assert normalize_text("x^2+3x=10") != normalize_text("x^2-5x=24")
    assert normalize_text("Solve 12 + 7") != normalize_text("Solve 12 + 8")
    assert normalize_text(r"88 \div (4 \div 2)") != normalize_text(r"88 \div 4 \div 2")
    assert normalize_text("[0, 1]") != normalize_text("(0, 1)")


def test_spacing_case_and_tex_delimiters_do_not_matter():
    assert math_tokens("x^2+3x") == math_tokens("x ^ 2 + 3 x") == ["x", "^", "2", "+", "3", "x"]
    assert normalize_text(r"Find $\frac{1}{2}x$, please.") == normalize_text(r"FIND \( \frac{1} {2} x \) please")
    assert normalize_text(r"\left( a+b \right)") == normalize_text("(a + b)")
    assert math_tokens("3.14 and 1,000") == ["3.14", "and", "1", "000"]


def test_full_width_and_cjk():
    assert fold("ＡＢＣ１２３") == "abc123"
    assert math_tokens("小明有５个苹果，吃了2个。") == ["小", "明", "有", "5", "个", "苹", "果", "吃", "了", "2", "个"]


def test_ngrams():
    assert list(ngrams(["a", "b", "c"], 2)) == [("a", "b"), ("b", "c")]
    assert list(ngrams(["a"], 2)) == []

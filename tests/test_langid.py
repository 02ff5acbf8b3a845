"""Offline language ID: math-aware preparation, en/zh mixing, backends, accuracy on real text."""

from __future__ import annotations

import json
import pickle

import pytest

from corpus.langid import LangIdError, LanguageIdentifier, prose_counts


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_english_and_chinese(lid):
    text = "Let $f$ be a continuous function on a closed interval. Then f attains its maximum."
    assert lid.identify(text).lang == "en"
    res = lid.identify("设函数 $f(x)$ 在闭区间 $[a,b]$ 上连续，则 $f$ 在该区间上有最大值。")
    assert res.lang == "zh" and 0 < res.score <= 1


def test_formulas_do_not_count_as_language(lid):
    counts = prose_counts(r"$$\int_0^1 x^2\,dx = \frac{1}{3}$$ \begin{align} a &= b \\ c &= d \end{align}")
    assert counts.latin_words == 0 and counts.han == 0
    assert lid.identify(r"$$\sum_{k=1}^{n} k = \frac{n(n+1)}{2}$$").lang == "und"


def test_mixed_chinese_with_english_terms_is_zh(lid):
    text = "我们用 Gaussian elimination 求解线性方程组 $Ax=b$，其中矩阵 $A$ 可逆，复杂度为 $O(n^3)$。"
    assert lid.identify(text).lang == "zh"
    # English prose quoting one Chinese term stays English.
    assert lid.identify("The Chinese remainder theorem (中国剩余定理) solves systems of congruences "
                        "with pairwise coprime moduli, as in the classic problem of Sunzi.").lang == "en"


def test_japanese_is_not_forced_to_zh(lid):
    assert lid.identify("関数 $f$ は区間で連続であるとき、最大値を持つことを示しなさい。これは定理です。").lang == "ja"


def test_picklable_without_model(lid):
    lid.identify("warm up the model")
    clone = pickle.loads(pickle.dumps(lid))
    assert clone._model is None and clone.identify("This is an English sentence about primes.").lang == "en"


def test_fasttext_backend_missing_model_names_path(tmp_path):
    missing = tmp_path / "lid.176.bin"
    with pytest.raises(LangIdError, match=str(missing)):
        LanguageIdentifier("fasttext", str(missing)).identify("hello world")
    with pytest.raises(LangIdError, match="model_path"):
        LanguageIdentifier("fasttext")


def test_fasttext_backend_with_a_real_model(tmp_path, shared_data):
    import fasttext

    lines = []
    for name, label in (("general_text", "__label__eng_Latn"), ("general_text_zh", "__label__cmn_Hani")):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= 60:
                    break
                text = json.loads(line)["text"][:600].replace("\n", " ")
                lines.append(f"{label} {' '.join(text) if label.endswith('Hani') else text}")
    train = tmp_path / "train.txt"
    train.write_text("\n".join(lines), encoding="utf-8")
    model = fasttext.train_supervised(str(train), epoch=15, minn=1, maxn=3, dim=16, verbose=0, thread=1, seed=1)
    path = tmp_path / "lid.bin"
    model.save_model(str(path))
    lid = LanguageIdentifier("fasttext", str(path))
    assert lid.identify("The whale swam across the ocean while the sailors watched from the deck.").lang == "en"
    assert lid.identify("这 是 一 个 关 于 历 史 的 故 事 ， 发 生 在 很 久 以 前 。").lang == "zh"


def _texts(path, field, n):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)[field] for _, line in zip(range(n), fh, strict=False)]


def test_accuracy_on_real_math_text(lid, shared_data):
    cases = [
        (_texts(shared_data / "evalsets/cmath/test.jsonl", "question", 100), "zh"),
        (_texts(shared_data / "evalsets/gsm8k/test.jsonl", "question", 100), "en"),
        (_texts(shared_data / "seed/math_text.jsonl", "text", 40), "en"),
        (_texts(shared_data / "seed/math_text_zh.jsonl", "text", 40), "zh"),
    ]
    for texts, gold in cases:
        got = [lid.identify(t).lang for t in texts]
        wrong = [t[:80] for t, g in zip(texts, got, strict=True) if g not in (gold, "und")]
        assert len(wrong) <= len(texts) * 0.03, (gold, wrong)

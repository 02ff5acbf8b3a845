"""Exact Qwen2/2.5 token ids against the reference Hugging Face tokenizer's test vectors, batching, the tokens stage
on Ray."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus.tokens import TokenCounter, TokenizerError, count_tokens, get_counter

SAMPLES = [
    "12345 + 67890 = 80235 and 3.14159",
    r"Let $f(x)=\frac{x^2+1}{\sqrt{x}}$. Then $\int_0^1 f(x)\,dx = \frac{2}{5} + 2$ \begin{align} a &= b \end{align}",
    "求解方程 x^2+3x-10=0，得 x=2 或 x=-5。勾股定理：a²+b²=c²。",
    "cafe\u0301 vs caf\u00e9 (NFC)",  # decomposed accent must count like the composed one
    "def f(n):\n    return n * (n + 1) // 2\n\n\n",
    "   leading spaces\t\ttabs\r\nwindows newline",
    "<|endoftext|> inside text counts as ordinary text",
    "",
]


def _seed_texts(shared_data, n=150):
    texts = []
    for name in ("math_text", "math_text_zh", "math_code", "general_text_zh"):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for _, line in zip(range(n // 4), fh, strict=False)]
    return texts


def _reference_vectors(shared_data) -> list[tuple[str, list[int]]]:
    """llama.cpp's ggml-vocab-qwen2 test vectors: inputs separated by a ``__ggml_vocab_test__`` line, one line of
    token ids per input from the reference Hugging Face Qwen2 tokenizer (see tokenizer/SOURCES.md)."""
    folder = shared_data / "tokenizer"
    with open(folder / "qwen2.inp", encoding="utf-8", newline="") as fh:
        inputs = fh.read().split("\n__ggml_vocab_test__\n")
    with open(folder / "qwen2.out", encoding="utf-8") as fh:
        outputs = fh.read().split("\n")
    assert inputs[-1] == "" and outputs[-1] == ""  # both files end with their separator
    assert len(inputs) == len(outputs)
    return [(text, [int(i) for i in ids.split()]) for text, ids in zip(inputs[:-1], outputs[:-1], strict=True)]


def test_exact_ids_against_reference_hf_qwen2_vectors(shared_data):
    """Independent reference: every input's ids equal the HF Qwen2 tokenizer's, and batched counts agree."""
    vectors = _reference_vectors(shared_data)
    assert len(vectors) == 46
    assert any("\n\n\n" in t for t, _ in vectors) and any(not t.isascii() for t, _ in vectors)
    counter = TokenCounter("qwen2")
    mismatches = [(t, ids, counter.encode(t)) for t, ids in vectors if counter.encode(t) != ids]
    assert mismatches == []
    assert counter.count_batch([t for t, _ in vectors]) == [len(ids) for _, ids in vectors]


def test_digits_split_one_by_one_and_nfc():
    counter = get_counter("qwen2")
    assert counter.count("1234567") == 7
    assert counter.count("cafe\u0301") == counter.count("caf\u00e9")


def test_special_token_strings_are_ordinary_text():
    counter = get_counter("qwen2")
    assert counter.count("<|endoftext|>") > 1


def test_batch_equals_single(shared_data):
    texts = SAMPLES + _seed_texts(shared_data, 40)
    counter = get_counter("qwen2")
    assert count_tokens(texts) == [counter.count(t) for t in texts]
    assert count_tokens([]) == []


def test_unknown_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(TokenizerError, match="gpt9"):
        TokenCounter("gpt9")
    with pytest.raises(TokenizerError, match="no such tokenizer.json"):
        TokenCounter(str(tmp_path / "tokenizer.json"))


def test_local_tokenizer_json(tmp_path, shared_data):
    """Any local tokenizer.json counts through `tokenizers` (here one trained on the seed text, offline)."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = _seed_texts(shared_data, 80)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=500, special_tokens=["[UNK]"]))
    path = str(tmp_path / "tokenizer.json")
    tok.save(path)
    counter = TokenCounter(path)
    assert counter.count_batch(SAMPLES) == [len(tok.encode(t).ids) for t in SAMPLES]
    assert counter.count("1234567 + x^2") > 0


@pytest.mark.ray
def test_tokens_stage_fills_n_tokens_on_ray(tmp_path, shared_data, ray_cluster):
    from pipelines.manifest import parse_manifest
    from pipelines.runner import run_manifest
    from pipelines.steps.io import read_shards

    manifest = parse_manifest({
        "name": "tokens-test", "output": str(tmp_path / "run"), "executor": {"kind": "ray", "tasks": 2},
        "inputs": [{"name": "zh", "source": "web", "paths": [str(shared_data / "seed" / "math_text_zh.jsonl")]}],
        "stages": [{"stage": "extract"}, {"stage": "tokens"}],
    }, str(tmp_path / "m.yaml"))
    run_manifest(manifest, progress=lambda s: None)
    table = read_shards(str(tmp_path / "run" / "stages" / "01_tokens" / "kept"))
    assert table.num_rows == 774
    assert table.column("n_tokens").null_count == 0
    texts = table.column("text").to_pylist()
    assert table.column("n_tokens").to_pylist() == count_tokens(texts)
    funnel = json.loads((tmp_path / "run" / "corpus" / "funnel.json").read_text())
    assert [s["stage"] for s in funnel["stages"]] == ["extract", "tokens"]
    assert funnel["stages"][1]["tokens_out"] == sum(count_tokens(texts))
    assert (tmp_path / "run" / "corpus" / "funnel.png").stat().st_size > 1000
    assert pq.ParquetFile(next((tmp_path / "run" / "corpus").glob("*.parquet"))).metadata.num_rows > 0

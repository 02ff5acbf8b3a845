"""Extraction benchmark: formula preservation, main-text F1 and throughput, ours vs plain trafilatura / datatrove.

    python bench/bench_extract.py [--quick] [--data ../shared/data]

1. Formula preservation on ``web/math/*.html``: the formulas each page carries are found by the math pass on
   the raw page (MathJax scripts, KaTeX annotations, MathML, LaTeX images, ``<d-math>``, TeX delimiters in
   text); a formula survives when its TeX appears delimited as LaTeX (``$..$``, ``$$..$$``, ``\\(..\\)``,
   ``\\[..\\]``, ``[tex]``, or the ``\\begin{env}`` block itself; whitespace ignored) in the extracted text.
   AsciiMath (back-ticks, ``math/asciimath`` scripts) counts for us when its LaTeX conversion appears delimited
   (in back-ticks only when the converter gave up on it), for plain trafilatura when its AsciiMath source appears
   in back-ticks (the best it can do); AsciiMath of only spacing (``\\ \\ \\``) is no formula.
2. Main-text token F1 (lower-cased ``\\w+`` tokens, bag of words) on the general pages with ground truth
   (``web/ground_truth.jsonl``).
3. Throughput: datatrove's ``Trafilatura`` extractor step vs our ``MathExtractor`` step over the same pages
   in the same run (both sandboxed with the same timeout); the ratio is ours / datatrove's seconds, wall clock
   and CPU (this process plus the steps' sandbox processes; steadier than wall clock on a shared machine).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = re.compile(r"\w+")


def norm(s: str) -> str:
    return "".join(s.split())


def delimited(tex: str, backticks: bool = True) -> tuple[str, ...]:
    """The written forms of a formula that count as LaTeX in an extracted text (whitespace removed)."""
    t = norm(tex)
    if t.startswith("\\begin{"):
        return (t,)
    return (f"${t}$", f"\\({t}\\)", f"\\[{t}\\]", f"[tex]{t}[/tex]", f"[itex]{t}[/itex]") + ((f"`{t}`",) * backticks)


def survives(forms: tuple[str, ...], text: str) -> bool:
    return any(form in text for form in forms)


def page_formulas(html: bytes) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per formula, the written forms that count as kept (whitespace removed) for our extraction and for plain
    trafilatura: the TeX delimited, except for AsciiMath: ours must hold its LaTeX conversion delimited as LaTeX
    (or, when the converter gave up, the AsciiMath in back-ticks), plain trafilatura the AsciiMath in back-ticks."""
    from corpus.extract.html import decode_html, parse_html
    from corpus.extract.math import take_formulas

    tree = parse_html(decode_html(html)[0])
    out = []
    for f in take_formulas(tree).formulas:
        if f.kind == "asciimath":
            out.append((delimited(f.tex, backticks=False), (f"`{norm(f.source or '')}`",)))
        elif f.kind == "asciimath-raw":
            out.append(((f"`{norm(f.tex)}`",),) * 2)
        else:
            out.append((delimited(f.tex),) * 2)
    return out


def preservation(files: list[Path], show_lost: bool = False) -> dict:
    import trafilatura

    from corpus.extract.html import ExtractError, extract_page

    total = ours = plain = 0
    for f in files:
        data = f.read_bytes()
        formulas = page_formulas(data)
        try:
            out = norm(extract_page(data, timeout=None).text)
        except ExtractError:
            out = ""
        base = norm(trafilatura.extract(data.decode("utf-8", "replace")) or "")
        lost = [forms[0] for forms, _ in formulas if not survives(forms, out)]
        total += len(formulas)
        ours += len(formulas) - len(lost)
        plain += sum(1 for _, forms in formulas if survives(forms, base))
        if show_lost and lost:
            print(f"  {f.name}: {len(lost)} of {len(formulas)} lost: " + " | ".join(t[:60] for t in lost[:12]))
    return {"pages": len(files), "formulas": total, "ours": ours, "plain": plain}


def f1(pred: str, gold: str) -> float:
    p = collections.Counter(t.lower() for t in TOKEN.findall(pred or ""))
    g = collections.Counter(t.lower() for t in TOKEN.findall(gold or ""))
    common = sum((p & g).values())
    if not common:
        return 0.0
    prec, rec = common / sum(p.values()), common / sum(g.values())
    return 2 * prec * rec / (prec + rec)


def main_text_f1(web: Path, limit: int | None) -> dict:
    import trafilatura

    from corpus.extract.html import ExtractError, extract_page

    rows = [json.loads(line) for line in (web / "ground_truth.jsonl").open()]
    rows = [r for r in rows if r["file"].startswith("general/")][:limit]
    ours, plain = [], []
    for r in rows:
        data = (web / r["file"]).read_bytes()
        try:
            text = extract_page(data, timeout=None).text
        except ExtractError:
            text = ""
        ours.append(f1(text, r["text"]))
        plain.append(f1(trafilatura.extract(data.decode("utf-8", "replace")) or "", r["text"]))
    return {"pages": len(rows), "ours": sum(ours) / len(ours), "plain": sum(plain) / len(plain)}


def throughput(groups: dict[str, list[Path]], rounds: int) -> dict:
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura

    from pipelines.steps.extract import MathExtractor

    def cpu() -> float:  # this process and its finished children (each step's sandbox process is joined at its end)
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def run(step, pages: list[str]) -> tuple[float, float]:
        docs = [Document(text=h, id=str(i)) for i, h in enumerate(pages)]
        t0, c0 = time.perf_counter(), cpu()
        for _ in step.run(iter(docs)):
            pass
        return time.perf_counter() - t0, cpu() - c0

    # Alternate the two steps over small chunks (order flipped every chunk) so that load from other
    # processes on the machine hits both about equally.
    times = {g: {"peer": 0.0, "ours": 0.0, "peer_cpu": 0.0, "ours_cpu": 0.0, "pages": len(files)}
             for g, files in groups.items()}
    chunks = []
    for g, files in groups.items():
        htmls = [f.read_bytes().decode("utf-8", "replace") for f in files]
        chunks += [(g, htmls[i:i + 20]) for i in range(0, len(htmls), 20)]
    for r in range(rounds):
        for c, (g, chunk) in enumerate(chunks):
            steps = [("peer", Trafilatura(timeout=30)), ("ours", MathExtractor(timeout=30))]
            for name, step in steps if (r + c) % 2 == 0 else steps[::-1]:
                wall, used = run(step, chunk)
                times[g][name] += wall
                times[g][f"{name}_cpu"] += used
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subset of pages, one throughput round")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--lost", action="store_true", help="list the formulas our extraction loses, per page")
    args = ap.parse_args()
    from pipelines.logs import quiet_logs

    quiet_logs(False)
    web = Path(args.data) / "web"
    math_files = sorted((web / "math").glob("*.html"))
    general = sorted((web / "general").glob("*.html"))
    if args.quick:
        math_files, general = math_files[::3], general[::8]
    p = preservation(math_files, args.lost)
    print(f"formula preservation ({p['pages']} math pages, {p['formulas']} formulas): "
          f"ours {p['ours'] / p['formulas']:.1%}  plain trafilatura {p['plain'] / p['formulas']:.1%}")
    q = main_text_f1(web, 40 if args.quick else None)
    print(f"main-text token F1 ({q['pages']} general pages with ground truth): "
          f"ours {q['ours']:.3f}  plain trafilatura {q['plain']:.3f}")
    rounds = 1 if args.quick else 2
    t = throughput({"general": general, "math": math_files}, rounds)
    tot = {k: sum(v[k] for v in t.values()) for k in ("peer", "ours", "peer_cpu", "ours_cpu")}
    print(f"throughput ({len(general) + len(math_files)} pages x {rounds}): datatrove Trafilatura {tot['peer']:.1f}s, "
          f"ours {tot['ours']:.1f}s, ratio ours/datatrove {tot['ours'] / tot['peer']:.2f} (wall clock); "
          f"CPU {tot['peer_cpu']:.1f}s vs {tot['ours_cpu']:.1f}s, ratio {tot['ours_cpu'] / tot['peer_cpu']:.2f}")
    for g, v in t.items():
        print(f"    {g} pages ({v['pages']}): datatrove {v['peer']:.1f}s, ours {v['ours']:.1f}s, "
              f"ratio {v['ours'] / v['peer']:.2f}; CPU ratio {v['ours_cpu'] / v['peer_cpu']:.2f}")


if __name__ == "__main__":
    main()

"""``RUN_DIR/report.html``: one self-contained page about a finished run (no network, no external JS or CSS).

Sections (each a ``<section id=...>``): ``summary``, ``funnel`` (documents and tokens per stage, removals by
reason), ``stages`` (wall and CPU time, throughput, peak memory per task), ``rejects`` (by reason, with
examples), ``removed`` (a few sampled removed documents per stage and reason), ``corpus`` (sources, tokens,
languages, length and math_score distributions), ``mix`` (requested vs realized shares, epochs) and
``decontam`` (summary, link to its own report). Plots are inline SVG (matplotlib) or base64 PNG.

Read only from files the run wrote: ``run.json``, ``corpus/funnel.json|png``, ``corpus/manifest.json``, each
stage's ``rejects/``, ``skipped/``, ``removed/`` and ``report.json``. :func:`corpus_section` is also what
``corpus-stats --html`` writes for any shards.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from corpus.io import PARQUET_EXT, expand_paths, open_file, write_text

SAMPLES_PER_REASON = 3
MAX_SAMPLED_SHARDS = 32  # removed documents are sampled from at most this many shards per stage
REPORT_MAX_ROWS = 2_000_000  # the run report's corpus section reads about this many documents at most
SNIPPET_CHARS = 400

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:16px 0 4px}
h2{font-size:19px;margin:0 0 10px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;margin:16px 0}
nav a{margin-right:12px}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #dde1e6;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f0f2f5}td.l,th.l{text-align:left}.muted{color:#66707a}
figure{margin:8px 0}figure svg{max-width:100%;height:auto}figure img{max-width:100%}
.sample{border-left:3px solid #c8ccd1;margin:6px 0;padding:2px 10px;font-size:12.5px}
.sample pre{white-space:pre-wrap;margin:4px 0;font-size:12px;max-height:9em;overflow:hidden}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{flex:1 1 480px}
"""


# --- small helpers ------------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _n(x: Any, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and digits:
        return f"{x:,.{digits}f}"
    return f"{x:,.0f}" if isinstance(x, (int, float)) else _e(x)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned text, the rest numbers."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left or isinstance(c, _Raw) else ""}">'
                         f'{c if isinstance(c, _Raw) else _n(c)}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML inside a table cell."""


def raw(x: Any) -> _Raw:
    return _Raw(_e(x))


def svg(fig) -> str:
    """A matplotlib figure as inline SVG (text as paths: no fonts needed)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "path"
    return plt


def figure(body: str, caption: str) -> str:
    return f'<figure class="plot">{body}<figcaption class="muted">{_e(caption)}</figcaption></figure>'


def barh(labels: list[str], values: list[float], xlabel: str, title: str, color: str = "#4477aa") -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * max(1, len(labels)) + 1.3))
    ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11)
    return svg(fig)


def png_data_uri(path: str) -> str | None:
    try:
        with open_file(path, "rb") as fh:
            return "data:image/png;base64," + base64.b64encode(fh.read()).decode()
    except (FileNotFoundError, OSError):
        return None


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open_file(path, "rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def _jsonl(folder: str) -> list[dict[str, Any]]:
    try:
        files = expand_paths(folder, exts=(".jsonl",))
    except Exception:
        return []
    out = []
    for f in files:
        with open_file(f, "rb") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out


def _shards(folder: str | Sequence[str]) -> list[str]:
    try:
        return expand_paths(folder, exts=PARQUET_EXT)
    except Exception:
        return []


# --- the corpus part (also corpus-stats --html) ---------------------------------------------------------------


def length_histograms(files: list[str], bins: int = 30) -> dict[str, dict[str, list]]:
    """Log-spaced histograms of document length in tokens (where known) and characters."""
    lf = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
    df = lf.select(pl.col("n_tokens").cast(pl.Int64).alias("tokens"),
                   pl.col("text").str.len_chars().alias("chars")).collect(engine="streaming")
    out = {}
    for name in ("tokens", "chars"):
        v = df[name].drop_nulls().to_numpy()
        v = v[v > 0]
        if len(v):
            edges = np.unique(np.geomspace(max(1, v.min()), v.max() + 1, bins + 1).round())
            if len(edges) < 2:
                edges = np.array([v.min(), v.min() + 1])
            counts = np.histogram(v, bins=edges)[0]
            out[name] = {"edges": edges.astype(int).tolist(), "counts": counts.astype(int).tolist()}
    return out


def _hist_svg(edges: list[float], counts: list[int], xlabel: str, title: str, log: bool, color: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=color, edgecolor="white")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    ax.set_title(title, fontsize=11)
    return svg(fig)


def corpus_data(paths: str | Sequence[str]) -> dict[str, Any]:
    """Corpus statistics by source and by language (one pass of :func:`corpus.stats.corpus_stats` by both)."""
    from corpus.stats import corpus_stats

    stats = corpus_stats(paths, by=["source", "lang"])
    per: dict[str, dict[str, Counter]] = {"source": defaultdict(Counter), "lang": defaultdict(Counter)}
    for g in stats["groups"]:
        for key in per:
            for col in ("documents", "tokens", "chars", "bytes"):
                per[key][g[key]][col] += g[col] or 0
    total_tokens = max(1, stats["total"]["tokens"])
    grouped = {key: sorted(({key: k, **dict(c), "share_tokens": c["tokens"] / total_tokens} for k, c in v.items()),
                           key=lambda r: (-r["tokens"], -r["documents"], r[key])) for key, v in per.items()}
    return {"stats": stats, "sources": grouped["source"], "languages": grouped["lang"],
            "histograms": length_histograms(expand_paths(paths, exts=PARQUET_EXT))}


def even_shards(files: list[str], max_rows: int) -> tuple[list[str], int]:
    """Shards spread evenly over ``files`` holding at least ``max_rows`` rows together (all when fewer), and the
    total rows of ``files`` (Parquet footers only)."""
    from pipelines.progress import _parquet_rows

    rows = [_parquet_rows(f) or 0 for f in files]
    total = sum(rows)
    if total <= max_rows:
        return files, total
    k = max(1, round(len(files) * max_rows / total))
    picked = [files[round(i * (len(files) - 1) / max(1, k - 1))] for i in range(k)] if k > 1 else files[:1]
    return sorted(dict.fromkeys(picked)), total


def corpus_section(paths: str | Sequence[str], title: str = "Corpus", max_rows: int | None = None) -> str:
    """``<section id="corpus">``: sources, tokens, languages, lengths and math_score as tables and plots.

    With ``max_rows``, a corpus larger than that is described from shards spread evenly over it (said on the page):
    the run report must not rescan a trillion-token corpus."""
    files = _shards(paths)
    if not files:
        return f'<section id="corpus"><h2>{_e(title)}</h2><p>No shards at {_e(paths)}.</p></section>'
    note = ""
    if max_rows:
        picked, total = even_shards(files, max_rows)
        if len(picked) < len(files):
            note = (f"<p class=muted>Statistics from {len(picked):,} of {len(files):,} shards spread evenly over the "
                    f"corpus ({total:,} documents in all); <code>corpus-stats --html</code> reads every shard.</p>")
            files = picked
    d = corpus_data(files)
    s, t = d["stats"], d["stats"]["total"]
    parts = [f'<section id="corpus"><h2>{_e(title)}</h2>', note,
             f"<p>{s['files']:,} shard(s), <b>{t['documents']:,}</b> documents, <b>{t['tokens']:,}</b> tokens, "
             f"{t['bytes']:,} bytes of text; exact duplicates {s['duplicates']['exact_duplicate_share']:.2%} "
             f"({_e(s['duplicates']['method'])}).</p>"]
    if t["tokens_missing"]:
        parts.append(f"<p class=muted>{t['tokens_missing']:,} documents have no n_tokens.</p>")
    parts.append("<h3>Sources</h3>" + table(["source", "documents", "tokens", "chars", "token share"],
                 [[raw(r["source"]), r["documents"], r["tokens"], r["chars"], f"{r['share_tokens']:.3f}"]
                  for r in d["sources"]]))
    parts.append("<h3>Languages</h3>" + table(["lang", "documents", "tokens", "token share"],
                 [[raw(r["lang"]), r["documents"], r["tokens"], f"{r['share_tokens']:.3f}"]
                  for r in d["languages"]]))
    plots = [figure(barh([str(r["source"]) for r in d["sources"]], [r["share_tokens"] for r in d["sources"]],
                         "share of tokens", "Tokens by source"), "token share by source"),
             figure(barh([str(r["lang"]) for r in d["languages"]][:25],
                         [r["share_tokens"] for r in d["languages"]][:25], "share of tokens", "Tokens by language",
                         "#aa3377"), "token share by language")]
    for name, color in (("tokens", "#4477aa"), ("chars", "#66ccee")):
        if h := d["histograms"].get(name):
            plots.append(figure(_hist_svg(h["edges"], h["counts"], f"document length ({name}, log scale)",
                                          f"Length distribution ({name})", True, color), f"length in {name}"))
    ms = s["math_score"]
    plots.append(figure(_hist_svg(ms["edges"], ms["counts"], "math_score", f"math_score ({ms['missing']:,} missing)",
                                  False, "#228833"), "math_score histogram"))
    parts.append('<div class="grid">' + "".join(plots) + "</div>")
    q = s["lengths"]
    keys = ["min", "p05", "p25", "p50", "p75", "p95", "max", "mean"]
    rows = [[raw(name), *[q[name][k] for k in keys]] for name in ("tokens", "chars") if q.get(name)]
    parts.append("<h3>Length quantiles</h3>" + table(["", *keys], rows))
    if s["top_domains"]:
        parts.append("<h3>Top domains</h3>" + table(["domain", "documents", "tokens"],
                     [[raw(x["domain"]), x["documents"], x["tokens"]] for x in s["top_domains"][:15]]))
    parts.append("</section>")
    return "".join(parts)


def page(title: str, sections: list[str], nav: list[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{a}">{_e(b)}</a>' for a, b in nav)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f'<body><main><h1>{_e(title)}</h1><nav>{links}</nav>{"".join(sections)}</main></body></html>\n')


def write_corpus_html(paths: str | Sequence[str], out: str, title: str | None = None) -> str:
    """``corpus-stats --html OUT``: the corpus part of the report for any shards, as one page."""
    title = title or (paths if isinstance(paths, str) else ", ".join(paths))
    write_text(page(f"Corpus statistics: {title}", [corpus_section(paths)], [("corpus", "corpus")]), out)
    return out


# --- the run sections ------------------------------------------------------------------------------------------


def _summary_section(run: dict[str, Any], run_dir: str) -> str:
    stages = run.get("stages", [])
    seconds = sum(s.get("seconds") or 0 for s in stages)
    cpu = sum(s.get("cpu_seconds") or 0 for s in stages)
    rows = [["name", raw(run.get("name"))], ["manifest", raw(run.get("manifest"))],
            ["executor", raw(f"{run.get('executor')} ({run.get('tasks')} tasks, workers {run.get('workers')})")],
            ["stages", raw(" → ".join(s["stage"] for s in stages))],
            ["corpus documents", run.get("corpus_documents")], ["wall time (stages)", f"{seconds:,.1f} s"],
            ["CPU time (tasks)", f"{cpu:,.1f} s"], ["run folder", raw(run_dir)]]
    return ('<section id="summary"><h2>Run</h2>'
            + table(["", ""], [[raw(r[0]), r[1] if isinstance(r[1], _Raw) else _n(r[1])] for r in rows], left=2)
            + "</section>")


def _funnel_section(funnel: dict[str, Any] | None, corpus_dir: str) -> str:
    if not funnel:
        return '<section id="funnel"><h2>Funnel</h2><p>No funnel.json (run not finished?).</p></section>'
    rows = []
    for s in funnel["stages"]:
        removed = ", ".join(f"{r['reason']}: {r['documents']:,}" for r in s["removed"]) or "-"
        rows.append([raw(f"{s['index']:02d} {s['stage']}"), s.get("documents_in"), s.get("documents_out"),
                     s.get("tokens_in"), s.get("tokens_out"), s.get("rejects"), raw(removed)])
    img = png_data_uri(f"{corpus_dir}/funnel.png")
    chart = figure(f'<img alt="run funnel" src="{img}">', "documents kept per stage, removals stacked by reason") \
        if img else ""
    return ('<section id="funnel"><h2>Funnel</h2>'
            + table(["stage", "docs in", "docs out", "tokens in", "tokens out", "rejects", "removed by reason"], rows)
            + chart + "</section>")


def _stages_section(stages: list[dict[str, Any]]) -> str:
    rows = [[raw(s["stage"]), s.get("documents_in"), s.get("documents_out"), s.get("tasks"),
             _n(s.get("seconds"), 1), _n(s.get("cpu_seconds"), 1), _n(s.get("docs_per_second"), 1),
             _n(s.get("docs_per_core_second"), 1), _n(s.get("peak_rss_mb"), 0)] for s in stages]
    plots = ""
    if stages:
        labels = [f"{s['index']:02d} {s['stage']}" for s in stages]
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(stages) + 1.3))
        y = np.arange(len(stages))[::-1]
        ax.barh(y + 0.2, [s.get("seconds") or 0 for s in stages], height=0.4, color="#4477aa", label="wall")
        ax.barh(y - 0.2, [s.get("cpu_seconds") or 0 for s in stages], height=0.4, color="#ee6677",
                label="CPU (all tasks)")
        ax.set_yticks(y, labels)
        ax.set_xlabel("seconds")
        ax.set_title("Time per stage", fontsize=11)
        ax.legend(fontsize=8)
        plots = figure(svg(fig), "wall and CPU seconds per stage")
        rates = [s.get("docs_per_core_second") or 0 for s in stages]
        plots += figure(barh(labels, rates, "documents / s / core", "Throughput per core", "#228833"),
                        "documents per second per core (task-seconds)")
    return ('<section id="stages"><h2>Time and throughput per stage</h2>'
            + table(["stage", "docs in", "docs out", "tasks", "wall s", "CPU s", "docs/s", "docs/s/core",
                     "peak RSS/task MiB"], rows)
            + f'<div class="grid">{plots}</div></section>')


def _rejects_section(stages: list[dict[str, Any]]) -> str:
    from pipelines.steps.extract import reject_kind

    parts, total = [], 0
    for s in stages:
        for kind, folder in (("rejected", "rejects"), ("skipped", "skipped")):
            records = _jsonl(f"{s['dir']}/{folder}")
            if not records:
                continue
            total += len(records)
            by: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in records:
                by[reject_kind(r.get("error", ""))].append(r)
            rows = [[raw(reason), len(rs), raw(f"{rs[0].get('file')}:{rs[0].get('line')}: {rs[0].get('error')}")]
                    for reason, rs in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
            parts.append(f"<h3>{_e(s['stage'])}: {len(records):,} {kind}</h3>"
                         + table(["reason", "records", "example (file:record: error)"], rows))
    body = "".join(parts) if parts else "<p>No rejected or skipped input records.</p>"
    return f'<section id="rejects"><h2>Rejects by reason ({total:,})</h2>{body}</section>'


def removed_samples(folder: str, k: int = SAMPLES_PER_REASON) -> dict[str, list[dict[str, Any]]]:
    """Up to ``k`` removed documents per reason, chosen by a fixed hash of the id (same run, same sample), from
    at most ``MAX_SAMPLED_SHARDS`` shards spread evenly over the folder (a run's removed set can be large)."""
    files = _shards(folder)
    if not files:
        return {}
    if len(files) > MAX_SAMPLED_SHARDS:
        step = len(files) / MAX_SAMPLED_SHARDS
        files = [files[int(i * step)] for i in range(MAX_SAMPLED_SHARDS)]
    lf = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
    picked = (lf.select("id", pl.col("reason").cast(pl.String).fill_null("(no reason)"))
              .with_columns(pl.col("id").hash(seed=0).alias("h")).sort("h")
              .group_by("reason", maintain_order=True).head(k).collect())
    ids = picked["id"].to_list()
    docs = (lf.filter(pl.col("id").is_in(ids))
            .select("id", "url", pl.col("reason").cast(pl.String).fill_null("(no reason)"),
                    pl.col("text").str.slice(0, SNIPPET_CHARS).alias("snippet"))
            .collect())
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    order = {i: n for n, i in enumerate(ids)}
    for row in sorted(docs.to_dicts(), key=lambda r: order.get(r["id"], 0)):
        if len(out[row["reason"]]) < k:
            out[row["reason"]].append(row)
    return dict(sorted(out.items()))


def _removed_section(stages: list[dict[str, Any]]) -> str:
    parts = []
    for s in stages:
        samples = removed_samples(f"{s['dir']}/removed")
        for reason, docs in samples.items():
            items = "".join(f'<div class="sample"><b>{_e(d["id"])}</b> <span class="muted">{_e(d.get("url"))}'
                            f'</span><pre>{_e(d["snippet"])}</pre></div>' for d in docs)
            parts.append(f"<h3>{_e(s['stage'])} · {_e(reason)}</h3>{items}")
    body = "".join(parts) if parts else "<p>No stage removed documents.</p>"
    return (f'<section id="removed"><h2>Removed documents, sampled by reason</h2><p class="muted">Up to '
            f"{SAMPLES_PER_REASON} per stage and reason, first {SNIPPET_CHARS} characters.</p>{body}</section>")


def _mix_section(manifest: dict[str, Any] | None) -> str:
    if not manifest or "sources" not in manifest:
        return '<section id="mix"><h2>Mix</h2><p>No mix manifest (the run has no mix stage).</p></section>'
    src = manifest["sources"]
    names = sorted(src)
    rows = [[raw(n), f"{src[n].get('requested_share') or 0:.3f}", f"{src[n].get('realized_share') or 0:.3f}",
             _n(src[n].get("epochs"), 2), src[n].get("documents"), src[n].get("unique_documents"),
             src[n].get("tokens"), src[n].get("available_tokens")] for n in names]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(names) + 1.4))
    y = np.arange(len(names))[::-1]
    ax.barh(y + 0.2, [src[n].get("requested_share") or 0 for n in names], height=0.4, color="#bbbbbb",
            label="requested")
    ax.barh(y - 0.2, [src[n].get("realized_share") or 0 for n in names], height=0.4, color="#4477aa",
            label="realized")
    ax.set_yticks(y, names)
    ax.set_xlabel("share of tokens")
    ax.set_title("Mix: requested vs realized shares", fontsize=11)
    ax.legend(fontsize=8)
    shards = manifest.get("shards", [])
    notes = "".join(f"<p><b>warning:</b> {_e(w)}</p>" for w in manifest.get("warnings") or [])
    if (unmatched := manifest.get("unmatched") or {}).get("documents"):
        notes += (f"<p>{unmatched['documents']:,} document(s) matched no source: "
                  + _e("; ".join(", ".join(f"{k}={v}" for k, v in u["values"].items()) + f" ({u['documents']:,})"
                             for u in unmatched.get("by", [])[:10]))
                  + "</p>")
    return ('<section id="mix"><h2>Mix manifest</h2>'
            f"<p>{manifest.get('documents', 0):,} documents in {len(shards)} shard(s) "
            f"({_e(manifest.get('format'))}, {_e(manifest.get('compression'))}).</p>" + notes
            + table(["source", "requested share", "realized share", "epochs", "documents", "unique", "tokens",
                     "available tokens"], rows)
            + figure(svg(fig), "requested vs realized token shares") + "</section>")


def _decontam_section(stages: list[dict[str, Any]], run_dir: str) -> str:
    parts = []
    for s in stages:
        report = _read_json(f"{s['dir']}/report.json")
        if s["stage"] != "decontam" or report is None:
            continue
        link = f"{s['dir']}/report.html"
        link = os.path.relpath(link, run_dir) if "://" not in run_dir else link
        sets = ", ".join(f"{e['name']} ({e.get('items', '?')} items)" for e in report.get("evalsets", []))
        removals = report.get("removals", [])
        rows = [[raw(r.get("doc_id")), raw(r.get("evalset")), raw(r.get("item_id")), raw(r.get("rule")),
                 _n(r.get("lcs_ratio"), 2)] for r in removals[:20]]
        parts.append(f"<p>Eval sets: {_e(sets)}. <b>{len(removals):,}</b> document(s) removed, "
                     f"{len(report.get('items_found', [])):,} eval item(s) found in the corpus. "
                     f'Full audit with evidence: <a href="{_e(link)}">{_e(link)}</a>.</p>'
                     + (table(["document", "eval set", "item", "rule", "LCS ratio"], rows) if rows else ""))
    body = "".join(parts) if parts else "<p>The run has no decontam stage.</p>"
    return f'<section id="decontam"><h2>Decontamination</h2>{body}</section>'


SECTIONS = [("summary", "run"), ("funnel", "funnel"), ("stages", "time"), ("rejects", "rejects"),
            ("removed", "removed samples"), ("corpus", "corpus"), ("mix", "mix"), ("decontam", "decontam")]


def build_report(run_dir: str) -> str:
    """The report page of the finished run in ``run_dir``."""
    run = _read_json(f"{run_dir}/run.json")
    if run is None:
        raise FileNotFoundError(f"{run_dir}/run.json: no finished run here")
    corpus_dir = run.get("corpus_dir") or f"{run_dir}/corpus"
    stages = run.get("stages", [])
    sections = [
        _summary_section(run, run_dir),
        _funnel_section(_read_json(f"{corpus_dir}/funnel.json"), corpus_dir),
        _stages_section(stages),
        _rejects_section(stages),
        _removed_section(stages),
        corpus_section(corpus_dir, "Corpus", max_rows=REPORT_MAX_ROWS),
        _mix_section(_read_json(f"{corpus_dir}/manifest.json")),
        _decontam_section(stages, run_dir),
    ]
    return page(f"mathcorpus run: {run.get('name') or run_dir}", sections, SECTIONS)


def write_report(run_dir: str) -> str:
    """Write ``RUN_DIR/report.html`` (atomically) and return its path."""
    path = f"{run_dir}/report.html"
    write_text(build_report(run_dir), path)
    return path

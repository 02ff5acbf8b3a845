"""The audit report: ``report.json`` (the record), ``report.md`` and a self-contained ``report.html``.

Deterministic: the same inputs give byte-identical files (sorted keys and rows, rounded floats, no
timestamps, no absolute eval-set roots).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from corpus import __version__
from corpus.io import write_json, write_text
from decontam.config import DecontamConfig

REPORT_FILES = ("report.json", "report.md", "report.html")


def build_report(
    *,
    config: DecontamConfig,
    evalsets: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    documents_by_source: Mapping[str, int],
    removals: Iterable[dict[str, Any]],
    index: Mapping[str, Any] | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report dict. ``removals`` rows: ``doc_id, source, url, input`` + :meth:`Matcher.evidence`."""
    rows = sorted(removals, key=lambda r: (str(r.get("input") or ""), str(r["doc_id"])))
    removed_by_source = Counter(str(r.get("source") or "unknown") for r in rows)
    by_set_docs: Counter[str] = Counter()
    by_set_best: Counter[str] = Counter()
    items: Counter[tuple[str, str]] = Counter()
    for r in rows:
        by_set_best[r["evalset"]] += 1
        sets_hit = {m["evalset"] for m in r.get("matches", [])}
        for s in sets_hit:
            by_set_docs[s] += 1
        for key in {(m["evalset"], str(m["item_id"])) for m in r.get("matches", [])}:
            items[key] += 1
    sources = sorted(set(documents_by_source) | set(removed_by_source))
    n_docs = sum(documents_by_source.values())
    return {
        "tool": {"name": "mathcorpus decontam", "version": __version__},
        "config": config.to_dict() | dict(extra_config or {}),
        "evalsets": sorted(evalsets, key=lambda e: e["name"]),
        "index": dict(index or {}),
        "inputs": sorted(inputs, key=lambda i: str(i["path"])),
        "totals": {
            "documents": n_docs,
            "removed": len(rows),
            "kept": n_docs - len(rows),
            "by_evalset": {e["name"]: {"documents_matching": by_set_docs.get(e["name"], 0),
                                       "documents_best_match": by_set_best.get(e["name"], 0)}
                           for e in sorted(evalsets, key=lambda e: e["name"])},
            "by_source": {s: {"documents": documents_by_source.get(s, 0), "removed": removed_by_source.get(s, 0)}
                          for s in sources},
        },
        "items_found": [{"evalset": s, "item_id": i, "documents": n}
                        for (s, i), n in sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))],
        "removals": rows,
    }


def write_reports(report: dict[str, Any], out_dir: str) -> list[str]:
    """Write the three report files into ``out_dir`` (atomically); returns their paths."""
    paths = [os.path.join(out_dir, f) for f in REPORT_FILES]
    write_json(report, paths[0])
    write_text(render_markdown(report), paths[1])
    write_text(render_html(report), paths[2])
    return paths


# ---- markdown --------------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    for ch in "\\`*_[]<>|#$":
        text = text.replace(ch, "\\" + ch)
    return re.sub(r"\s+", " ", text)


def _md(text: Any) -> str:
    return _md_escape(str(text if text is not None else "")).strip()


def _marked(snippet: str, highlights: list[list[int]], escape, open_tag: str, close_tag: str) -> str:
    """The snippet, escaped, with each highlighted range wrapped in open/close tags."""
    out, pos = [], 0
    for a, b in highlights:
        out += [escape(snippet[pos:a]), open_tag, escape(snippet[a:b]), close_tag]
        pos = b
    out.append(escape(snippet[pos:]))
    return "".join(out)


def _md_snippet(snippet: str, highlights: list[list[int]]) -> str:
    return _marked(snippet, highlights, _md_escape, "**", "**").strip()


def _summary_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    t, c = report["totals"], report["config"]
    return [
        ("tool", f"{report['tool']['name']} {report['tool']['version']}"),
        ("rule", f"{c['ngram']}-gram hit, then |LCS| >= {c['min_lcs']} and |LCS| >= {c['lcs_ratio']} x "
                 f"min(len(window), len(item)); window = aligned span +/- {c['window_slack']} x item length"),
        ("short parts", f"question parts of {c['min_short_tokens']} to {c['ngram'] - 1} tokens: exact whole-part "
                        f"match; shorter ones and short answers"
                        f"{' under ' + str(c['min_short_tokens']) + ' tokens' if c['short_exact_answers'] else ''}: "
                        f"not checked (counted as skipped)"),
        ("documents", f"{t['documents']} checked, {t['removed']} removed, {t['kept']} kept"),
    ]


def render_markdown(report: dict[str, Any]) -> str:
    L: list[str] = ["# Decontamination report", ""]
    L += [f"- **{k}**: {_md(v)}" for k, v in _summary_lines(report)]
    extra = {k: v for k, v in report["config"].items() if k not in DecontamConfig.__dataclass_fields__}
    if extra:
        L.append(f"- **settings**: {_md(', '.join(f'{k}={v}' for k, v in sorted(extra.items())))}")
    L += ["", "## Eval sets", "", "| set | file | sha256 | items | parts | n-gram | short exact | skipped "
          "| docs matching |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    by_set = report["totals"]["by_evalset"]
    for e in report["evalsets"]:
        L.append(f"| {_md(e['name'])} | {_md(e['path'])} | `{e['sha256']}` | {e['items']} | {e.get('parts', '')} "
                 f"| {e.get('parts_ngram', '')} | {e.get('parts_short_exact', '')} | "
                 f"{e.get('parts_skipped_short', '')} | {by_set[e['name']]['documents_matching']} |")
    L += ["", "## Inputs", "", "| file | sha256 | documents | removed |", "|---|---|---:|---:|"]
    for i in report["inputs"]:
        L.append(f"| {_md(i['path'])} | `{i['sha256']}` | {i['documents']} | {i.get('removed', '')} |")
    L += ["", "## Totals by source", "", "| source | documents | removed |", "|---|---:|---:|"]
    for s, v in report["totals"]["by_source"].items():
        L.append(f"| {_md(s)} | {v['documents']} | {v['removed']} |")
    L += ["", "## Eval items found", ""]
    if report["items_found"]:
        L += ["| set | item | documents |", "|---|---|---:|"]
        L += [f"| {_md(x['evalset'])} | {_md(x['item_id'])} | {x['documents']} |" for x in report["items_found"]]
    else:
        L.append("None.")
    L += ["", "## Removals", ""]
    if not report["removals"]:
        L.append("None.")
    for r in report["removals"]:
        L += [f"### {_md(r['doc_id'])}", "",
              f"- source: {_md(r.get('source'))}; url: {_md(r.get('url'))}; input: {_md(r.get('input'))}",
              f"- eval set: {_md(r['evalset'])}; item: {_md(r['item_id'])} ({_md(r['part'])}); rule: {r['rule']}",
              f"- matched n-gram: `{r['matched_ngram'].replace('`', ' ')}`",
              f"- LCS: {r['lcs']} tokens, ratio {r['lcs_ratio']} (window {r['window_tokens']}, "
              f"item {r['item_tokens']} tokens); parts matched: {len(r.get('matches', []))}",
              f"- snippet: {_md_snippet(r['snippet'], r['highlights'])}", ""]
    return "\n".join(L).rstrip() + "\n"


# ---- html ------------------------------------------------------------------------------------------------

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.n{text-align:right}code{font-size:12px;word-break:break-all}
mark{background:#ffe066;padding:0}.snip{white-space:pre-wrap;font:12px/1.4 monospace;background:#fafafa;
border:1px solid #eee;padding:6px;max-height:16em;overflow:auto}dl{margin:0}dt{font-weight:600}"""


def _h(text: Any) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def _table(head: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    out = ["<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = "".join(f"<td class=n>{_h(v)}</td>" if i in numeric else f"<td>{v}</td>" for i, v in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    return "".join(out) + "</table>"


def _html_snippet(snippet: str, highlights: list[list[int]]) -> str:
    return _marked(snippet, highlights, _h, "<mark>", "</mark>")


def render_html(report: dict[str, Any]) -> str:
    by_set = report["totals"]["by_evalset"]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Decontamination report</title>"
             f"<style>{_CSS}</style></head><body><h1>Decontamination report</h1><dl>"]
    parts += [f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in _summary_lines(report)]
    config = json.dumps(report["config"], sort_keys=True)
    parts.append(f"<dt>config</dt><dd><code>{_h(config)}</code></dd></dl><h2>Eval sets</h2>")
    parts.append(_table(
        ["set", "file", "sha256", "items", "parts", "n-gram", "short exact", "skipped", "docs matching"],
        [[_h(e["name"]), _h(e["path"]), f"<code>{_h(e['sha256'])}</code>", e["items"], e.get("parts"),
          e.get("parts_ngram"), e.get("parts_short_exact"), e.get("parts_skipped_short"),
          by_set[e["name"]]["documents_matching"]] for e in report["evalsets"]], numeric={3, 4, 5, 6, 7, 8}))
    parts.append("<h2>Inputs</h2>")
    parts.append(_table(["file", "sha256", "documents", "removed"],
                        [[_h(i["path"]), f"<code>{_h(i['sha256'])}</code>", i["documents"], i.get("removed")]
                         for i in report["inputs"]], numeric={2, 3}))
    parts.append("<h2>Totals by source</h2>")
    parts.append(_table(["source", "documents", "removed"],
                        [[_h(s), v["documents"], v["removed"]] for s, v in report["totals"]["by_source"].items()],
                        numeric={1, 2}))
    parts.append("<h2>Eval items found</h2>")
    parts.append(_table(["set", "item", "documents"],
                        [[_h(x["evalset"]), _h(x["item_id"]), x["documents"]] for x in report["items_found"]],
                        numeric={2}) if report["items_found"] else "<p>None.</p>")
    parts.append(f"<h2>Removals ({len(report['removals'])})</h2>")
    rows = []
    for r in report["removals"]:
        doc = (f"<b>{_h(r['doc_id'])}</b><br>{_h(r.get('source'))}<br>{_h(r.get('url'))}"
               f"<br><small>{_h(r.get('input'))}</small>")
        item = f"{_h(r['evalset'])}<br>{_h(r['item_id'])}<br><small>{_h(r['part'])}, {_h(r['rule'])}</small>"
        ev = (f"<code>{_h(r['matched_ngram'])}</code><br>LCS {r['lcs']} / ratio {r['lcs_ratio']}"
              f"<br><small>window {r['window_tokens']}, item {r['item_tokens']}, parts matched "
              f"{len(r.get('matches', []))}</small>")
        rows.append([doc, item, ev, f"<div class=snip>{_html_snippet(r['snippet'], r['highlights'])}</div>"])
    parts.append(_table(["document", "eval item", "evidence", "snippet (overlap highlighted)"], rows)
                 if rows else "<p>None.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def group_counts(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in rows:
        out[str(r.get(key) or "unknown")] += 1
    return dict(out)

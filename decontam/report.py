"""The audit report: ``report.json`` (the record), ``report.md`` and a self-contained ``report.html``.

Deterministic: the same inputs give byte-identical files (sorted keys and rows, rounded floats, no
timestamps, no absolute eval-set roots). Readable at any size: the summary (per eval set: items found and
their share; removals by rule) comes first, then at most ``SHOWN`` removals (weakest evidence first) and
``SHOWN`` near misses (highest score first); ``report.json`` holds every row.
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
SHOWN = 200  # removals / near misses listed in report.md and report.html (all of them are in report.json)
RULE_ORDER = {"reworded": 0, "qa_pair": 1, "short_line": 2, "short_exact": 3, "ngram_lcs": 4}


def review_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Removals with the weakest evidence first: reworded, then pair/line/exact short rules, then by score."""
    return sorted(rows, key=lambda r: (RULE_ORDER.get(r.get("rule", ""), 9), r.get("lcs_ratio", 0),
                                       str(r.get("evalset")), str(r.get("item_id")), str(r["doc_id"])))


def build_report(
    *,
    config: DecontamConfig,
    evalsets: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    documents_by_source: Mapping[str, int],
    removals: Iterable[dict[str, Any]],
    index: Mapping[str, Any] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    near_misses: Iterable[dict[str, Any]] = (),
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
    found_per_set = Counter(s for s, _ in items)
    near = sorted(near_misses, key=lambda r: (-r["score"], str(r["evalset"]), str(r["item_id"]), str(r["doc_id"])))
    by_rule = Counter(str(r.get("rule")) for r in rows)
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
                                       "documents_best_match": by_set_best.get(e["name"], 0),
                                       "items": e["items"], "items_found": found_per_set.get(e["name"], 0),
                                       "share_found": round(found_per_set.get(e["name"], 0) / max(1, e["items"]), 6)}
                           for e in sorted(evalsets, key=lambda e: e["name"])},
            "by_rule": dict(sorted(by_rule.items())),
            "near_misses": len(near),
            "by_source": {s: {"documents": documents_by_source.get(s, 0), "removed": removed_by_source.get(s, 0)}
                          for s in sources},
        },
        "items_found": [{"evalset": s, "item_id": i, "documents": n}
                        for (s, i), n in sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))],
        "removals": rows,
        "near_misses": near,
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
        ("normalize", f"spacing rules {', '.join(c.get('normalize', [])) or 'off'}"),
        ("qa pairs", f"{'on' if c.get('qa_pairs') else 'off'} (short question + each answer as one item); whole-line "
                     f"/ question-then-answer rules from {c.get('min_line_tokens')} tokens"),
        ("reworded tier", (f"on: >= {c.get('reword_min_numbers')} numbers in {c.get('reword_span')} x the item's "
                           f"length, content-word containment >= {c.get('reword_similarity')} "
                           f"(>= {c.get('reword_similarity_answer')} with the final answer)")
         if c.get("reworded") else "off"),
        ("documents", f"{t['documents']} checked, {t['removed']} removed, {t['kept']} kept"),
        ("removals by rule", ", ".join(f"{k} {v}" for k, v in t.get("by_rule", {}).items()) or "none"),
        ("near misses", f"{t.get('near_misses', 0)} (n-gram hits the LCS rule rejected, reworded candidates "
                        f"below the threshold; score >= {c.get('near_miss_ratio')})"),
    ]


def render_markdown(report: dict[str, Any]) -> str:
    L: list[str] = ["# Decontamination report", ""]
    L += [f"- **{k}**: {_md(v)}" for k, v in _summary_lines(report)]
    extra = {k: v for k, v in report["config"].items() if k not in DecontamConfig.__dataclass_fields__}
    if extra:
        L.append(f"- **settings**: {_md(', '.join(f'{k}={v}' for k, v in sorted(extra.items())))}")
    L += ["", "## Eval sets", "", "| set | items | items found | share found | docs matching | parts | n-gram "
          "| short | q+a pairs | skipped | file | sha256 |", "|---|" + "---:|" * 9 + "---|---|"]
    by_set = report["totals"]["by_evalset"]
    for e in report["evalsets"]:
        b = by_set[e["name"]]
        L.append(f"| {_md(e['name'])} | {e['items']} | {b.get('items_found', '')} | "
                 f"{100 * b.get('share_found', 0):.2f} % | {b['documents_matching']} | {e.get('parts', '')} "
                 f"| {e.get('parts_ngram', '')} | {e.get('parts_short_exact', '')} | {e.get('parts_qa_pair', '')} | "
                 f"{e.get('parts_skipped_short', '')} | {_md(e['path'])} | `{e['sha256']}` |")
    L += ["", "## Inputs", "", "| file | sha256 | documents | removed |", "|---|---|---:|---:|"]
    for i in report["inputs"]:
        L.append(f"| {_md(i['path'])} | `{i['sha256']}` | {i['documents']} | {i.get('removed', '')} |")
    L += ["", "## Totals by source", "", "| source | documents | removed |", "|---|---:|---:|"]
    for s, v in report["totals"]["by_source"].items():
        L.append(f"| {_md(s)} | {v['documents']} | {v['removed']} |")
    L += ["", "## Eval items found", ""]
    found = report["items_found"]
    if found:
        L += _md_capped(len(found), "items", "the most documents first")
        L += ["| set | item | documents |", "|---|---|---:|"]
        L += [f"| {_md(x['evalset'])} | {_md(x['item_id'])} | {x['documents']} |" for x in found[:SHOWN]]
    else:
        L.append("None.")
    L += ["", "## Removals", ""]
    if not report["removals"]:
        L.append("None.")
    else:
        L += _md_capped(len(report["removals"]), "removals", "weakest evidence first")
    for r in review_order(report["removals"])[:SHOWN]:
        L += [f"### {_md(r['doc_id'])}", "",
              f"- source: {_md(r.get('source'))}; url: {_md(r.get('url'))}; input: {_md(r.get('input'))}",
              f"- eval set: {_md(r['evalset'])}; item: {_md(r['item_id'])} ({_md(r['part'])}); rule: {r['rule']}",
              f"- evidence: {_md(_evidence_line(r))}",
              f"- eval item: {_md(r.get('item_text', ''))}",
              f"- document: {_md_snippet(r['snippet'], r['highlights'])}", ""]
    L += ["", "## Near misses (for review; kept)", ""]
    near = report.get("near_misses", [])
    if not near:
        L.append("None.")
    else:
        L += _md_capped(len(near), "near misses", "highest score first")
        L += ["| score | tier | set | item | document | evidence | eval item | document text |",
              "|---:|---|---|---|---|---|---|---|"]
        for x in near[:SHOWN]:
            L.append(f"| {x['score']} | {x['tier']} | {_md(x['evalset'])} | {_md(x['item_id'])} ({_md(x['part'])}) | "
                     f"{_md(x['doc_id'])} | {_md(_near_line(x))} | {_md(x.get('item_text', '')[:300])} | "
                     f"{_md((x.get('matched_text') or x.get('matched_ngram') or '')[:300])} |")
    return "\n".join(L).rstrip() + "\n"


def _md_capped(n: int, what: str, order: str) -> list[str]:
    shown = min(n, SHOWN)
    return [f"{n} {what}; {'all' if shown == n else f'the first {shown}'} shown ({order}); every row is in "
            f"report.json.", ""]


def _evidence_line(r: Mapping[str, Any]) -> str:
    if r.get("rule") == "reworded":
        return (f"numbers matched {', '.join(r.get('numbers_matched', []))}"
                f"{'; missing ' + ', '.join(r['numbers_missing']) if r.get('numbers_missing') else ''}; "
                f"final answer {'found' if r.get('answer_matched') else 'not found'}; content-word containment "
                f"{r.get('similarity')}")
    return (f"matched n-gram `{r.get('matched_ngram', '')}`; LCS {r['lcs']} tokens, ratio {r['lcs_ratio']} "
            f"(window {r.get('window_tokens')}, item {r['item_tokens']} tokens); parts matched "
            f"{len(r.get('matches', []))}")


def _near_line(x: Mapping[str, Any]) -> str:
    if x["tier"] == "reworded":
        return (f"numbers {', '.join(x.get('numbers', []))}; answer {'found' if x.get('answer_found') else 'no'}; "
                f"containment {x['score']}")
    return f"LCS {x.get('lcs')} of {x.get('item_tokens')} tokens, ratio {x['score']} (rejected)"


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
        ["set", "items", "items found", "share found", "docs matching", "parts", "n-gram", "short", "q+a pairs",
         "skipped", "file", "sha256"],
        [[_h(e["name"]), e["items"], by_set[e["name"]].get("items_found"),
          f"{100 * by_set[e['name']].get('share_found', 0):.2f} %", by_set[e["name"]]["documents_matching"],
          e.get("parts"), e.get("parts_ngram"), e.get("parts_short_exact"), e.get("parts_qa_pair"),
          e.get("parts_skipped_short"), _h(e["path"]), f"<code>{_h(e['sha256'])}</code>"]
         for e in report["evalsets"]], numeric={1, 2, 3, 4, 5, 6, 7, 8, 9}))
    parts.append("<h2>Inputs</h2>")
    parts.append(_table(["file", "sha256", "documents", "removed"],
                        [[_h(i["path"]), f"<code>{_h(i['sha256'])}</code>", i["documents"], i.get("removed")]
                         for i in report["inputs"]], numeric={2, 3}))
    parts.append("<h2>Totals by source</h2>")
    parts.append(_table(["source", "documents", "removed"],
                        [[_h(s), v["documents"], v["removed"]] for s, v in report["totals"]["by_source"].items()],
                        numeric={1, 2}))
    found = report["items_found"]
    parts.append("<h2>Eval items found</h2>")
    if found:
        parts += _html_capped(len(found), "items", "the most documents first")
    parts.append(_table(["set", "item", "documents"],
                        [[_h(x["evalset"]), _h(x["item_id"]), x["documents"]] for x in found[:SHOWN]],
                        numeric={2}) if found else "<p>None.</p>")
    parts.append(f"<h2>Removals ({len(report['removals'])})</h2>")
    parts += _html_capped(len(report["removals"]), "removals", "weakest evidence first")
    rows = []
    for r in review_order(report["removals"])[:SHOWN]:
        doc = (f"<b>{_h(r['doc_id'])}</b><br>{_h(r.get('source'))}<br>{_h(r.get('url'))}"
               f"<br><small>{_h(r.get('input'))}</small>")
        item = (f"{_h(r['evalset'])} {_h(r['item_id'])}<br><small>{_h(r['part'])}, <b>{_h(r['rule'])}</b></small>"
                f"<div class=snip>{_h(r.get('item_text', ''))}</div>")
        ev = f"<small>{_h(_evidence_line(r))}</small>"
        rows.append([doc, item, f"<div class=snip>{_html_snippet(r['snippet'], r['highlights'])}</div>", ev])
    parts.append(_table(["document", "eval item", "document's matched span (overlap highlighted)", "evidence"], rows)
                 if rows else "<p>None.</p>")
    near = report.get("near_misses", [])
    parts.append(f"<h2>Near misses, kept ({len(near)})</h2>")
    parts += _html_capped(len(near), "near misses", "highest score first")
    parts.append(_table(["score", "tier", "eval item", "document", "evidence", "document text"],
                        [[x["score"], _h(x["tier"]),
                          f"{_h(x['evalset'])} {_h(x['item_id'])} ({_h(x['part'])})<div class=snip>"
                          f"{_h(x.get('item_text', '')[:600])}</div>", _h(x["doc_id"]), _h(_near_line(x)),
                          f"<div class=snip>{_h((x.get('matched_text') or x.get('matched_ngram') or '')[:600])}</div>"]
                         for x in near[:SHOWN]], numeric={0}) if near else "<p>None.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _html_capped(n: int, what: str, order: str) -> list[str]:
    if not n:
        return []
    shown = min(n, SHOWN)
    return [f"<p>{n} {_h(what)}; {'all' if shown == n else f'the first {shown}'} shown ({_h(order)}); every row is "
            f"in report.json.</p>"]


def group_counts(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in rows:
        out[str(r.get(key) or "unknown")] += 1
    return dict(out)

"""Decontaminate record files in-process (the engine behind ``mathcorpus decontam``; no Ray, no executor).

Text mode (default): each record's ``text`` is checked; records are mapped onto the document schema and
written as Parquet to ``OUT/kept/`` and ``OUT/removed/`` (the latter with evidence columns).
Columns mode (SFT/RL Q&A data): the named columns are checked (nested values flattened like eval fields);
records keep their own fields and are written as JSONL, removed ones with a ``decontam`` evidence object.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from corpus.io import Reject, common_root, iter_records, resolve_document_inputs, write_jsonl, write_parquet
from corpus.schema import SOURCES, SchemaError, normalize_row, rows_to_table
from decontam.evalsets import LoadedSet, flatten, sha256_file
from decontam.index import NGramIndex
from decontam.matcher import Matcher
from decontam.report import build_report, write_reports

REASON = "decontam"
EVIDENCE_FIELDS = [
    pa.field("evalset", pa.string()),
    pa.field("eval_item", pa.string()),
    pa.field("eval_part", pa.string()),
    pa.field("matched_ngram", pa.string()),
    pa.field("lcs", pa.int64()),
    pa.field("lcs_ratio", pa.float64()),
    pa.field("eval_matches", pa.string()),  # JSON list of every matched part
    pa.field("eval_rule", pa.string()),  # ngram_lcs | short_exact | short_line | qa_pair | reworded
    pa.field("eval_evidence", pa.string()),  # JSON: the rule's evidence (reworded: numbers, answer, similarity)
]
NEAR_MISSES_PER_DOC = 3  # near misses kept per kept document (highest scores)
_RULE_EVIDENCE = ("numbers_matched", "numbers_missing", "answer_matched", "similarity", "window_tokens", "lcs",
                  "item_tokens")
ROWS_PER_SHARD = 50_000


def evidence_columns(ev: dict[str, Any]) -> dict[str, Any]:
    """The removed-shard evidence columns of one :meth:`Matcher.evidence` dict."""
    return {"evalset": ev["evalset"], "eval_item": str(ev["item_id"]), "eval_part": ev["part"],
            "matched_ngram": ev["matched_ngram"], "lcs": ev["lcs"], "lcs_ratio": ev["lcs_ratio"],
            "eval_matches": json.dumps(ev["matches"], ensure_ascii=False, sort_keys=True),
            "eval_rule": ev["rule"],
            "eval_evidence": json.dumps({k: ev[k] for k in _RULE_EVIDENCE if k in ev}, sort_keys=True)}


def check_record(matcher: Matcher, texts: Sequence[tuple[str, str]]
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Check several named texts of one record: (evidence of the best match with its ``column``, or None;
    the record's near misses when nothing matched, best first, at most ``NEAR_MISSES_PER_DOC``)."""
    best: tuple[Any, str, str, list] | None = None
    every: list = []
    near: list[dict[str, Any]] = []
    for column, text in texts:
        matches, misses = matcher.check(text)
        every.extend(matches)
        near.extend(m | {"column": column} for m in misses)
        if matches and (best is None or (matches[0].lcs_ratio, matches[0].lcs) > (best[0].lcs_ratio, best[0].lcs)):
            best = (matches[0], column, text, matches)
    if best is None:
        near.sort(key=lambda x: (-x["score"], x["evalset"], x["item_id"], x["part"]))
        return None, near[:NEAR_MISSES_PER_DOC]
    _, column, text, matches = best
    ev = matcher.evidence(text, matches)
    ev["matches"] = sorted({json.dumps(m.brief(), sort_keys=True) for m in every})
    ev["matches"] = [json.loads(m) for m in ev["matches"]]
    ev["column"] = column
    return ev, []


def check_record_texts(matcher: Matcher, texts: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """Evidence of the best match of a record's named texts, or None (see :func:`check_record`)."""
    return check_record(matcher, texts)[0]


@dataclass
class _Output:
    folder: str
    stem: str
    jsonl: bool
    extra: list[pa.Field] = field(default_factory=list)
    rows: list = field(default_factory=list)
    shard: int = 0

    def add(self, row: Any) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROWS_PER_SHARD:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        name = f"{self.folder}/{self.stem}-{self.shard:04d}"
        if self.jsonl:
            write_jsonl(self.rows, f"{name}.jsonl")
        else:
            write_parquet(rows_to_table(self.rows, self.extra), f"{name}.parquet")
        self.rows, self.shard = [], self.shard + 1


def _clear_parts(output: str) -> None:
    """Remove shards of an earlier run into the same folder (so kept/removed never mix two runs)."""
    for sub in ("kept", "removed"):
        folder = os.path.join(output, sub)
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.startswith("part-"):
                    os.remove(os.path.join(folder, name))
    if os.path.exists(os.path.join(output, "rejects.jsonl")):
        os.remove(os.path.join(output, "rejects.jsonl"))


def _schema_row(rec: dict[str, Any], text_column: str, doc_id: str) -> dict[str, Any]:
    rec = dict(rec)
    if text_column != "text":
        rec["text"] = rec.pop(text_column, None)
    if rec.get("id") in (None, ""):
        rec["id"] = doc_id
    src = rec.get("source")
    return normalize_row(rec, source=None if src in (None, *SOURCES) else "other")


def decontaminate_files(
    inputs: Sequence[str],
    sets: list[LoadedSet],
    index: NGramIndex,
    output: str,
    *,
    columns: Sequence[str] | None = None,
    text_column: str = "text",
    progress=None,
) -> dict[str, Any]:
    """Check every record of ``inputs``; write kept/removed/rejects and the report; return the report."""
    files = resolve_document_inputs(list(inputs))  # document shards only (a run folder: its corpus/)
    root = common_root(files)
    matcher = Matcher(index)
    by_source: Counter[str] = Counter()
    removals: list[dict[str, Any]] = []
    near_misses: list[dict[str, Any]] = []
    described: list[dict[str, Any]] = []
    rejects: list[str] = []
    qa = bool(columns)
    _clear_parts(output)
    for k, path in enumerate(files):
        stem = f"part-{k:05d}"
        kept = _Output(f"{output}/kept", stem, qa)
        removed = _Output(f"{output}/removed", stem, qa, [pa.field("reason", pa.string()), *EVIDENCE_FIELDS])
        n_docs = n_removed = 0
        base = path[len(root):].lstrip("/") if root else path  # unique across inputs
        for pos, rec in iter_records(path):
            if isinstance(rec, Reject):
                rejects.append(rec.to_json())
                continue
            doc_id = str(rec.get("id")) if rec.get("id") not in (None, "") else f"{base}#{pos}"
            if qa:
                texts = [(c, "\n".join(flatten(rec.get(c)))) for c in columns if rec.get(c) is not None]
                source, url = str(rec.get("source") or "unknown"), rec.get("url")
                row: Any = rec
            else:
                try:
                    row = _schema_row(rec, text_column, doc_id)
                except SchemaError as e:
                    rejects.append(Reject(path, pos, str(e), json.dumps(rec, ensure_ascii=False,
                                                                        default=str)).to_json())
                    continue
                texts = [("text", row["text"])]
                doc_id, source, url = row["id"], row["source"] or "unknown", row["url"]
            n_docs += 1
            by_source[source] += 1
            ev, near = check_record(matcher, texts)
            near_misses.extend({"doc_id": doc_id, "source": source, "url": url, "input": path, **m} for m in near)
            if ev is None:
                kept.add(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) if qa else row)
                continue
            n_removed += 1
            removals.append({"doc_id": doc_id, "source": source, "url": url, "input": path, **ev})
            if qa:
                removed.add(json.dumps({**row, "decontam": evidence_columns(ev)}, ensure_ascii=False,
                                       sort_keys=True, default=str))
            else:
                removed.add({**row, "reason": REASON, **evidence_columns(ev)})
        kept.flush()
        removed.flush()
        described.append({"path": path, "sha256": sha256_file(path), "documents": n_docs, "removed": n_removed})
        if progress:
            progress(f"{path}: {n_docs} documents, {n_removed} removed")
    if rejects:
        write_jsonl(rejects, f"{output}/rejects.jsonl")
    report = build_report(
        config=index.config, evalsets=index.sets, inputs=described, documents_by_source=by_source,
        removals=removals, index=index.summary(), near_misses=near_misses,
        extra_config={"mode": "columns" if qa else "text", "columns": list(columns or [text_column]),
                      "rejects": len(rejects)},
    )
    report["totals"]["rejected"] = len(rejects)  # in = documents + rejected
    write_reports(report, output)
    return report

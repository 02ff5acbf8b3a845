"""Batched scoring with per-source models, and scoring of record files without any executor.

``ModelSet`` maps a document ``source`` (web, book, code ...) to a model, with ``default`` as the fallback;
models load lazily, once per process (a worker scoring many shards loads each model once).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa

from classifiers.model import MathClassifier
from corpus.io import Reject, common_root, resolve_document_inputs, write_json, write_jsonl
from corpus.records import iter_documents

DEFAULT = "default"
REMOVED_REASON = "low_math_score"
THRESHOLD_FIELD = pa.field("math_threshold", pa.float32())

_LOADED: dict[tuple[str, float | None], MathClassifier] = {}


def load_classifier(path: str, threshold: float | None = None) -> MathClassifier:
    """A classifier for ``path``, cached per process (the fastText model itself loads on first use)."""
    key = (os.path.abspath(path), threshold)
    if key not in _LOADED:
        _LOADED[key] = MathClassifier(path, threshold=threshold)
    return _LOADED[key]


class ModelSet:
    """Per-source models: ``{"web": dir, "code": dir, "default": dir}``; thresholds from the cards unless given."""

    def __init__(self, models: Mapping[str, str], threshold: float | None = None,
                 thresholds: Mapping[str, float] | None = None):
        if not models:
            raise ValueError("no model given")
        self.models = dict(models)
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})

    def get(self, source: str | None) -> MathClassifier | None:
        key = source if source in self.models else DEFAULT
        if key not in self.models:
            return None
        return load_classifier(self.models[key], self.thresholds.get(key, self.threshold))

    def score(self, texts: Sequence[str], sources: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, thresholds)``; both NaN for documents whose source has no model."""
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        thresholds = np.full(len(texts), np.nan, dtype=np.float32)
        groups: dict[str | None, list[int]] = {}
        for i, s in enumerate(sources):
            groups.setdefault(s if s in self.models else DEFAULT, []).append(i)
        for key, idx in groups.items():
            clf = self.get(key)
            if clf is None:
                continue
            scores[idx] = clf.score([texts[i] for i in idx])
            thresholds[idx] = clf.threshold
        return scores, thresholds

    def load(self) -> None:
        """Load every model now (a missing or bad model fails here, naming its path)."""
        for key in self.models:
            _ = self.get(key).model

    def describe(self) -> dict[str, Any]:
        return {k: {"path": v, "threshold": load_classifier(v, self.thresholds.get(k, self.threshold)).threshold}
                for k, v in self.models.items()}


def parse_model_specs(specs: Iterable[str]) -> dict[str, str]:
    """``["models/web", "code=models/code"]`` -> ``{"default": "models/web", "code": "models/code"}``."""
    out: dict[str, str] = {}
    for spec in specs:
        source, sep, path = spec.partition("=")
        if not sep or os.path.exists(spec):
            source, path = DEFAULT, spec
        out[source] = path
    return out


def batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def _records(path: str, source: str | None, root: str, rejects: list[Reject]) -> Iterator[dict[str, Any]]:
    """Schema rows of one input file (the shared record reader); bad records go to ``rejects``."""
    for item in iter_documents([path], source, root=root):
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        yield item


def score_files(
    models: ModelSet,
    inputs: Sequence[str],
    output_dir: str,
    *,
    keep_all: bool = False,
    batch_size: int = 1024,
    source: str | None = None,
) -> dict[str, Any]:
    """Score JSONL/Parquet record files; kept rows go to ``{output}/kept/``, removed ones (with ``reason`` and
    ``math_threshold``) to ``{output}/removed/``, one Parquet file per input file, plus ``score.json``.

    ``source`` sets the documents' source (choosing the per-source model) when the records carry none.
    """
    import pyarrow.parquet as pq

    from corpus.io import atomic_open
    from corpus.schema import with_extra_fields

    files = resolve_document_inputs(inputs)
    root = common_root(files)
    models.load()
    counts = {"documents": 0, "kept": 0, "removed": 0, "unscored": 0, "rejected": 0}
    rejects: list[Reject] = []
    extra = [pa.field("reason", pa.string()), THRESHOLD_FIELD]
    for n, path in enumerate(files):
        name = f"{n:05d}.parquet"
        with atomic_open(f"{output_dir}/kept/{name}") as kf, atomic_open(f"{output_dir}/removed/{name}") as rf:
            kw = pq.ParquetWriter(kf, with_extra_fields(), compression="zstd")
            rw = pq.ParquetWriter(rf, with_extra_fields(extra), compression="zstd")
            try:
                _score_file(models, _records(path, source, root, rejects), batch_size, keep_all, kw, rw, counts,
                            extra)
            finally:
                kw.close()
                rw.close()
    counts["rejected"] = len(rejects)
    if rejects:
        write_jsonl((r.to_json() for r in rejects), f"{output_dir}/rejects.jsonl")
    summary = {"inputs": files, "models": models.describe(), "keep_all": keep_all, **counts}
    write_json(summary, f"{output_dir}/score.json")
    return summary


def _score_file(models: ModelSet, rows: Iterable[dict[str, Any]], batch_size: int, keep_all: bool, kept_writer,
                removed_writer, counts: dict[str, int], extra: list[pa.Field]) -> None:
    from corpus.schema import rows_to_table

    for batch in batched(rows, batch_size):
        scores, thr = models.score([r["text"] for r in batch], [r["source"] for r in batch])
        kept, removed = [], []
        for row, s, t in zip(batch, scores.tolist(), thr.tolist(), strict=True):
            if np.isnan(s):
                counts["unscored"] += 1
                kept.append(row)
                continue
            row["math_score"] = s
            if keep_all or s >= t:
                kept.append(row)
            else:
                removed.append({**row, "reason": REMOVED_REASON, "math_threshold": t})
        counts["documents"] += len(batch)
        counts["kept"] += len(kept)
        counts["removed"] += len(removed)
        kept_writer.write_table(rows_to_table(kept))
        removed_writer.write_table(rows_to_table(removed, extra))

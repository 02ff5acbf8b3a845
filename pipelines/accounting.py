"""Document accounting of a run: what a stage read, kept, removed, rejected and skipped, and the check that
the terms add up (``in = kept + removed + rejected + skipped``).

Counts come from the shards' Parquet footers, the lines of the stage's ``rejects/*.jsonl`` and, for the first
stage (whose input is not a folder of shards), from the datatrove stats of its reader. Reading errors are
errors: only a folder that does not exist (a stage that removed or rejected nothing) counts as empty.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec
import pyarrow.parquet as pq

from corpus.errors import MathcorpusError
from corpus.io import PARQUET_EXT, list_shards, open_file, path_kind


class AccountingError(MathcorpusError, RuntimeError):
    """A stage's outputs cannot be read or its documents do not add up; the message names the stage or file."""


def folder_files(folder: str | None, exts=PARQUET_EXT, *, missing_ok: bool = False) -> list[str]:
    """The files of ``folder`` (:func:`corpus.io.list_shards`); ``[]`` only for an empty folder or, with
    ``missing_ok``, an absent one. A credential or network error is not "absent": it raises."""
    if not folder:
        return []
    try:
        fs, _, (target,) = fsspec.get_fs_token_paths(folder)
        if path_kind(fs, target) is None:
            if missing_ok:
                return []
            raise AccountingError(f"{folder}: missing (the stage wrote no output there)")
        return list_shards(folder, exts, missing_ok=False)
    except MathcorpusError as e:
        raise e if isinstance(e, AccountingError) else AccountingError(str(e)) from None
    except Exception as e:
        raise AccountingError(f"{folder}: cannot be listed: {type(e).__name__}: {e}") from None


def count_rows(folder: str | None, *, missing_ok: bool = False) -> int:
    """Rows in the Parquet shards of ``folder``, from the footers only."""
    total = 0
    for f in folder_files(folder, missing_ok=missing_ok):
        try:
            with open_file(f, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        except Exception as e:
            raise AccountingError(f"{f}: not a readable Parquet shard: {type(e).__name__}: {e}") from None
    return total


def count_lines(folder: str, exts=(".jsonl",)) -> int:
    """Non-empty lines of the JSONL files of ``folder`` (absent folder: 0)."""
    n = 0
    for f in folder_files(folder, exts, missing_ok=True):
        try:
            with open_file(f, "rb") as fh:
                n += sum(1 for line in fh if line.strip())
        except Exception as e:
            raise AccountingError(f"{f}: cannot be read: {type(e).__name__}: {e}") from None
    return n


def phase_stats(logging_dir: str, tasks: int) -> list[dict[str, Any]]:
    """The per-step stats of a phase, summed over its ranks' ``stats/{rank}.json`` (each must exist)."""
    merged: dict[str, Counter] = {}
    for rank in range(tasks):
        path = f"{logging_dir}/stats/{rank:05d}.json"
        try:
            with open_file(path, "rt") as fh:
                steps = json.load(fh)
        except FileNotFoundError:
            raise AccountingError(f"{path}: missing (rank {rank} did not record its stats)") from None
        except (OSError, ValueError) as e:
            raise AccountingError(f"{path}: cannot be read: {e}") from None
        for step in steps:
            counter = merged.setdefault(step["name"], Counter())
            for key, value in (step.get("stats") or {}).items():
                counter[key] += value["total"] if isinstance(value, dict) else value
    return [{"name": name, "stats": dict(c)} for name, c in merged.items()]


def reader_counts(steps: list[dict[str, Any]]) -> tuple[int, int, dict[str, int]]:
    """(documents read, records rejected, skipped by reason) from a phase's reader step stats."""
    reader = next((s for s in steps if "READER" in s["name"]), None)
    if reader is None:
        raise AccountingError("the first phase has no reader step stats")
    stats = reader["stats"]
    skipped = {k.removeprefix("skipped_"): int(v) for k, v in stats.items() if k.startswith("skipped_")}
    return int(stats.get("documents", 0)), int(stats.get("rejected", 0)), skipped


@dataclass
class StageCounts:
    """The conservation terms of one stage (``skipped`` by reason)."""

    documents_in: int
    kept: int
    removed: int = 0
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    removed_by_reason: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"balanced": self.balance() == 0}

    def balance(self) -> int:
        """``in - (kept + removed + rejected + skipped)``: 0 when every document is accounted for."""
        return self.documents_in - (self.kept + self.removed + self.rejected + sum(self.skipped.values()))


def check_conservation(stage: str, counts: StageCounts) -> None:
    """Raise :class:`AccountingError` (one line naming the stage) unless in = kept + removed + rejected + skipped."""
    for name in ("documents_in", "kept", "removed", "rejected"):
        if getattr(counts, name) < 0:
            raise AccountingError(f"stage {stage!r}: negative count {name}={getattr(counts, name)}")
    if any(v < 0 for v in counts.skipped.values()):
        raise AccountingError(f"stage {stage!r}: negative skipped count {counts.skipped}")
    diff = counts.balance()
    if diff:
        skipped = sum(counts.skipped.values())
        what = f"{diff} document(s) unaccounted for" if diff > 0 else f"{-diff} more out than in"
        raise AccountingError(
            f"stage {stage!r}: documents do not add up: {counts.documents_in} in != {counts.kept} kept + "
            f"{counts.removed} removed + {counts.rejected} rejected + {skipped} skipped ({what})")

"""Mixing processed shards into a training corpus: token arithmetic, a cheap deterministic plan, a writer.

1. **Allocate** (:func:`allocate`): every source has available tokens ``A`` and either a weight or a token
   target, and a cap ``max_epochs`` (upsampling limit). With weights and no ``total_tokens`` the mix is the
   largest one that keeps the requested shares exactly without exceeding any cap; with ``total_tokens`` each
   source gets its share, capped (and, with ``fill_shortfall``, the deficit is redistributed by weight).
2. **Plan** (:func:`build_plan`): from ids, token counts (and ``math_score`` for the ``score`` rule) only. A
   source used ``e`` epochs contributes ``floor(e)`` full passes plus a subset of ``frac(e) * A`` tokens chosen
   by the downsampling rule: ``random`` (seeded hash order) or ``score`` (highest ``math_score`` first). All
   A source with ``dup_count_power`` instead weights each document by ``dup_count ** power`` (the copies dedup
   found; :func:`dup_weighted_copies`), up to ``max_epochs`` copies each. All
   copies are shuffled across sources by a seeded hash of (id, copy) and cut into shards by rows and/or
   estimated bytes. Keys are hashes of ids, not positions, so the plan does not depend on input file order.
3. **Write**: ``scatter`` reads each input file once and drops its selected rows into per-shard buckets;
   ``write_shard`` sorts a shard's buckets by plan position and writes one zstd Parquet file atomically. Both
   are per-file / per-shard, so ranks can run them in parallel; reruns skip finished work and produce
   byte-identical shards. :func:`write_release_manifest` writes ``manifest.json`` beside the shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import xxhash
from pydantic import BaseModel, ConfigDict, Field, model_validator

from corpus import __version__
from corpus.errors import MathcorpusError
from corpus.io import PARQUET_EXT, atomic_open, open_file, resolve_document_inputs, write_json
from corpus.schema import DOCUMENT_SCHEMA, conform_table

COPY_SEP = "#"  # id of the k-th repeated copy of a document: f"{id}#{k}" (k >= 1)
SHORTFALL_WARN = 0.5  # warn when a source (or the corpus) realizes less than this share of its token target


class MixError(MathcorpusError, ValueError):
    """A mix that cannot be planned or written; the message names the source or file."""


class MixSource(BaseModel):
    """One source of the mix: which documents, and how much of them."""

    model_config = ConfigDict(extra="forbid")
    input_paths: list[str] | None = Field(default=None, description="Parquet files/dirs/globs; default: all inputs")
    match: dict[str, str | list[str]] = Field(default_factory=dict,
                                              description="column -> value(s) a row must have, e.g. {source: web}")
    weight: float | None = Field(default=None, gt=0, description="relative share of the mix's tokens")
    tokens: int | None = Field(default=None, gt=0, description="token target for this source")
    max_epochs: float = Field(default=1.0, gt=0, description="upsampling cap: at most this many passes")
    downsample: Literal["random", "score"] = Field(default="random",
                                                   description="which docs a partial pass keeps")
    dup_count_power: float = Field(default=0.0, ge=0, description="weight each document by dup_count ** power "
                                   "(copies found by dedup, in its metadata): 0 ignores it, 1 gives a page copied "
                                   "n times n times the share, up to max_epochs")
    dup_count_cap: int | None = Field(default=None, ge=1, description="dup_count counted up to this")

    @model_validator(mode="after")
    def _one_target(self) -> MixSource:
        if (self.weight is None) == (self.tokens is None):
            raise ValueError("give exactly one of 'weight' or 'tokens'")
        if self.dup_count_power and self.downsample == "score":
            raise ValueError("dup_count_power picks documents by dup_count: use it with downsample: random")
        return self


class MixConfig(BaseModel):
    """The mix: sources by name, size of the corpus, shard layout, seed."""

    model_config = ConfigDict(extra="forbid")
    sources: dict[str, MixSource] = Field(min_length=1)
    total_tokens: int | None = Field(default=None, gt=0, description="corpus size in tokens (weights mode)")
    fill_shortfall: bool = Field(default=False, description="redistribute capped sources' deficit by weight")
    seed: int = 0
    shard_rows: int | None = Field(default=None, gt=0, description="max rows per output shard")
    shard_bytes: int | None = Field(default=256 * 2**20, gt=0, description="target bytes per shard (on disk, est.)")
    row_group_bytes: int = Field(default=64 * 2**20, gt=0, description="target uncompressed bytes per row group")
    compression_level: int = Field(default=3, ge=1, le=22, description="zstd level")
    prefix: str = Field(default="train", pattern=r"^[A-Za-z0-9_.-]+$", description="shard file name prefix")

    @model_validator(mode="after")
    def _same_mode(self) -> MixConfig:
        modes = {"weight" if s.weight is not None else "tokens" for s in self.sources.values()}
        if len(modes) > 1:
            raise ValueError("sources must all use 'weight' or all use 'tokens', not both")
        if "tokens" in modes and self.total_tokens is not None:
            raise ValueError("'total_tokens' applies to weights; with token targets leave it out")
        return self


# ---- 1. token arithmetic ---------------------------------------------------------------------------------


def allocate(available: Mapping[str, int], cfg: MixConfig) -> dict[str, float]:
    """Tokens to take from each source (may exceed its available tokens by up to ``max_epochs``)."""
    caps = {n: available[n] * s.max_epochs for n, s in cfg.sources.items()}
    if next(iter(cfg.sources.values())).tokens is not None:
        return {n: float(min(s.tokens, caps[n])) for n, s in cfg.sources.items()}
    w = {n: s.weight / sum(x.weight for x in cfg.sources.values()) for n, s in cfg.sources.items()}
    if cfg.total_tokens is None:
        total = min(caps[n] / w[n] for n in w)
        return {n: w[n] * total for n in w}
    target = {n: min(w[n] * cfg.total_tokens, caps[n]) for n in w}
    if cfg.fill_shortfall:  # water-filling: hand the deficit to uncapped sources by weight, until none is left
        for _ in range(len(w)):
            deficit = cfg.total_tokens - sum(target.values())
            open_ = [n for n in w if target[n] < caps[n] - 1e-9]
            if deficit <= 1e-9 or not open_:
                break
            ws = sum(w[n] for n in open_)
            for n in open_:
                target[n] = min(caps[n], target[n] + deficit * w[n] / ws)
    return target


def dup_weighted_copies(tokens: np.ndarray, weight: np.ndarray, rnd: np.ndarray, target: float,
                        max_epochs: float) -> np.ndarray:
    """Copies per document proportional to ``weight`` (``dup_count ** power``), each at most ``max_epochs``,
    tokens summing to about ``target``: the share capped documents cannot take goes to the others (a few
    water-filling passes); fractions are rounded up for documents whose hash ``rnd`` falls below them."""
    expected = np.zeros(len(tokens))
    free = tokens > 0
    for _ in range(8):
        left = target - float((expected * tokens)[~free].sum())
        mass = float((weight * tokens)[free].sum())
        if left <= 0 or mass <= 0:
            break
        expected[free] = weight[free] * left / mass
        over = free & (expected >= max_epochs)
        if not over.any():
            break
        expected[over] = max_epochs
        free &= ~over
    whole = np.floor(expected)
    return (whole + ((rnd / 2.0**64) < expected - whole)).astype(np.int64)


def _dup_counts(table: pa.Table, rows: np.ndarray) -> np.ndarray:
    """``dup_count`` of the metadata JSON of ``rows`` (1 where dedup did not record one)."""
    meta = table.column("metadata").take(pa.array(rows)).to_pylist()
    return np.array([json.loads(m).get("dup_count", 1) if m else 1 for m in meta], dtype=np.float64)


def _hash_keys(ids: Sequence[str], salt: str) -> np.ndarray:
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(f"{salt}\x00{i}".encode()) for i in ids), dtype=np.uint64, count=len(ids))


def select_copies(tokens: np.ndarray, priority: np.ndarray, target: float) -> np.ndarray:
    """How many copies of each document to take so that their tokens reach ``target``.

    ``floor(target / A)`` full passes, then docs in ``priority`` order (ascending) while the cumulative
    tokens stay nearest the remainder (a doc is taken when its midpoint falls before the remainder).
    """
    copies = np.zeros(len(tokens), dtype=np.int64)
    total = int(tokens.sum())
    if total == 0 or target <= 0:
        return copies
    full = int(target // total)
    copies += full
    rest = target - full * total
    if rest > 0:
        order = np.argsort(priority, kind="stable")
        cum = np.cumsum(tokens[order])
        take = (cum - tokens[order] / 2.0) < rest
        copies[order[take]] += 1
    return copies


# ---- 2. the plan -----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which row of which input file goes to which shard position. Arrays are aligned (one entry per copy)."""

    files: list[str]
    file_idx: np.ndarray  # int32
    row: np.ndarray  # int64, row index in its file
    copy: np.ndarray  # int32, 0 = first copy
    source: np.ndarray  # int16, index into source_names
    n_tokens: np.ndarray  # int64
    shard: np.ndarray  # int32
    pos: np.ndarray  # int64, position within the shard
    source_names: list[str]
    n_shards: int
    report: dict[str, Any]  # per-source arithmetic
    file_rows: list[int] | None = None  # rows of each input file
    unmatched: dict[str, Any] | None = None  # rows of the input files that no source selects, by match values

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.files).encode())
        for a in (self.file_idx, self.row, self.copy, self.shard, self.pos):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def shard_name(self, shard: int, prefix: str) -> str:
        return f"{prefix}-{shard:05d}-of-{self.n_shards:05d}.parquet"

    def save(self, path: str) -> None:
        table = pa.table({"file_idx": self.file_idx, "row": self.row, "copy": self.copy, "source": self.source,
                          "n_tokens": self.n_tokens, "shard": self.shard, "pos": self.pos})
        meta = {"files": self.files, "source_names": self.source_names, "n_shards": self.n_shards,
                "report": self.report, "file_rows": self.file_rows, "unmatched": self.unmatched}
        table = table.replace_schema_metadata({b"mathcorpus.plan": json.dumps(meta).encode()})
        with atomic_open(path, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")

    @classmethod
    def load(cls, path: str) -> Plan:
        with open_file(path, "rb") as fh:
            table = pq.read_table(fh)
        meta = json.loads(table.schema.metadata[b"mathcorpus.plan"])
        cols = {c: table.column(c).to_numpy() for c in table.column_names}
        return cls(files=meta["files"], source_names=meta["source_names"], n_shards=meta["n_shards"],
                   report=meta["report"], file_rows=meta.get("file_rows"), unmatched=meta.get("unmatched"), **cols)


def _read_columns(path: str, wanted: Sequence[str]) -> tuple[pa.Table, int]:
    try:
        with open_file(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            names = pf.schema_arrow.names
            if "id" not in names:
                raise MixError(f"{path}: not a mathcorpus shard: no 'id' column")
            cols = [c for c in wanted if c in names]
            table = pf.read(columns=cols)
    except (OSError, pa.ArrowInvalid) as e:
        raise MixError(f"{path}: not a readable Parquet file: {e}") from None
    for c in wanted:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows))
    size = _file_size(path)
    return table, size


def _file_size(path: str) -> int:
    import fsspec

    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    return int(fs.size(p))


def _ensure_tokens(path: str, table: pa.Table, tokenizer: str) -> np.ndarray:
    """``n_tokens`` of a file's rows; rows without a count are counted now (the text column is read)."""
    tok = table.column("n_tokens")
    if tok.null_count == 0:
        return tok.to_numpy().astype(np.int64)
    from corpus.tokens import count_tokens

    with open_file(path, "rb") as fh:
        text = pq.read_table(fh, columns=["text"]).column("text").to_pylist()
    filled = np.array(count_tokens(text, tokenizer), dtype=np.int64)
    have = tok.is_valid().to_numpy(zero_copy_only=False)
    known = tok.fill_null(0).to_numpy().astype(np.int64)
    return np.where(have, known, filled)


def _matches(table: pa.Table, match: Mapping[str, str | list[str]], path: str) -> np.ndarray:
    mask = np.ones(table.num_rows, dtype=bool)
    for col, want in match.items():
        values = [want] if isinstance(want, str) else list(want)
        column = table.column(col).cast(pa.string())
        mask &= pc.fill_null(pc.is_in(column, value_set=pa.array(values, pa.string())), False).to_numpy(
            zero_copy_only=False)
    return mask


def build_plan(cfg: MixConfig, default_inputs: str | Sequence[str] | None = None,
               tokenizer: str = "qwen2") -> Plan:
    """Plan the mix from ids, token counts and (for ``score``) math scores of the input files."""
    per_source: dict[str, list[tuple[int, np.ndarray, np.ndarray, np.ndarray, list[str]]]] = {}
    dups: dict[str, list[np.ndarray]] = {}  # dup_count per selected row, for sources weighting by it
    files: list[str] = []
    file_index: dict[str, int] = {}
    bpt: dict[int, float] = {}  # on-disk bytes per token, per file (shard size estimate)
    cache: dict[str, tuple[pa.Table, np.ndarray]] = {}
    matched: dict[str, np.ndarray] = {}  # per file: rows some source selects
    for name, src in cfg.sources.items():
        patterns = src.input_paths or default_inputs
        if not patterns:
            raise MixError(f"sources.{name}: no input_paths and no default input to select from")
        try:
            paths = resolve_document_inputs(patterns, exts=PARQUET_EXT)  # a command's output: its kept/
        except MathcorpusError as e:
            raise MixError(f"sources.{name}: {e}") from None
        wanted = ["id", "n_tokens", "math_score", *src.match] + (["metadata"] if src.dup_count_power else [])
        per_source[name], dups[name] = [], []
        for path in paths:
            if path not in cache:
                table, size = _read_columns(path, sorted({"id", "n_tokens", "math_score", *src.match}))
                tokens = _ensure_tokens(path, table, tokenizer)
                cache[path] = (table, tokens)
                file_index[path] = len(files)
                files.append(path)
                bpt[file_index[path]] = size / max(1, int(tokens.sum()))
            table, tokens = cache[path]
            missing = [c for c in wanted if c not in table.column_names]
            if missing:  # a match column first seen for this path
                more, _ = _read_columns(path, missing)
                for c in missing:
                    table = table.append_column(c, more.column(c))
                cache[path] = (table, tokens)
            mask = _matches(table, src.match, path) if src.match else np.ones(table.num_rows, dtype=bool)
            matched[path] = matched.get(path, np.zeros(table.num_rows, dtype=bool)) | mask
            rows = np.nonzero(mask)[0]
            score = table.column("math_score").cast(pa.float64()).fill_null(-1.0).to_numpy()[rows]
            ids = table.column("id").cast(pa.string()).take(pa.array(rows)).to_pylist()
            per_source[name].append((file_index[path], rows, tokens[rows], score, ids))
            if src.dup_count_power:
                dups[name].append(_dup_counts(table, rows))

    available = {n: int(sum(int(t.sum()) for _, _, t, _, _ in parts)) for n, parts in per_source.items()}
    empty = [n for n, a in available.items() if a == 0]
    if empty:
        raise MixError(f"sources.{empty[0]}: selects no documents (or only empty ones) from its inputs")
    _check_disjoint(per_source)
    targets = allocate(available, cfg)
    bpt_arr = np.array([bpt[i] for i in range(len(files))], dtype=np.float64)

    chunks: dict[str, list[np.ndarray]] = {k: [] for k in ("file_idx", "row", "copy", "source", "tok", "key", "b")}
    report: dict[str, Any] = {}
    for s_idx, (name, parts) in enumerate(per_source.items()):
        src = cfg.sources[name]
        f_idx = np.concatenate([np.full(len(r), f, dtype=np.int32) for f, r, _, _, _ in parts])
        rows = np.concatenate([r for _, r, _, _, _ in parts]).astype(np.int64)
        tok = np.concatenate([t for _, _, t, _, _ in parts])
        ids = [i for *_, ii in parts for i in ii]
        rnd = _hash_keys(ids, f"{cfg.seed}\x00{name}")
        if src.downsample == "score":
            score = np.concatenate([s for _, _, _, s, _ in parts])
            priority = np.lexsort((rnd, -score))  # best score first, hash breaks ties
            rank = np.empty(len(priority), dtype=np.int64)
            rank[priority] = np.arange(len(priority))
        else:
            rank = rnd
        if src.dup_count_power:
            weight = np.minimum(np.concatenate(dups[name]), src.dup_count_cap or np.inf) ** src.dup_count_power
            copies = dup_weighted_copies(tok, weight, rnd, targets[name], src.max_epochs)
        else:
            copies = select_copies(tok, rank, targets[name])
        rep = np.repeat(np.arange(len(copies)), copies)
        copy_no = _copy_numbers(copies)
        ids_rep = [ids[i] for i in rep]
        key = _hash_keys([f"{i}\x00{c}" for i, c in zip(ids_rep, copy_no.tolist(), strict=True)], f"{cfg.seed}\x01")
        chunks["file_idx"].append(f_idx[rep])
        chunks["row"].append(rows[rep])
        chunks["copy"].append(copy_no.astype(np.int32))
        chunks["source"].append(np.full(len(rep), s_idx, dtype=np.int16))
        chunks["tok"].append(tok[rep])
        chunks["key"].append(key)
        chunks["b"].append(tok[rep] * bpt_arr[f_idx[rep]])
        report[name] = {"available_documents": len(tok), "available_tokens": available[name],
                        "target_tokens": round(targets[name]), "max_epochs": src.max_epochs,
                        "downsample": src.downsample, "requested_weight": src.weight, "requested_tokens": src.tokens}

    cat = {k: np.concatenate(v) for k, v in chunks.items()}
    order = np.lexsort((cat["copy"], cat["row"], cat["file_idx"], cat["key"]))
    cat = {k: v[order] for k, v in cat.items()}
    shard = assign_shards(cat["b"], cfg.shard_rows, cfg.shard_bytes)
    n_shards = int(shard.max()) + 1 if len(shard) else 0
    starts = np.searchsorted(shard, np.arange(n_shards))
    pos = np.arange(len(shard), dtype=np.int64) - starts[shard] if len(shard) else np.zeros(0, dtype=np.int64)
    match_cols = sorted({c for s in cfg.sources.values() for c in s.match}) or ["source"]
    return Plan(files=files, file_idx=cat["file_idx"], row=cat["row"], copy=cat["copy"], source=cat["source"],
                n_tokens=cat["tok"], shard=shard, pos=pos, source_names=list(per_source), n_shards=n_shards,
                report=report, file_rows=[cache[f][0].num_rows for f in files],
                unmatched=unmatched_rows({f: cache[f][0] for f in files}, matched, match_cols))


def unmatched_rows(tables: Mapping[str, pa.Table], matched: Mapping[str, np.ndarray],
                   columns: Sequence[str]) -> dict[str, Any]:
    """Rows that no source selects: their count and their counts by the values of the match ``columns``."""
    groups: dict[tuple, int] = {}
    for path, table in tables.items():
        rows = np.nonzero(~matched[path])[0]
        if not len(rows):
            continue
        picked = table.take(pa.array(rows))
        values = [picked.column(c).cast(pa.string()).to_pylist() if c in picked.column_names else [None] * len(rows)
                  for c in columns]
        for key in zip(*values, strict=True):
            groups[key] = groups.get(key, 0) + 1
    by = [{"values": dict(zip(columns, k, strict=True)), "documents": n}
          for k, n in sorted(groups.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return {"documents": sum(groups.values()), "columns": list(columns), "by": by}


def _check_disjoint(per_source: Mapping[str, list[tuple]]) -> None:
    """A document may belong to one source only (else it would be mixed twice under one id)."""
    if len(per_source) < 2:
        return
    keys = {name: np.concatenate([f * (1 << 40) + r.astype(np.int64) for f, r, *_ in parts]) if parts else
            np.zeros(0, dtype=np.int64) for name, parts in per_source.items()}
    names = list(keys)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = np.intersect1d(keys[a], keys[b])
            if len(both):
                raise MixError(f"sources.{a} and sources.{b} select the same {len(both)} document(s); make their "
                               "'match' / 'input_paths' disjoint")


def _copy_numbers(copies: np.ndarray) -> np.ndarray:
    """For ``np.repeat(arange, copies)``: 0, 1, ... within each document's run."""
    total = int(copies.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(copies) - copies, copies)
    return np.arange(total, dtype=np.int64) - starts


def assign_shards(est_bytes: np.ndarray, shard_rows: int | None, shard_bytes: int | None) -> np.ndarray:
    """Shard index of each position: a new shard starts when the rows or estimated bytes would overflow."""
    n = len(est_bytes)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    if shard_bytes:
        before = np.cumsum(est_bytes) - est_bytes
        by_bytes = np.floor(before / shard_bytes).astype(np.int64)
    else:
        by_bytes = np.zeros(n, dtype=np.int64)
    if shard_rows:
        group_start = np.searchsorted(by_bytes, by_bytes)  # by_bytes is non-decreasing
        sub = (np.arange(n) - group_start) // shard_rows
        combined = by_bytes * (n + 1) + sub
    else:
        combined = by_bytes
    change = np.concatenate([[0], (np.diff(combined) != 0).astype(np.int64)])
    return np.cumsum(change).astype(np.int32)


# ---- 3. writing ------------------------------------------------------------------------------------------


def _bucket_path(work_dir: str, shard: int, file_idx: int) -> str:
    return f"{work_dir}/buckets/{shard:05d}/{file_idx:05d}.arrow"


def scatter(plan: Plan, file_idx: int, work_dir: str) -> dict[str, Any]:
    """Read input file ``file_idx`` once; write its planned rows into per-shard bucket files (atomic).

    Returns (and stores under ``work_dir/inputs``) the file's sha256, size and rows for the release manifest.
    """
    done = f"{work_dir}/inputs/{file_idx:05d}.json"
    if os.path.exists(done):
        with open(done, encoding="utf-8") as fh:
            return json.load(fh)
    path = plan.files[file_idx]
    with open_file(path, "rb") as fh:
        data = fh.read()
    try:
        table = conform_table(pq.read_table(pa.BufferReader(data)), path=path)
    except pa.ArrowInvalid as e:
        raise MixError(f"{path}: not a readable Parquet file: {e}") from None
    sel = np.nonzero(plan.file_idx == file_idx)[0]
    sel = sel[np.lexsort((plan.row[sel], plan.shard[sel]))]  # sequential reads; write_shard orders by pos
    if len(sel) and int(plan.row[sel].max()) >= table.num_rows:
        raise MixError(f"{path}: has {table.num_rows} rows, fewer than when the mix was planned (changed input?)")
    shards = plan.shard[sel]
    bounds = np.flatnonzero(np.diff(shards)) + 1
    for part in np.split(sel, bounds) if len(sel) else []:
        piece = table.take(pa.array(plan.row[part]))
        copies = plan.copy[part]
        if copies.any():
            suffix = pa.array([f"{COPY_SEP}{c}" if c else "" for c in copies.tolist()], pa.string())
            piece = piece.set_column(0, "id", pc.binary_join_element_wise(piece.column("id"), suffix, ""))
        n_tok = piece.schema.get_field_index("n_tokens")
        piece = piece.set_column(n_tok, "n_tokens", pa.array(plan.n_tokens[part], pa.int64()))
        piece = piece.append_column("_pos", pa.array(plan.pos[part], pa.int64()))
        with atomic_open(_bucket_path(work_dir, int(plan.shard[part[0]]), file_idx), "wb") as out, \
                ipc.new_file(out, piece.schema) as writer:
            writer.write_table(piece)
    info = {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": table.num_rows,
            "rows_used": int(len(np.unique(plan.row[sel]))) if len(sel) else 0}
    write_json(info, done)
    return info


def write_shard(plan: Plan, shard: int, work_dir: str, out_dir: str, cfg: MixConfig) -> dict[str, Any]:
    """Gather a shard's buckets, order them by plan position and write the shard (atomic, zstd)."""
    name = plan.shard_name(shard, cfg.prefix)
    target = f"{out_dir}/{name}"
    info_path = f"{work_dir}/shards/{shard:05d}.json"
    if os.path.exists(info_path) and os.path.exists(target):
        with open(info_path, encoding="utf-8") as fh:
            return json.load(fh)
    in_shard = plan.shard == shard
    expected = int(in_shard.sum())
    pieces = []
    for f in np.unique(plan.file_idx[in_shard]).tolist():
        with pa.memory_map(_bucket_path(work_dir, shard, f), "r") as src:
            pieces.append(ipc.open_file(src).read_all())
    if not pieces:
        raise MixError(f"shard {name}: no buckets found under {work_dir}/buckets (rerun the scatter)")
    table = pa.concat_tables(pieces, promote_options="default")  # buckets may differ in nullability
    if table.num_rows != expected:
        raise MixError(f"shard {name}: {table.num_rows} rows in buckets, {expected} planned (rerun the scatter)")
    table = table.take(pc.sort_indices(table.column("_pos")))
    table = table.drop_columns(["_pos"]).select(DOCUMENT_SCHEMA.names).cast(DOCUMENT_SCHEMA)
    avg = table.nbytes / max(1, table.num_rows)
    rg_rows = int(min(100_000, max(256, cfg.row_group_bytes // max(1, avg))))
    with atomic_open(target, "wb") as fh:
        pq.write_table(table, fh, row_group_size=rg_rows, compression="zstd",
                       compression_level=cfg.compression_level, write_statistics=["source", "lang", "n_tokens"])
    with open_file(target, "rb") as fh:
        data = fh.read()
    counts = np.bincount(plan.source[in_shard], minlength=len(plan.source_names))
    info = {"file": name, "rows": table.num_rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "tokens": int(plan.n_tokens[in_shard].sum()), "row_group_rows": rg_rows,
            "rows_by_source": {n: int(c) for n, c in zip(plan.source_names, counts, strict=True)}}
    write_json(info, info_path)
    return info


def release_manifest(plan: Plan, cfg: MixConfig, inputs: list[dict], shards: list[dict]) -> dict[str, Any]:
    """The ``manifest.json`` content: config, inputs with sha256, per-source arithmetic, shards with sha256."""
    total_tokens = int(plan.n_tokens.sum())
    sources = {}
    weights = {n: s.weight for n, s in cfg.sources.items()}
    wsum = sum(w for w in weights.values() if w) or None
    for i, name in enumerate(plan.source_names):
        sel = plan.source == i
        rep = plan.report[name]
        tokens = int(plan.n_tokens[sel].sum())
        requested = (weights[name] / wsum) if wsum else (cfg.sources[name].tokens / max(1, sum(
            s.tokens for s in cfg.sources.values())))
        sources[name] = rep | {
            "documents": int(sel.sum()), "unique_documents": int((plan.copy[sel] == 0).sum()),
            "tokens": tokens, "epochs": round(tokens / rep["available_tokens"], 4) if rep["available_tokens"] else 0,
            "requested_share": round(requested, 6),
            "realized_share": round(tokens / total_tokens, 6) if total_tokens else 0.0,
        }
    return {
        "accounting": accounting(plan), "warnings": shortfall_warnings(cfg, sources, total_tokens),
        "unmatched": plan.unmatched,
        "tool": "mathcorpus mix", "version": __version__, "format": "parquet", "compression": "zstd",
        "schema": [f"{f.name}: {f.type}" for f in DOCUMENT_SCHEMA], "config": cfg.model_dump(mode="json"),
        "plan_sha256": plan.digest(), "documents": len(plan.shard), "tokens": total_tokens,
        "sources": sources, "inputs": inputs, "shards": shards,
        "id_copies": f"the k-th repeat (k >= 1) of a document has id '<id>{COPY_SEP}<k>'",
    }


def accounting(plan: Plan) -> dict[str, Any] | None:
    """Every input row is used (kept, possibly repeated), left out by the sampling (removed) or matched by no
    source (skipped): ``documents_in = kept + removed + skipped``."""
    if plan.file_rows is None or plan.unmatched is None:
        return None
    used = len(np.unique(plan.file_idx.astype(np.int64) * (1 << 40) + plan.row)) if len(plan.row) else 0
    matched = sum(int(r["available_documents"]) for r in plan.report.values())
    return {"documents_in": int(sum(plan.file_rows)), "kept": used, "removed": matched - used,
            "removed_reason": "not_sampled", "skipped": {"no_mix_source": int(plan.unmatched["documents"])}}


def shortfall_warnings(cfg: MixConfig, sources: Mapping[str, Mapping[str, Any]], total: int) -> list[str]:
    """Token targets the mix realizes less than ``SHORTFALL_WARN`` of (too little data, or ``max_epochs``)."""
    out = []
    weights = sum(s.weight or 0 for s in cfg.sources.values())
    for name, src in cfg.sources.items():
        want = src.tokens if src.tokens is not None else (
            src.weight / weights * cfg.total_tokens if cfg.total_tokens else None)
        got = sources[name]["tokens"]
        if want and got < SHORTFALL_WARN * want:
            out.append(f"sources.{name}: {got:,} tokens realized, {got / want:.2%} of the {round(want):,} requested "
                       f"({sources[name]['available_tokens']:,} available, max_epochs {src.max_epochs})")
    if cfg.total_tokens and total < SHORTFALL_WARN * cfg.total_tokens:
        out.append(f"total_tokens: {total:,} tokens realized, {total / cfg.total_tokens:.2%} of the "
                   f"{cfg.total_tokens:,} requested")
    return out


def write_release_manifest(plan: Plan, cfg: MixConfig, work_dir: str, out_dir: str) -> dict[str, Any]:
    inputs = [_load_json(f"{work_dir}/inputs/{i:05d}.json") for i in range(len(plan.files))]
    shards = [_load_json(f"{work_dir}/shards/{s:05d}.json") for s in range(plan.n_shards)]
    manifest = release_manifest(plan, cfg, inputs, shards)
    write_json(manifest, f"{out_dir}/manifest.json")
    return manifest


def _load_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise MixError(f"{path}: missing (a mix step did not complete; rerun to resume)") from None


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def remove_stale_shards(plan: Plan, cfg: MixConfig, out_dir: str) -> None:
    """Delete shard files in ``out_dir`` that this plan does not produce (from an earlier, different mix)."""
    if not os.path.isdir(out_dir):
        return
    keep = {plan.shard_name(s, cfg.prefix) for s in range(plan.n_shards)}
    for name in os.listdir(out_dir):
        if name.endswith(".parquet") and name not in keep:
            os.remove(os.path.join(out_dir, name))


def prepare(cfg: MixConfig, work_dir: str, default_inputs=None, tokenizer: str = "qwen2") -> Plan:
    """Plan the mix and store it in ``work_dir/plan.parquet``; a changed plan clears stale intermediate files."""
    import shutil

    plan = build_plan(cfg, default_inputs, tokenizer)
    digest = plan.digest()
    stamp = f"{work_dir}/plan.sha256"
    if os.path.exists(stamp) and _read_text(stamp).strip() != digest:
        for sub in ("buckets", "inputs", "shards"):
            shutil.rmtree(f"{work_dir}/{sub}", ignore_errors=True)
    plan.save(f"{work_dir}/plan.mixplan")
    with atomic_open(stamp, "wb") as fh:
        fh.write(digest.encode())
    return plan


def run_mix(cfg: MixConfig, out_dir: str, work_dir: str | None = None, default_inputs=None,
            tokenizer: str = "qwen2", progress=None) -> dict[str, Any]:
    """Plan, scatter, write and describe a mix in this process (the CLI; the pipeline stage uses ranks)."""
    import shutil

    work_dir = work_dir or f"{out_dir}/.mix-work"
    plan = prepare(cfg, work_dir, default_inputs, tokenizer)
    remove_stale_shards(plan, cfg, out_dir)
    missing = [s for s in range(plan.n_shards) if not os.path.exists(f"{out_dir}/{plan.shard_name(s, cfg.prefix)}")]
    if missing and not os.path.isdir(f"{work_dir}/buckets"):  # buckets were cleaned up: scatter again
        shutil.rmtree(f"{work_dir}/inputs", ignore_errors=True)
    for i in range(len(plan.files)):
        scatter(plan, i, work_dir)
    for s in range(plan.n_shards):
        write_shard(plan, s, work_dir, out_dir, cfg)
        if progress:
            progress(f"shard {s + 1}/{plan.n_shards}")
    manifest = write_release_manifest(plan, cfg, work_dir, out_dir)
    if work_dir == f"{out_dir}/.mix-work":
        shutil.rmtree(f"{work_dir}/buckets", ignore_errors=True)
    return manifest


def epochs_summary(manifest: Mapping[str, Any]) -> str:
    """One line per source: tokens, epochs, requested vs realized share."""
    lines = []
    for name, s in manifest["sources"].items():
        lines.append(f"{name}: {s['tokens']:,} tokens, {s['epochs']:.2f} epochs, share {s['realized_share']:.3f} "
                     f"(requested {s['requested_share']:.3f})")
    return "\n".join(lines)

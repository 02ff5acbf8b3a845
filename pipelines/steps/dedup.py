"""Dedup steps, one per phase: signatures -> bucket pairs -> verified edges -> label rounds -> filter.

Survivors leave with ``dup_count``, ``dup_sources`` and ``dup_domains`` in their metadata (cluster size and
the copies' origins, :mod:`corpus.dedup.clusters`), summarized in the converged label round.

All state between phases is files under ``work_root`` (layout in :mod:`corpus.dedup.store`); every task
reads its own shard plus memory-mapped look-ups into others, so memory is bounded by a shard.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.dedup.buckets import PAIR_DTYPE, bucket_pairs, pair_owner, unique_pairs
from corpus.dedup.clusters import merge, summarize, survivor_metadata
from corpus.dedup.components import LABEL_DTYPE, NODE_LABEL_DTYPE, propagation_round_parts
from corpus.dedup.minhash import DocFeatures, band_keys, batch_features, signatures
from corpus.dedup.params import DedupConfig
from corpus.dedup.parts import budget_parts, merged_runs
from corpus.dedup.priority import PriorityConfig, id_hash, priority_key
from corpus.dedup.store import (
    BAND_DTYPE,
    INDEX_RANK_BASE,
    META_DTYPE,
    ArraySpill,
    RaggedSpill,
    ShardSet,
    band_file,
    exists,
    gid_of,
    load_array,
    save_array,
    shard_dir,
    spill_dir,
    split_gid,
)
from corpus.dedup.verify import is_duplicate
from corpus.io import atomic_open, expand_paths, open_file, write_json
from pipelines.steps.io import RemovedSink

EDGE_DTYPE = np.dtype([("src", "<u8"), ("dst", "<u8")])
REMOVED_FIELDS = [pa.field("cluster_id", pa.string()), pa.field("kept_id", pa.string()),
                  pa.field("similarity", pa.float32())]


def _npy_files(folder: str) -> list[str]:
    try:
        return expand_paths(folder, exts=(".npy",)) if exists(folder) else []
    except Exception:
        return []


def index_shards(index_root: str | None) -> list[int]:
    """Shard numbers of a saved index (empty without one)."""
    if not index_root:
        return []
    with open_file(f"{index_root}/index.json", "rb") as fh:
        return list(range(json.load(fh)["shards"]))


def _code(names: dict[str, int], value) -> int:
    """``value``'s code in ``names`` (added when new); -1 for none or empty."""
    return names.setdefault(str(value), len(names)) if value else -1


class _ShardBuilder:
    """One shard's signature files, built a batch at a time: shingles, tokens and each band's keys go to local
    spill files, ids to JSON fragments and origins to codes into their distinct names, so a task holds one batch
    plus ~60 bytes per document (meta rows, offsets, origin codes, the first copy of each distinct text), not
    the shard's shingles and tokens."""

    def __init__(self, work_root: str, rank: int, bands: int):
        self.work_root, self.rank, self.bands = work_root, rank, bands
        spill = spill_dir(work_root)
        self.shingles, self.tokens = RaggedSpill(spill), RaggedSpill(spill)
        self.band_spill = [ArraySpill(spill, np.uint64) for _ in range(bands)]
        self.meta = np.empty(1024, dtype=META_DTYPE)
        self.nonempty: list[np.ndarray] = []
        self.ids: list[str] = []
        self.origin_names: dict[str, dict[str, int]] = {"source": {}, "domain": {}}  # name -> code
        self.origins: list[np.ndarray] = []  # per batch: (source, domain) codes, -1 for none

    def __len__(self) -> int:
        return len(self.shingles)

    def add(self, meta_rows: list[tuple], shingles: list[np.ndarray], tokens: list[np.ndarray],
            keys: np.ndarray, ids: list[str], origins: list) -> None:
        """A batch: its meta rows, shingles, tokens, band keys of its documents with shingles (exact band
        last) and ids / origins."""
        n0, n = len(self), len(meta_rows)
        if n0 + n > len(self.meta):
            self.meta = np.resize(self.meta, max(n0 + n, 2 * len(self.meta)))
        self.meta[n0 : n0 + n] = np.array(meta_rows, dtype=META_DTYPE) if n else self.meta[:0]
        self.shingles.append(shingles)
        self.tokens.append(tokens)
        self.nonempty.append(n0 + np.flatnonzero([len(x) > 0 for x in shingles]).astype(np.int64))
        for band, spill in enumerate(self.band_spill):
            spill.append(keys[:, band])
        if ids:
            self.ids.append(json.dumps(ids, ensure_ascii=False)[1:-1])
            src, dom = self.origin_names.values()
            codes = [(_code(src, s), _code(dom, d)) for s, d in origins]
            self.origins.append(np.array(codes, dtype=np.int32).reshape(-1, 2))

    def exact(self, i: int) -> tuple[int, int]:
        return int(self.meta["exact0"][i]), int(self.meta["exact1"][i])

    def save(self) -> None:
        d = shard_dir(self.work_root, self.rank)
        self.shingles.save(f"{d}/shingles")
        self.tokens.save(f"{d}/tokens")
        with atomic_open(f"{d}/ids.json", "wb") as fh:
            fh.write(("[" + ", ".join(self.ids) + "]").encode("utf-8"))
        save_array(np.concatenate(self.origins) if self.origins else np.empty((0, 2), np.int32), f"{d}/origins.npy")
        write_json({k: list(v) for k, v in self.origin_names.items()}, f"{d}/origin_names.json")
        nonempty = np.concatenate(self.nonempty) if self.nonempty else np.empty(0, np.int64)
        for band, spill in enumerate(self.band_spill):
            keys = spill.read(0, spill.size)
            rows = np.empty(len(nonempty), dtype=BAND_DTYPE)
            if len(nonempty):  # sorted by (key, idx): a lexsort on plain arrays (10x a structured sort)
                order = np.lexsort((nonempty, keys))
                rows["key"], rows["idx"] = keys[order], nonempty[order]
            save_array(rows, band_file(self.work_root, band, self.rank))
        save_array(self.meta[: len(self)], f"{d}/meta.npy")  # last: its presence marks the shard complete

    def close(self) -> None:
        for f in (self.shingles, self.tokens, *self.band_spill):
            f.close()


class DedupSignatures(PipelineStep):
    """Phase 1: features of this rank's documents -> meta, shingles, ids and sorted band files (written as the
    batches come, see :class:`_ShardBuilder`)."""

    name = "dedup signatures"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, config: DedupConfig, priority: PriorityConfig, batch: int = 512):
        super().__init__()
        self.work_root, self.config, self.priority, self.batch = work_root, config, priority, batch

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        cfg = self.config
        out = _ShardBuilder(self.work_root, rank, cfg.band_shape[0] + 1)
        first: dict[bytes, int] = {}  # byte-identical texts (common in crawls): featurized once, read back after
        pending: list[tuple[Document, bytes]] = []

        def flush() -> None:  # features of a batch at once (numpy over all its tokens), then one row per doc
            if not pending:
                return
            todo = list({key: doc.text for doc, key in pending if key not in first}.items())
            new = dict(zip((k for k, _ in todo), batch_features([t for _, t in todo], cfg.shingle_size),
                           strict=True))
            if len(pending) > len(todo):
                self.stat_update("same_text", value=len(pending) - len(todo))
            meta_rows, shingles, tokens, ids, origins = [], [], [], [], []
            for doc, key in pending:
                f = new.get(key)
                if f is None:  # the same text in an earlier batch: its rows, from the spill
                    j = first[key]
                    f = DocFeatures(out.exact(j), out.shingles.get(j), out.tokens.get(j))
                else:
                    first.setdefault(key, len(out) + len(meta_rows))
                row = {**doc.metadata, "text": doc.text}
                meta_rows.append((priority_key(row, self.priority) + 1, id_hash(doc.id), *f.exact))
                shingles.append(f.shingles)
                tokens.append(f.tokens)
                ids.append(doc.id)
                origins.append((doc.metadata.get("source"), doc.metadata.get("domain")))
                self.stat_update("documents")
                if not len(f.shingles):
                    self.stat_update("empty")
            nonempty = [i for i, x in enumerate(shingles) if len(x)]
            keys = np.empty((len(nonempty), cfg.band_shape[0] + 1), np.uint64)
            if nonempty:
                keys[:, :-1] = band_keys(signatures([shingles[i] for i in nonempty], cfg), cfg)
                keys[:, -1] = [meta_rows[i][2] for i in nonempty]
            out.add(meta_rows, shingles, tokens, keys, ids, origins)
            pending.clear()

        try:
            for doc in data or ():
                with self.track_time():
                    pending.append((doc, xxhash.xxh3_128_digest(doc.text.encode("utf-8", "surrogatepass"))))
                    if len(pending) >= self.batch:
                        flush()
            with self.track_time():
                flush()
                out.save()
        finally:
            out.close()
        return
        yield


MERGE_PAIRS = 1 << 20  # pairs merged at once over a bucket task's bands (16 MiB, plus the sort's copies)


class DedupBuckets(PipelineStep):
    """Phase 2: documents sharing a band key -> candidate pairs, routed to the owner shard.

    Task ``t`` handles key range ``t % partitions`` of every band ``b`` with ``b % groups == t // partitions``
    (``groups = world_size // partitions``), one band at a time, so memory is one band's key range; each band's
    pairs go to a spill file, merged without repeats by runs of ``a`` (:func:`corpus.dedup.parts.merged_runs`).
    """

    name = "dedup buckets"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, config: DedupConfig, shards: int, partitions: int = 1,
                 index_root: str | None = None):
        super().__init__()
        self.work_root, self.config, self.shards, self.partitions = work_root, config, shards, partitions
        self.index_root = index_root

    def _rows(self, path: str, lo: int, hi: int) -> np.ndarray:
        rows = load_array(path)
        keys = rows["key"]
        i = np.searchsorted(keys, np.uint64(lo))
        j = len(keys) if hi >= 2**64 else np.searchsorted(keys, np.uint64(hi))
        return np.asarray(rows[i:j])

    def _band_pairs(self, band: int, lo: int, hi: int) -> np.ndarray:
        keys, gids, skip = [], [], []
        sources = [(self.work_root, r, r, None) for r in range(self.shards)]
        if self.index_root:
            sources += [(self.index_root, s, INDEX_RANK_BASE + s, f"{self.index_root}/alive/{s:05d}.npy")
                        for s in index_shards(self.index_root)]
        for root, shard, grank, alive_path in sources:
            rows = self._rows(band_file(root, band, shard), lo, hi)
            if alive_path is not None:
                rows = rows[load_array(alive_path)[rows["idx"]]]
            keys.append(rows["key"])
            gids.append(gid_of(grank, rows["idx"]))
            skip.append(np.full(len(rows), alive_path is not None))
        self.stat_update("signatures", value=sum(len(k) for k in keys))
        return bucket_pairs(np.concatenate(keys), np.concatenate(gids), self.config.max_bucket_pairs,
                            np.concatenate(skip))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        group, part = divmod(rank, self.partitions)
        groups = max(1, world_size // self.partitions)
        lo, hi = (part * 2**64) // self.partitions, ((part + 1) * 2**64) // self.partitions
        spill = spill_dir(self.work_root)
        found = ArraySpill(spill, PAIR_DTYPE)  # each band's pairs (sorted), one after another
        targets = [ArraySpill(spill, PAIR_DTYPE) for _ in range(self.shards)]
        try:
            with self.track_time():
                segments = []
                for b in range(self.config.band_shape[0] + 1):
                    if b % groups == group:
                        start = found.size
                        found.append(self._band_pairs(b, lo, hi))
                        segments.append((start, found.size))
                # merged over bands by runs of `a` (every band's pairs sorted): one run in memory at a time
                n = 0
                for run in merged_runs(lambda: [found.view(i, j) for i, j in segments], MERGE_PAIRS):
                    pairs = unique_pairs(run)
                    n += len(pairs)
                    owner = pair_owner(pairs, self.shards)
                    for target, out in enumerate(targets):
                        out.append(pairs[owner == target])
                self.stat_update("candidate_pairs", value=n)
                for target, out in enumerate(targets):
                    out.save(f"{self.work_root}/pairs/{rank:05d}/{target:05d}.npy")
        finally:
            for f in (found, *targets):
                f.close()
        return
        yield


def gather_docs(store: ShardSet, gids: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The distinct documents of ``gids`` (sorted) and, per ragged array in ``names``, their rows packed:
    ``(values, offsets as a list)`` in that order. Reads only these documents' rows, straight into one array."""
    docs = np.unique(gids)
    shards = [(shard, rows) for shard, _, rows in store.groups(docs)]  # docs sorted by gid, so by shard
    packed = []
    for name in names:
        lengths = np.concatenate([shard.lengths(name, sel) for shard, sel in shards]) if shards else np.empty(0)
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values, pos = np.empty(int(offsets[-1]), dtype=np.uint32), 0
        for shard, sel in shards:
            n = int(offsets[pos + len(sel)] - offsets[pos])
            shard.gather(name, sel, out=values[offsets[pos] : offsets[pos] + n])
            pos += len(sel)
        packed.append((values, offsets.tolist()))
    return (docs, *packed)


class Joined:
    """Union-find over global ids of the documents joined by a task's duplicate pairs (ids never joined take
    no memory)."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        while (p := parent.get(x, x)) != x:
            parent[x] = x = parent.get(p, p)  # path halving
        return x

    def same(self, x: int, y: int) -> bool:
        return self.find(x) == self.find(y)

    def join(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


PAIR_BYTES = 320  # held per pair of a part while verified: the pair, positions and offsets as ints, result


class DedupVerify(PipelineStep):
    """Phase 3: this shard's candidate pairs checked on real shingles and a token diff -> symmetric edges.

    The pairs are taken in parts (:mod:`corpus.dedup.parts`): consecutive ``a`` values of the sorted pair files,
    cut until the part's documents (shingles and tokens, read from the shard files for that part only) and
    pairs fit ``memory_mb``. A task holds one part plus the accepted pairs, not its shard."""

    name = "dedup verify"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, config: DedupConfig, shards: int, index_root: str | None = None,
                 memory_mb: float = 128):
        super().__init__()
        self.work_root, self.config, self.shards, self.index_root = work_root, config, shards, index_root
        self.memory_mb = memory_mb

    def _doc_bytes(self, store: ShardSet, gids: np.ndarray) -> np.ndarray:
        """Bytes of shingles + tokens (uint32) of each document."""
        out = np.empty(len(gids), dtype=np.int64)
        for shard, sel, rows in store.groups(gids):
            out[sel] = (shard.lengths("shingles", rows) + shard.lengths("tokens", rows)) * 4
        return out

    def _verify(self, store: ShardSet, a: np.ndarray, b: np.ndarray, joined: Joined) -> tuple[np.ndarray, ...]:
        """``(duplicate, verified, similarity)`` of each pair; reads only these pairs' documents. A pair whose
        documents are already joined by this task's duplicates is not verified (it cannot change a cluster)."""
        docs, (sv, so), (tv, to) = gather_docs(store, np.concatenate([a, b]), ("shingles", "tokens"))
        pa_, pb = np.searchsorted(docs, a).tolist(), np.searchsorted(docs, b).tolist()
        n = len(pa_)
        keep, checked, sims = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.float32)
        for k, (x, y, i, j) in enumerate(zip(a.tolist(), b.tolist(), pa_, pb, strict=True)):
            if joined.same(x, y):
                continue
            ok, sim = is_duplicate(sv[so[i] : so[i + 1]], sv[so[j] : so[j + 1]], tv[to[i] : to[i + 1]],
                                   tv[to[j] : to[j + 1]], self.config)
            checked[k], sims[k] = True, sim
            if ok:
                keep[k] = True
                joined.join(x, y)
        return keep, checked, sims[checked]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            files = [f for f in _npy_files(f"{self.work_root}/pairs") if os.path.basename(f) == f"{rank:05d}.npy"]
            store = ShardSet(self.work_root, self.index_root)
            own = store.shard(rank)
            n_own = max(1, len(own.meta))
            per_doc = sum(int(own.offsets(x)[-1]) for x in ("shingles", "tokens")) * 4 / n_own
            budget = int(self.memory_mb * 2**20)
            max_pairs = max(1, int(budget // (PAIR_BYTES + 2 * per_doc)))
            good, hist = ArraySpill(spill_dir(self.work_root), PAIR_DTYPE), np.zeros(10, dtype=np.int64)
            n_pairs = n_good = n_joined = n_parts = max_held = 0
            joined = Joined()
            for run in merged_runs(lambda: [load_array(f) for f in files], max_pairs):  # mapped per run only
                chunk = unique_pairs(run)
                docs = np.unique(np.concatenate([chunk["a"], chunk["b"]]))
                parts = budget_parts(np.searchsorted(docs, chunk["a"]), np.searchsorted(docs, chunk["b"]),
                                     self._doc_bytes(store, docs), PAIR_BYTES, budget)
                for lo, hi, held in parts:
                    keep, checked, sims = self._verify(store, chunk["a"][lo:hi], chunk["b"][lo:hi], joined)
                    good.append(chunk[lo:hi][keep])
                    hist += np.histogram(sims, bins=10, range=(0, 1))[0]
                    n_pairs, n_good = n_pairs + hi - lo, n_good + int(keep.sum())
                    n_joined += hi - lo - int(checked.sum())
                    n_parts, max_held = n_parts + 1, max(max_held, held)
            self.stat_update("candidate_pairs", value=n_pairs)
            self.stat_update("verified_pairs", value=n_good)
            self.stat_update("already_joined_pairs", value=n_joined)
            self.stat_update("parts", value=n_parts)
            for target in range(self.shards):  # edges both ways, grouped by the source's shard, a block at a time
                edges = ArraySpill(spill_dir(self.work_root), EDGE_DTYPE)
                for side, other in (("a", "b"), ("b", "a")):
                    for i in range(0, good.size, MERGE_PAIRS):
                        block = good.read(i, min(i + MERGE_PAIRS, good.size))
                        sel = split_gid(block[side])[0] == target
                        part = np.empty(int(sel.sum()), dtype=EDGE_DTYPE)
                        part["src"], part["dst"] = block[side][sel], block[other][sel]
                        edges.append(part)
                edges.save(f"{self.work_root}/edges/{target:05d}/{rank:05d}.npy")
                edges.close()
            good.close()
            write_json({"candidate_pairs": n_pairs, "verified_pairs": n_good, "already_joined_pairs": n_joined,
                        "similarity_hist": hist.tolist(),
                        "parts": n_parts, "max_part_bytes": max_held, "budget_bytes": budget},
                       f"{self.work_root}/verify/{rank:05d}.json")
        return
        yield


class LabelStore:
    """Labels after a round (``round_ < 0``: every node is its own label), looked up by global id."""

    def __init__(self, work_root: str, round_: int, store: ShardSet):
        self.work_root, self.round, self.store = work_root, round_, store
        self._files: dict[int, np.ndarray] = {}

    def _labels(self, rank: int) -> np.ndarray:
        if rank not in self._files:
            path = f"{self.work_root}/labels/{self.round:02d}/{rank:05d}.npy"
            self._files[rank] = load_array(path) if self.round >= 0 and rank < INDEX_RANK_BASE else \
                np.empty(0, NODE_LABEL_DTYPE)
        return self._files[rank]

    def __call__(self, gids: np.ndarray) -> np.ndarray:
        meta = self.store.meta(gids)
        out = np.empty(len(gids), dtype=LABEL_DTYPE)
        out["key"] = np.where(split_gid(gids)[0] >= INDEX_RANK_BASE, 0, meta["key"])
        out["h"], out["gid"] = meta["h"], gids
        ranks = split_gid(gids)[0]
        for r in np.unique(ranks):
            lab = self._labels(int(r))
            if not len(lab):
                continue
            sel = np.flatnonzero(ranks == r)
            pos = np.searchsorted(lab["node"], gids[sel]).clip(max=len(lab) - 1)
            hit = lab["node"][pos] == gids[sel]
            for f in ("key", "h", "gid"):
                out[f][sel[hit]] = lab[f][pos[hit]]
        return out


def round_converged(work_root: str, round_: int, shards: int) -> bool | None:
    """True/False once every shard finished ``round_``; None when the round was skipped or is incomplete."""
    total = 0
    for r in range(shards):
        path = f"{work_root}/labels/{round_:02d}/{r:05d}.json"
        if not exists(path):
            return None
        with open_file(path, "rb") as fh:
            total += json.load(fh)["changed"]
    return total == 0


class DedupClusterRound(PipelineStep):
    """Phase 4 (repeated): one round of min-label propagation for this shard's nodes; a no-op once converged."""

    name = "dedup cluster round"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, round_: int, shards: int, index_root: str | None = None):
        super().__init__()
        self.work_root, self.round, self.shards, self.index_root = work_root, round_, shards, index_root

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.round > 0 and round_converged(self.work_root, self.round - 1, self.shards) is not False:
            self.stat_update("skipped")
            return
        with self.track_time():
            parts = [np.asarray(load_array(f, mmap=False)) for f in _npy_files(f"{self.work_root}/edges/{rank:05d}")]
            edges = np.concatenate(parts) if parts else np.empty(0, EDGE_DTYPE)
            store = ShardSet(self.work_root, self.index_root)
            lookup = LabelStore(self.work_root, self.round - 1, store)
            labels, changed = propagation_round_parts(edges["src"], edges["dst"], lookup)
            del edges, parts
            save_array(labels, f"{self.work_root}/labels/{self.round:02d}/{rank:05d}.npy")
            if changed == 0:  # possibly the final round: survivors' cluster sizes and origins, by their shard
                self._write_members(labels, store, rank)
            write_json({"changed": changed, "nodes": len(labels)},
                       f"{self.work_root}/labels/{self.round:02d}/{rank:05d}.json")
            self.stat_update("nodes", value=len(labels))
            self.stat_update("changed", value=changed)
        return
        yield


    def _write_members(self, labels: np.ndarray, store: ShardSet, rank: int) -> None:
        sources, source_names, domains, domain_names = store.shard(rank).origin_codes()
        _, local = split_gid(labels["node"])
        survivors = labels["gid"]
        target = split_gid(survivors)[0]
        for t in range(self.shards):
            sel = np.flatnonzero(target == t)
            rows = local[sel]
            part = summarize(survivors[sel], sources[rows], source_names, domains[rows], domain_names)
            with atomic_open(f"{self.work_root}/labels/{self.round:02d}/members/{t:05d}/{rank:05d}.json", "wb") as fh:
                fh.write(json.dumps({str(g): v for g, v in part.items()}, ensure_ascii=False).encode("utf-8"))


def read_members(work_root: str, round_: int, rank: int) -> dict:
    """The merged cluster summaries of the survivors in shard ``rank`` (:mod:`corpus.dedup.clusters`)."""
    parts = []
    folder = f"{work_root}/labels/{round_:02d}/members/{rank:05d}"
    for f in expand_paths(folder, exts=(".json",)) if exists(folder) else []:
        with open_file(f, "rb") as fh:
            parts.append(json.load(fh))
    return merge(parts)


def final_round(work_root: str, shards: int, rounds: int) -> int:
    """The round whose labels are final; raises when the last round still changed labels."""
    from corpus.errors import MathcorpusError

    for k in range(rounds):
        state = round_converged(work_root, k, shards)
        if state is None:
            raise MathcorpusError(f"{work_root}/labels/{k:02d}: cluster round {k} is incomplete; rerun to resume")
        if state:
            return k
    raise MathcorpusError(f"{work_root}/labels: clustering did not converge in {rounds} rounds; "
                          "raise cluster_rounds (--cluster-rounds) and rerun")


class DedupFilter(PipelineStep):
    """Phase 5: keep a document unless its component's label (the survivor) is another document."""

    name = "dedup filter"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, removed_dir: str, shards: int, rounds: int, index_root: str | None = None):
        super().__init__()
        self.work_root, self.removed_dir, self.shards, self.rounds = work_root, removed_dir, shards, rounds
        self.index_root = index_root

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        k = final_round(self.work_root, self.shards, self.rounds)
        store = ShardSet(self.work_root, self.index_root)
        labels = np.asarray(load_array(f"{self.work_root}/labels/{k:02d}/{rank:05d}.npy", mmap=False))
        own = store.shard(rank)
        n = len(own.meta)
        survivor = np.arange(n, dtype=np.uint64) | (np.uint64(rank) << np.uint64(32))
        _, local = split_gid(labels["node"])
        survivor[local] = labels["gid"]
        del labels
        alive = survivor == gid_of(rank, np.arange(n))
        members = read_members(self.work_root, k, rank)
        removed = np.flatnonzero(~alive)  # each removed document's survivor: id, cluster, exact or near, similarity
        kept = survivor[removed]
        km = store.meta(kept)
        exact = (km["exact0"] == own.meta["exact0"][removed]) & (km["exact1"] == own.meta["exact1"][removed])
        kept_ids = _ids_of(store, kept)
        sims = np.ones(len(removed), dtype=np.float64)
        near = np.flatnonzero(~exact)
        sims[near] = _similarities(store, gid_of(rank, removed[near]), kept[near])
        from_index = split_gid(kept)[0] >= INDEX_RANK_BASE
        counts = {"documents": 0, "kept": 0, "kept_with_copies": 0, "exact_duplicate": 0, "near_duplicate": 0,
                  "index_exact_duplicate": 0, "index_near_duplicate": 0}
        sink = RemovedSink(self.removed_dir, rank, REMOVED_FIELDS)
        try:
            for idx, doc in enumerate(data or ()):
                counts["documents"] += 1
                if idx >= n or id_hash(doc.id) != int(own.meta["h"][idx]):
                    from corpus.errors import MathcorpusError

                    raise MathcorpusError(f"{self.work_root}: shard {rank} changed since its signatures were "
                                          f"computed (document {idx} is {doc.id!r}); delete the stage folder")
                if alive[idx]:
                    counts["kept"] += 1
                    self.stat_update("kept")
                    info = survivor_metadata(members.get(int(survivor[idx])), doc.metadata.get("source"),
                                             doc.metadata.get("domain"))
                    doc.metadata.update(info)
                    counts["kept_with_copies"] += info["dup_count"] > 1
                    yield doc
                    continue
                j = int(np.searchsorted(removed, idx))
                reason = ("index_" if from_index[j] else "") + ("exact" if exact[j] else "near") + "_duplicate"
                counts[reason] += 1
                self.stat_update(reason)
                sink.remove(doc, reason, cluster_id=f"{int(km['h'][j]):016x}", kept_id=str(kept_ids[j]),
                            similarity=float(sims[j]))
        except BaseException:
            sink.abort()
            raise
        sink.close()
        save_array(alive, f"{self.work_root}/alive/{rank:05d}.npy")
        write_json(counts, f"{self.work_root}/filter/{rank:05d}.json")


def _ids_of(store: ShardSet, gids: np.ndarray) -> list[str]:
    """Document ids of ``gids``; each shard's id list is read once and dropped (not cached)."""
    out: list = [None] * len(gids)
    for shard, sel, rows in store.groups(gids):
        ids = shard.ids()
        for i, j in zip(sel.tolist(), rows.tolist(), strict=True):
            out[i] = ids[j]
    return out


def _similarities(store: ShardSet, a: np.ndarray, b: np.ndarray, block: int = 8192) -> np.ndarray:
    """Shingle Jaccard of each pair ``(a[i], b[i])``, rounded to 4 decimals; ``block`` pairs' documents read at
    a time."""
    from corpus.dedup.verify import similarity

    out = np.empty(len(a), dtype=np.float64)
    for lo in range(0, len(a), block):
        pa_, pb = a[lo : lo + block], b[lo : lo + block]
        docs, (sv, so) = gather_docs(store, np.concatenate([pa_, pb]), ("shingles",))
        for k, (i, j) in enumerate(zip(np.searchsorted(docs, pa_).tolist(), np.searchsorted(docs, pb).tolist(),
                                       strict=True)):
            out[lo + k] = round(similarity(sv[so[i] : so[i + 1]], sv[so[j] : so[j + 1]]), 4)
    return out

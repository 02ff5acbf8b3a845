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
from corpus.dedup.components import LABEL_DTYPE, NODE_LABEL_DTYPE, propagation_round
from corpus.dedup.minhash import DocFeatures, band_keys, batch_features, signatures
from corpus.dedup.params import DedupConfig
from corpus.dedup.priority import PriorityConfig, id_hash, priority_key
from corpus.dedup.store import (
    BAND_DTYPE,
    INDEX_RANK_BASE,
    META_DTYPE,
    ShardSet,
    band_file,
    exists,
    gid_of,
    load_array,
    save_array,
    shard_dir,
    split_gid,
    write_ragged,
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


class DedupSignatures(PipelineStep):
    """Phase 1: features of this rank's documents -> meta, shingles, ids and sorted band files."""

    name = "dedup signatures"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, config: DedupConfig, priority: PriorityConfig, batch: int = 512):
        super().__init__()
        self.work_root, self.config, self.priority, self.batch = work_root, config, priority, batch

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        cfg = self.config
        meta_rows, shingles, tokens, ids, origins = [], [], [], [], []
        by_text: dict[bytes, DocFeatures] = {}  # byte-identical texts (common in crawls) are featurized once
        pending: list[tuple[Document, bytes]] = []

        def flush() -> None:  # features of a batch at once (numpy over all its tokens), then one row per doc
            if not pending:
                return
            todo = list({key: doc.text for doc, key in pending if key not in by_text}.items())
            by_text.update(zip((k for k, _ in todo), batch_features([t for _, t in todo], cfg.shingle_size),
                               strict=True))
            if len(pending) > len(todo):
                self.stat_update("same_text", value=len(pending) - len(todo))
            for doc, key in pending:
                f = by_text[key]
                row = {**doc.metadata, "text": doc.text}
                meta_rows.append((priority_key(row, self.priority) + 1, id_hash(doc.id), *f.exact))
                shingles.append(f.shingles)
                tokens.append(f.tokens)
                ids.append(doc.id)
                origins.append((doc.metadata.get("source"), doc.metadata.get("domain")))
                self.stat_update("documents")
                if not len(f.shingles):
                    self.stat_update("empty")
            pending.clear()

        for doc in data or ():
            with self.track_time():
                pending.append((doc, xxhash.xxh3_128_digest(doc.text.encode("utf-8", "surrogatepass"))))
                if len(pending) >= self.batch:
                    flush()
        with self.track_time():
            flush()
        with self.track_time():
            d = shard_dir(self.work_root, rank)
            meta = np.array(meta_rows, dtype=META_DTYPE) if meta_rows else np.empty(0, META_DTYPE)
            write_ragged(shingles, f"{d}/shingles")
            write_ragged(tokens, f"{d}/tokens")
            with atomic_open(f"{d}/ids.json", "wb") as fh:
                fh.write(json.dumps(ids, ensure_ascii=False).encode("utf-8"))
            with atomic_open(f"{d}/origins.json", "wb") as fh:
                fh.write(json.dumps(origins, ensure_ascii=False).encode("utf-8"))
            nonempty = np.flatnonzero([len(s) > 0 for s in shingles]) if shingles else np.empty(0, np.int64)
            keys = np.empty((0, cfg.band_shape[0]), np.uint64)
            for i in range(0, len(nonempty), self.batch * 8):
                part = nonempty[i : i + self.batch * 8]
                keys = np.vstack([keys, band_keys(signatures([shingles[j] for j in part], cfg), cfg)])
            all_keys = np.hstack([keys, meta["exact0"][nonempty, None]]) if len(nonempty) else keys
            for band in range(cfg.band_shape[0] + 1):
                rows = np.empty(len(nonempty), dtype=BAND_DTYPE)
                if len(nonempty):  # sorted by (key, idx): a lexsort on plain arrays (10x a structured sort)
                    order = np.lexsort((nonempty, all_keys[:, band]))
                    rows["key"], rows["idx"] = all_keys[order, band], nonempty[order]
                save_array(rows, band_file(self.work_root, band, rank))
            save_array(meta, f"{d}/meta.npy")  # last: its presence marks the shard complete
        return
        yield


class DedupBuckets(PipelineStep):
    """Phase 2: documents sharing a band key -> candidate pairs, routed to the owner shard.

    Task ``t`` handles key range ``t % partitions`` of every band ``b`` with ``b % groups == t // partitions``
    (``groups = world_size // partitions``), one band at a time, so memory is one band's key range.
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
        with self.track_time():
            found = [self._band_pairs(b, lo, hi) for b in range(self.config.band_shape[0] + 1) if b % groups == group]
            pairs = unique_pairs(np.concatenate(found)) if found else np.empty(0, PAIR_DTYPE)
            self.stat_update("candidate_pairs", value=len(pairs))
            owner = pair_owner(pairs, self.shards)
            for target in range(self.shards):
                save_array(pairs[owner == target], f"{self.work_root}/pairs/{rank:05d}/{target:05d}.npy")
        return
        yield


class DedupVerify(PipelineStep):
    """Phase 3: this shard's candidate pairs checked on real shingles and a token diff -> symmetric edges."""

    name = "dedup verify"
    type = "🫂 - DEDUP"

    def __init__(self, work_root: str, config: DedupConfig, shards: int, index_root: str | None = None):
        super().__init__()
        self.work_root, self.config, self.shards, self.index_root = work_root, config, shards, index_root

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            files = [f for f in _npy_files(f"{self.work_root}/pairs") if os.path.basename(f) == f"{rank:05d}.npy"]
            parts = [np.asarray(load_array(f, mmap=False)) for f in files]
            pairs = unique_pairs(np.concatenate(parts)) if parts else np.empty(0, PAIR_DTYPE)
            store = ShardSet(self.work_root, self.index_root)
            own = store.shard(rank)
            own.load_ragged("shingles")
            own.load_ragged("tokens")
            results = []
            ra, ia = (x.tolist() for x in split_gid(pairs["a"]))
            rb, ib = (x.tolist() for x in split_gid(pairs["b"]))
            for k in range(len(pairs)):
                sa, sb = store.shard(ra[k]), store.shard(rb[k])
                results.append(is_duplicate(sa.ragged("shingles", ia[k]), sb.ragged("shingles", ib[k]),
                                            sa.ragged("tokens", ia[k]), sb.ragged("tokens", ib[k]), self.config))
            keep = np.fromiter((ok for ok, _ in results), dtype=bool, count=len(pairs))
            sims = np.fromiter((sim for _, sim in results), dtype=np.float32, count=len(pairs))
            self.stat_update("candidate_pairs", value=len(pairs))
            self.stat_update("verified_pairs", value=int(keep.sum()))
            good = pairs[keep]
            edges = np.empty(2 * len(good), dtype=EDGE_DTYPE)
            edges["src"] = np.concatenate([good["a"], good["b"]])
            edges["dst"] = np.concatenate([good["b"], good["a"]])
            src_rank = split_gid(edges["src"])[0]
            for target in range(self.shards):
                save_array(edges[src_rank == target], f"{self.work_root}/edges/{target:05d}/{rank:05d}.npy")
            write_json({"candidate_pairs": len(pairs), "verified_pairs": int(keep.sum()),
                        "similarity_hist": np.histogram(sims, bins=10, range=(0, 1))[0].tolist()},
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
            labels, changed = propagation_round(edges["src"], edges["dst"], lookup)
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
        origins = store.shard(rank).origins()
        _, local = split_gid(labels["node"])
        survivors = labels["gid"]
        target = split_gid(survivors)[0]
        for t in range(self.shards):
            sel = np.flatnonzero(target == t)
            part = summarize(survivors[sel], [origins[i] for i in local[sel]]) if len(sel) else {}
            write_json({str(g): v for g, v in part.items()},
                       f"{self.work_root}/labels/{self.round:02d}/members/{t:05d}/{rank:05d}.json")


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
        alive = survivor == gid_of(rank, np.arange(n))
        members = read_members(self.work_root, k, rank)
        removed_meta = store.meta(survivor[~alive])
        removed_pos = {int(i): j for j, i in enumerate(np.flatnonzero(~alive))}
        counts = {"documents": 0, "kept": 0, "kept_with_copies": 0, "exact_duplicate": 0, "near_duplicate": 0,
                  "index_exact_duplicate": 0, "index_near_duplicate": 0}
        sink = RemovedSink(self.removed_dir, rank, REMOVED_FIELDS)
        try:
            for idx, doc in enumerate(data or ()):
                counts["documents"] += 1
                if idx >= n or doc.id != own.ids()[idx]:
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
                km = removed_meta[removed_pos[idx]]
                krank, kidx = split_gid(np.array([survivor[idx]]))
                kept_id = store.shard(int(krank[0])).ids()[int(kidx[0])]
                exact = km["exact0"] == own.meta[idx]["exact0"] and km["exact1"] == own.meta[idx]["exact1"]
                reason = ("index_" if krank[0] >= INDEX_RANK_BASE else "") + ("exact" if exact else "near") + \
                    "_duplicate"
                counts[reason] += 1
                self.stat_update(reason)
                sim = 1.0 if exact else _similarity(store, own, idx, int(krank[0]), int(kidx[0]))
                sink.remove(doc, reason, cluster_id=f"{int(km['h']):016x}", kept_id=str(kept_id), similarity=sim)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        save_array(alive, f"{self.work_root}/alive/{rank:05d}.npy")
        write_json(counts, f"{self.work_root}/filter/{rank:05d}.json")


def _similarity(store: ShardSet, own, idx: int, krank: int, kidx: int) -> float:
    from corpus.dedup.verify import similarity

    return round(similarity(own.ragged("shingles", idx), store.shard(krank).ragged("shingles", kidx)), 4)

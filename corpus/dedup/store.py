"""On-disk layout of dedup work files and saved indexes (numpy arrays, written atomically).

``{root}/shards/{r:05d}/`` holds one shard's ``meta.npy`` (priority key, id hash, exact key), ragged
``shingles``/``tokens`` arrays with offsets, and ``ids.npy``; ``{root}/bands/{b:03d}/{r:05d}.npy`` holds
the shard's ``(key, idx)`` rows of band ``b`` sorted by key (the last band is the exact key). A saved index
has the same layout plus ``alive/{r:05d}.npy`` (documents kept) and ``index.json``. Local files are
memory-mapped, so look-ups into other shards do not load them.
"""

from __future__ import annotations

import io
import json
import os
from functools import lru_cache
from typing import Any

import numpy as np

from corpus.errors import MathcorpusError
from corpus.io import atomic_open, is_remote, open_file

META_DTYPE = np.dtype([("key", "<u8"), ("h", "<u8"), ("exact0", "<u8"), ("exact1", "<u8")])
BAND_DTYPE = np.dtype([("key", "<u8"), ("idx", "<u4")])
INDEX_RANK_BASE = 1 << 20  # shards of a saved index are ranks INDEX_RANK_BASE + s
INDEX_VERSION = 2  # 2: token sequences (verification by token diff) instead of symbol multisets


class IndexError_(MathcorpusError):
    """A saved dedup index that is missing, incomplete or made with other parameters."""


def gid_of(rank: int | np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (np.asarray(rank, dtype=np.uint64) << np.uint64(32)) | np.asarray(idx, dtype=np.uint64)


def split_gid(gid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gid = np.asarray(gid, dtype=np.uint64)
    return (gid >> np.uint64(32)).astype(np.int64), (gid & np.uint64(0xFFFFFFFF)).astype(np.int64)


def save_array(arr: np.ndarray, path: str) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def load_array(path: str, mmap: bool = True) -> np.ndarray:
    if not is_remote(path):
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    with open_file(path, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    import fsspec

    return fsspec.get_fs_token_paths(path)[0].exists(path)


def shard_dir(root: str, rank: int) -> str:
    return f"{root}/shards/{rank:05d}"


def band_file(root: str, band: int, rank: int) -> str:
    return f"{root}/bands/{band:03d}/{rank:05d}.npy"


def write_ragged(arrays: list[np.ndarray], path_prefix: str, dtype=np.uint32) -> None:
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.concatenate(arrays).astype(dtype) if arrays else np.empty(0, dtype)
    save_array(values, f"{path_prefix}.npy")
    save_array(offsets, f"{path_prefix}_off.npy")


class Shard:
    """Read access to one shard's files (memory-mapped when local)."""

    def __init__(self, root: str, rank: int):
        self.dir = shard_dir(root, rank)
        self.meta = load_array(f"{self.dir}/meta.npy")
        self._ragged: dict[str, tuple[np.ndarray, list[int]]] = {}
        self._ids: np.ndarray | None = None

    def ragged(self, name: str, idx: int) -> np.ndarray:
        if name not in self._ragged:
            self._load(name, mmap=True)
        values, offsets = self._ragged[name]
        return values[offsets[idx] : offsets[idx + 1]]

    def load_ragged(self, name: str) -> None:
        """Read a ragged array fully into memory (for the shard a task owns)."""
        self._load(name, mmap=False)

    def _load(self, name: str, mmap: bool) -> None:
        # plain ndarray views and offsets as a list: slicing a memmap per look-up costs ~5x more
        self._ragged[name] = (np.asarray(load_array(f"{self.dir}/{name}.npy", mmap=mmap)),
                              load_array(f"{self.dir}/{name}_off.npy", mmap=mmap).tolist())

    def origins(self) -> list[list[str | None]]:
        """``(source, domain)`` per document (work shards only; not kept in saved indexes)."""
        with open_file(f"{self.dir}/origins.json", "rb") as fh:
            return json.load(fh)

    def ids(self) -> np.ndarray:
        if self._ids is None:
            with open_file(f"{self.dir}/ids.json", "rb") as fh:
                self._ids = np.asarray(json.load(fh), dtype=object)
        return self._ids


class ShardSet:
    """Shards of a run (ranks ``0..``) and of an optional saved index (ranks ``INDEX_RANK_BASE + s``)."""

    def __init__(self, work_root: str, index_root: str | None = None, cache: int = 64):
        self.work_root = work_root
        self.index_root = index_root
        self._get = lru_cache(maxsize=cache)(self._open)

    def _open(self, rank: int) -> Shard:
        if rank >= INDEX_RANK_BASE:
            if self.index_root is None:
                raise KeyError(rank)
            return Shard(self.index_root, rank - INDEX_RANK_BASE)
        return Shard(self.work_root, rank)

    def shard(self, rank: int) -> Shard:
        return self._get(int(rank))

    def meta(self, gids: np.ndarray) -> np.ndarray:
        """META_DTYPE rows of many documents, grouped by shard."""
        ranks, idx = split_gid(gids)
        out = np.empty(len(gids), dtype=META_DTYPE)
        for r in np.unique(ranks):
            sel = ranks == r
            out[sel] = self.shard(int(r)).meta[idx[sel]]
        return out


def read_index_info(index_root: str) -> dict[str, Any]:
    path = f"{index_root}/index.json"
    if not exists(path):
        raise IndexError_(f"{path}: not a dedup index (no index.json); make one with --save-index")
    with open_file(path, "rb") as fh:
        info = json.load(fh)
    if info.get("version") != INDEX_VERSION:
        raise IndexError_(f"{path}: index version {info.get('version')!r}, expected {INDEX_VERSION}")
    return info


def check_index_params(index_root: str, params: dict[str, Any]) -> dict[str, Any]:
    """The index's info; raises :class:`IndexError_` naming the first parameter that differs."""
    info = read_index_info(index_root)
    for k, v in params.items():
        if info["params"].get(k) != v:
            raise IndexError_(f"{index_root}/index.json: {k} = {info['params'].get(k)!r} but this run uses {v!r}; "
                              "dedup against an index needs the same shingle/permutation/band settings")
    return info

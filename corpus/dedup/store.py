"""On-disk layout of dedup work files and saved indexes (numpy arrays, written atomically).

``{root}/shards/{r:05d}/`` holds one shard's ``meta.npy`` (priority key, id hash, exact key), ragged
``shingles``/``tokens`` arrays with offsets, ``ids.json``, and ``origins.npy`` with ``origin_names.json``
(source and domain codes, their names); ``{root}/bands/{b:03d}/{r:05d}.npy`` holds the shard's ``(key, idx)``
rows of band ``b`` sorted by key (the last band is the exact key). A saved index has the same layout plus
``alive/{r:05d}.npy`` (documents kept) and ``index.json``. Local files are memory-mapped, so look-ups into
other shards do not load them; scattered row reads (:meth:`Shard.gather`) give their pages back after each
block of rows, so a task's resident memory does not grow with the pages it touched.
"""

from __future__ import annotations

import contextlib
import io
import json
import mmap
import os
import shutil
import tempfile
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
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


class ArraySpill:
    """A 1-d array appended a batch at a time to an unnamed local temporary file (memory: one batch);
    :meth:`save` writes it as one ``.npy`` file, :meth:`view` maps a stretch of it."""

    def __init__(self, folder: str | None = None, dtype=np.uint32):
        self.dtype = np.dtype(dtype)
        self._fh = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed by close())
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self._fh.write(values.tobytes())
        self.size += len(values)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Elements ``start:stop`` (a copy)."""
        self._fh.flush()
        size = self.dtype.itemsize
        return np.frombuffer(os.pread(self._fh.fileno(), (stop - start) * size, start * size), dtype=self.dtype)

    def view(self, start: int, stop: int) -> np.ndarray:
        """Elements ``start:stop``, memory-mapped (pages are resident only while the view lives)."""
        self._fh.flush()
        if stop <= start:
            return np.empty(0, self.dtype)
        return np.memmap(self._fh, dtype=self.dtype, mode="r", offset=start * self.dtype.itemsize,
                         shape=(stop - start,))

    def save(self, path: str) -> None:
        self._fh.flush()
        self._fh.seek(0)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.size,)}
        with atomic_open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            shutil.copyfileobj(self._fh, fh, 1 << 22)

    def close(self) -> None:
        self._fh.close()


class RaggedSpill(ArraySpill):
    """Ragged arrays appended a batch at a time (memory: one batch, plus 8 bytes of offset per row);
    :meth:`save` writes ``{prefix}.npy`` (the values) + ``{prefix}_off.npy`` (``len + 1`` int64 offsets),
    :meth:`get` reads one row back."""

    def __init__(self, folder: str | None = None, dtype=np.uint32):
        super().__init__(folder, dtype)
        self.offsets = array("q", [0])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def append(self, arrays: list[np.ndarray]) -> None:  # type: ignore[override]
        if not arrays:
            return
        super().append(np.concatenate(arrays))
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        self.offsets.extend((np.cumsum(lengths) + self.offsets[-1]).tolist())

    def get(self, i: int) -> np.ndarray:
        return self.read(self.offsets[i], self.offsets[i + 1])

    def save(self, path_prefix: str) -> None:  # type: ignore[override]
        super().save(f"{path_prefix}.npy")
        save_array(np.frombuffer(self.offsets, dtype=np.int64), f"{path_prefix}_off.npy")


def spill_dir(root: str) -> str | None:
    """Where a task spills temporary files: next to ``root`` when local (same disk as its outputs), else the
    system's temporary folder."""
    if is_remote(root):
        return None
    os.makedirs(root, exist_ok=True)
    return root


def gather(values: np.ndarray, offsets: np.ndarray, idx: np.ndarray, block: int = 1 << 20,
           out: np.ndarray | None = None, release: Callable[[], None] | None = None,
           block_rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of a ragged array, packed: ``(values, offsets)`` with ``len(idx) + 1`` offsets, written into
    ``out`` when given (its first values). Reads only those rows' values, vectorized, a block at a time (about
    ``block`` values, at most ``block_rows`` rows: each row may touch pages of its own), calling ``release``
    after each block (see :class:`MappedArray`)."""
    idx = np.asarray(idx, dtype=np.int64)
    starts = np.asarray(offsets[idx], dtype=np.int64)
    lengths = np.asarray(offsets[idx + 1], dtype=np.int64) - starts
    out_off = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_off[1:])
    out = np.empty(int(out_off[-1]), dtype=values.dtype) if out is None else out
    i = 0
    while i < len(idx):  # rows i..j-1: about `block` values, at most `block_rows` rows (at least one row)
        j = int(np.searchsorted(out_off, out_off[i] + block, side="right")) - 1
        j = max(i + 1, min(j, i + block_rows))
        lo, hi = out_off[i], out_off[j]
        pos = np.repeat(starts[i:j] - out_off[i:j], lengths[i:j])
        pos += np.arange(lo, hi, dtype=np.int64)
        out[lo:hi] = values[pos]
        if release is not None:
            release()
        i = j
    return out, out_off


_MADVISE = hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED")  # not on Windows


class MappedArray:
    """A local ``.npy`` file mapped read-only (``.array``; :meth:`close` when done). :meth:`release` drops
    the pages read so far from this process (the OS page cache keeps them), so a scattered read over a large
    file holds one block's pages, not every page it touched."""

    def __init__(self, path: str):
        with open(path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            if fortran or len(shape) != 1:
                raise ValueError(f"{path}: expected a 1-d array")
            offset, self.count, self.dtype = fh.tell(), shape[0], dtype
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.count else None
        if self._mm is not None and _MADVISE:
            self._mm.madvise(mmap.MADV_RANDOM)  # no read-ahead around each row
        self.array = np.frombuffer(self._mm, dtype, self.count, offset) if self._mm is not None else np.empty(0, dtype)

    def release(self) -> None:
        if self._mm is not None and _MADVISE:
            self._mm.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        """Unmap now, or when the last view of ``.array`` goes (one still held, e.g. by a traceback)."""
        self.array = None
        if self._mm is not None:
            self.release()
            with contextlib.suppress(BufferError):  # a view still held: unmapped when it goes
                self._mm.close()


class Shard:
    """Read access to one shard's files (memory-mapped when local)."""

    def __init__(self, root: str, rank: int):
        self.dir = shard_dir(root, rank)
        self.meta = load_array(f"{self.dir}/meta.npy")
        self._whole: dict[str, np.ndarray] = {}  # remote arrays, read once

    def _remote(self, file: str) -> np.ndarray:
        if file not in self._whole:
            self._whole[file] = load_array(f"{self.dir}/{file}.npy")
        return self._whole[file]

    def gather(self, name: str, idx: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``idx`` of a ragged array (:func:`gather`). Local files are mapped for the call only and the
        pages read are released after each block (:class:`MappedArray`); a remote array is read once."""
        if is_remote(self.dir):
            return gather(self._remote(name), self.offsets(name), idx, out=out)
        mapped = MappedArray(f"{self.dir}/{name}.npy")
        try:
            return gather(mapped.array, self.offsets(name), idx, out=out, release=mapped.release)
        finally:
            mapped.close()

    def lengths(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Row lengths of a ragged array (values per row) for rows ``idx``."""
        off = self.offsets(name)
        idx = np.asarray(idx, dtype=np.int64)
        return np.asarray(off[idx + 1], dtype=np.int64) - np.asarray(off[idx], dtype=np.int64)

    def offsets(self, name: str) -> np.ndarray:
        """A ragged array's offsets: mapped per call when local, read once when remote."""
        file = f"{name}_off"
        return self._remote(file) if is_remote(self.dir) else load_array(f"{self.dir}/{file}.npy")

    def origin_codes(self) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """``(source codes, source names, domain codes, domain names)`` per document: codes into the sorted
        names, -1 for none (work shards only; not kept in saved indexes): int32, 8 bytes a document."""
        codes = load_array(f"{self.dir}/origins.npy", mmap=False)
        with open_file(f"{self.dir}/origin_names.json", "rb") as fh:
            names = json.load(fh)
        out: list = []
        for k, key in enumerate(("source", "domain")):
            order = sorted(range(len(names[key])), key=names[key].__getitem__)
            rank = np.full(len(order) + 1, -1, dtype=np.int32)  # the last slot: code -1, none
            rank[order] = np.arange(len(order))
            out += [rank[codes[:, k]], [names[key][i] for i in order]]
        return tuple(out)  # type: ignore[return-value]

    def ids(self) -> list[str]:
        """Document ids, read per call (not kept: a task reads them once, at the end)."""
        with open_file(f"{self.dir}/ids.json", "rb") as fh:
            return json.load(fh)


class ShardSet:
    """Shards of a run (ranks ``0..``) and of an optional saved index (ranks ``INDEX_RANK_BASE + s``)."""

    def __init__(self, work_root: str, index_root: str | None = None, cache: int = 64):
        self.work_root = work_root
        self.index_root = index_root
        self._size = cache
        # a plain dict, not lru_cache on a bound method: that makes a reference cycle, so a finished task's
        # shards (and their mapped pages) stayed until the next garbage collection
        self._cache: OrderedDict[int, Shard] = OrderedDict()

    def _open(self, rank: int) -> Shard:
        if rank >= INDEX_RANK_BASE:
            if self.index_root is None:
                raise KeyError(rank)
            return Shard(self.index_root, rank - INDEX_RANK_BASE)
        return Shard(self.work_root, rank)

    def shard(self, rank: int) -> Shard:
        rank = int(rank)
        shard = self._cache.get(rank)
        if shard is None:
            shard = self._cache[rank] = self._open(rank)
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(rank)
        return shard

    def groups(self, gids: np.ndarray) -> Iterator[tuple[Shard, np.ndarray, np.ndarray]]:
        """``(shard, positions in gids, rows in the shard)`` for each shard ``gids`` touch, by rank."""
        ranks, idx = split_gid(gids)
        for r in np.unique(ranks):
            sel = np.flatnonzero(ranks == r)
            yield self.shard(int(r)), sel, idx[sel]

    def meta(self, gids: np.ndarray) -> np.ndarray:
        """META_DTYPE rows of many documents, grouped by shard."""
        out = np.empty(len(gids), dtype=META_DTYPE)
        for shard, sel, rows in self.groups(gids):
            out[sel] = shard.meta[rows]
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

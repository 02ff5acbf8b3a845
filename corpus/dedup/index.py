"""Saving a run's dedup files as an index that later batches are deduplicated against (no re-hashing)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import fsspec

from corpus.dedup.store import INDEX_VERSION, band_file, exists, load_array, read_index_info, shard_dir
from corpus.io import atomic_open, open_file, write_json

SHARD_FILES = ("meta.npy", "shingles.npy", "shingles_off.npy", "tokens.npy", "tokens_off.npy", "ids.json")


def _copy(src: str, dst: str) -> None:
    with open_file(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 22)


def _same(a: str, b: str) -> bool:
    return os.path.normpath(a.rstrip("/")) == os.path.normpath(b.rstrip("/"))


def _copy_shard(src_root: str, src: int, dst_root: str, dst: int, bands: int, alive_src: str) -> int:
    for name in SHARD_FILES:
        _copy(f"{shard_dir(src_root, src)}/{name}", f"{shard_dir(dst_root, dst)}/{name}")
    for band in range(bands + 1):
        _copy(band_file(src_root, band, src), band_file(dst_root, band, dst))
    _copy(alive_src, f"{dst_root}/alive/{dst:05d}.npy")
    return int(load_array(alive_src).sum())


def save_index(work_root: str, shards: int, dst_root: str, params: dict[str, Any],
               previous: str | None = None) -> dict[str, Any]:
    """Write ``dst_root`` as an index of the run's kept documents (plus the ``previous`` index it was
    deduplicated against, so an index grows batch by batch; ``dst_root == previous`` appends in place)."""
    bands = params["bands"]
    n_old, alive = 0, 0
    if previous:
        info = read_index_info(previous)
        n_old = info["shards"]
        if _same(previous, dst_root):
            alive = info["alive"]
        else:
            for s in range(n_old):
                alive += _copy_shard(previous, s, dst_root, s, bands, f"{previous}/alive/{s:05d}.npy")
    elif exists(f"{dst_root}/index.json"):
        fs = fsspec.get_fs_token_paths(dst_root)[0]
        for sub in ("shards", "bands", "alive"):
            if fs.exists(f"{dst_root}/{sub}"):
                fs.rm(f"{dst_root}/{sub}", recursive=True)
    for r in range(shards):
        alive += _copy_shard(work_root, r, dst_root, n_old + r, bands, f"{work_root}/alive/{r:05d}.npy")
    info = {"version": INDEX_VERSION, "params": params, "shards": n_old + shards, "alive": alive}
    write_json(info, f"{dst_root}/index.json")
    return info

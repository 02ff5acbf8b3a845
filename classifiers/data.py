"""Labelled training data: read texts from JSONL/Parquet files, fingerprint files, split train/validation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import fsspec

from corpus.io import JSONL_EXT, PARQUET_EXT, InputError, Reject, iter_records, resolve_document_inputs

RECORD_EXT = (*JSONL_EXT, *PARQUET_EXT)
MATH, OTHER = "math", "other"


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # MATH or OTHER
    key: str  # stable identity (record id or file:line), decides the split


def iter_labelled_records(paths: str | Sequence[str], text_field: str = "text") -> Iterator[tuple[str, dict, str]]:
    """``(key, record, text)`` for every record with a non-blank text; a malformed record stops with its file and
    line (labelled data is strict). Folders and run folders resolve to their document shards, never their reports.
    The key is the record id or ``file:line``."""
    for path in resolve_document_inputs([paths] if isinstance(paths, str) else list(paths)):
        for pos, rec in iter_records(path):
            if isinstance(rec, Reject):
                raise InputError(str(rec))
            text = rec.get(text_field)
            if not isinstance(text, str):
                raise InputError(f"{path}:{pos}: record has no string {text_field!r} field")
            if text.strip():
                yield str(rec.get("id") or f"{path}:{pos}"), {**rec, "_path": path}, text


def iter_texts(paths: str | Sequence[str], text_field: str = "text") -> Iterator[tuple[str, str]]:
    """``(key, text)`` for every record of the files (see :func:`iter_labelled_records`)."""
    for key, _, text in iter_labelled_records(paths, text_field):
        yield key, text


def load_examples(paths: str | Sequence[str], label: str, text_field: str = "text") -> list[Example]:
    return [Example(text, label, key) for key, text in iter_texts(paths, text_field)]


def in_validation(ex: Example, fraction: float, seed: int = 0) -> bool:
    """Deterministic split by a hash of the record's key and text (independent of file order)."""
    if fraction <= 0:
        return False
    h = hashlib.blake2b(f"{seed}\0{ex.key}\0{ex.text[:2000]}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


def split(examples: Sequence[Example], fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    train, valid = [], []
    for ex in examples:
        (valid if in_validation(ex, fraction, seed) else train).append(ex)
    return train, valid


def file_fingerprints(paths: str | Sequence[str]) -> list[dict[str, str | int]]:
    """``[{path, sha256, bytes}]`` for the data files behind ``paths`` (recorded in the model card)."""
    out = []
    for path in resolve_document_inputs([paths] if isinstance(paths, str) else list(paths)):
        h = hashlib.sha256()
        size = 0
        with fsspec.open(path, "rb") as fh:  # the stored bytes, not decompressed
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
                size += len(block)
        out.append({"path": path, "sha256": h.hexdigest(), "bytes": size})
    return out

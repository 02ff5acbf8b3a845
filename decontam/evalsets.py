"""Eval-set registry (``manifests/evalsets.yaml``): which sets exist, where their files are, which fields hold
the question and the answers, and the text of every item part.

An *item* is one eval record; its *parts* are checked separately: one ``question`` part (all question
fields joined, option lists/dicts flattened) and one part per answer field (one per element when the
value is a list).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corpus.errors import MathcorpusError
from corpus.io import Reject, iter_jsonl, open_file


class EvalSetError(MathcorpusError):
    """A registry, profile or eval-set file problem; the message names the file/key."""


DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "manifests" / "evalsets.yaml"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the `corpus` package
ALL_PROFILE = "all"
EVALSETS_ROOT_ENV = "MATHCORPUS_EVALSETS_ROOT"  # fallback for --evalsets-root / evalsets_root


@dataclass(frozen=True)
class EvalSetSpec:
    """One registry entry."""

    name: str
    path: str
    question: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()
    id: str | None = None
    strip: tuple[str, ...] = ()
    root: str = "evalsets"  # evalsets | package
    lang: str = "en"
    split: str = "test"
    demo: bool = False
    hub: Mapping[str, Any] | None = None

    def resolve(self, evalsets_root: str | None) -> str:
        """The file's location: absolute, package-relative, or under ``evalsets_root``."""
        if os.path.isabs(self.path) or "://" in self.path:
            return self.path
        if self.root == "package":
            return str(PACKAGE_ROOT / self.path)
        evalsets_root = evalsets_root or os.environ.get(EVALSETS_ROOT_ENV)
        if not evalsets_root:
            raise EvalSetError(
                f"eval set {self.name!r}: its path {self.path!r} is relative to the eval-sets folder; "
                f"pass --evalsets-root DIR (stage setting evalsets_root, or ${EVALSETS_ROOT_ENV})"
            )
        return os.path.join(evalsets_root, self.path)


@dataclass
class Registry:
    sets: dict[str, EvalSetSpec]
    profiles: dict[str, list[str]] = field(default_factory=dict)
    path: str = ""

    def select(self, selection: str | Sequence[str]) -> list[EvalSetSpec]:
        """Sets named by a profile, a set name, or a comma-separated/list mix of both (sorted, unique)."""
        names = [s.strip() for s in selection.split(",")] if isinstance(selection, str) else list(selection)
        out: dict[str, EvalSetSpec] = {}
        for name in filter(None, names):
            if name == ALL_PROFILE:
                members = [n for n, s in self.sets.items() if s.split == "test" and not s.demo]
            elif name in self.profiles:
                members = self.profiles[name]
            elif name in self.sets:
                members = [name]
            else:
                known = sorted({ALL_PROFILE, *self.profiles, *self.sets})
                raise EvalSetError(f"{self.path}: unknown eval set or profile {name!r} (known: {', '.join(known)})")
            for m in members:
                out[m] = self.sets[m]
        if not out:
            raise EvalSetError(f"{self.path}: no eval sets selected")
        return [out[k] for k in sorted(out)]


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise EvalSetError(f"{where}: expected a field name or a list of field names, got {value!r}")


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Parse and validate the registry YAML (default: ``manifests/evalsets.yaml``)."""
    path = str(path or DEFAULT_REGISTRY)
    try:
        with open_file(path, "rt", encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError as e:
        raise EvalSetError(f"{path}: eval-set registry not found") from e
    except yaml.YAMLError as e:
        raise EvalSetError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise EvalSetError(f"{path}: expected a mapping with a 'sets:' mapping")
    sets: dict[str, EvalSetSpec] = {}
    allowed = {"path", "question", "answer", "id", "strip", "root", "lang", "split", "demo", "hub"}
    for name, entry in data["sets"].items():
        where = f"{path}: sets.{name}"
        if not isinstance(entry, dict) or "path" not in entry:
            raise EvalSetError(f"{where}: expected a mapping with a 'path'")
        unknown = set(entry) - allowed
        if unknown:
            raise EvalSetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if entry.get("root", "evalsets") not in ("evalsets", "package"):
            raise EvalSetError(f"{where}.root: expected 'evalsets' or 'package'")
        strip = _str_tuple(entry.get("strip"), f"{where}.strip")
        for pattern in strip:
            try:
                re.compile(pattern)
            except re.error as e:
                raise EvalSetError(f"{where}.strip: bad regex {pattern!r}: {e}") from e
        question = _str_tuple(entry.get("question"), f"{where}.question")
        answer = _str_tuple(entry.get("answer"), f"{where}.answer")
        if not question and not answer:
            raise EvalSetError(f"{where}: needs at least one question or answer field")
        sets[str(name)] = EvalSetSpec(
            name=str(name), path=str(entry["path"]), question=question, answer=answer,
            id=entry.get("id"), strip=strip, root=entry.get("root", "evalsets"), lang=str(entry.get("lang", "en")),
            split=str(entry.get("split", "test")), demo=bool(entry.get("demo", False)), hub=entry.get("hub"),
        )
    profiles: dict[str, list[str]] = {}
    for pname, members in (data.get("profiles") or {}).items():
        members = list(_str_tuple(members, f"{path}: profiles.{pname}"))
        missing = [m for m in members if m not in sets]
        if missing:
            raise EvalSetError(f"{path}: profiles.{pname}: unknown set(s) {', '.join(missing)}")
        if pname == ALL_PROFILE:
            raise EvalSetError(f"{path}: profiles.{ALL_PROFILE} is built in (every test set); remove it")
        profiles[str(pname)] = members
    return Registry(sets=sets, profiles=profiles, path=path)


# ---- items -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemPart:
    """One checked text of an eval item: ``question``, or an answer field (``solution``, ``solution[1]``)."""

    evalset: str
    item_id: str
    part: str
    text: str


def flatten(value: Any) -> list[str]:
    """Text pieces of a field value: strings as is, numbers as text, lists element-wise, dicts as 'K. v'."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, int | float):
        return [f"{value:g}" if isinstance(value, float) else str(value)]
    if isinstance(value, list | tuple):
        return [piece for v in value for piece in flatten(v)]
    if isinstance(value, Mapping):
        return [f"{k}. {piece}" for k, v in value.items() for piece in flatten(v)]
    return [str(value)]


def _get(record: Mapping[str, Any], name: str) -> Any:
    """A field, with dotted paths into nested objects (``other.source``)."""
    value: Any = record
    for key in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def item_parts(spec: EvalSetSpec, record: Mapping[str, Any], line: int) -> list[ItemPart]:
    """The parts of one record (empty fields give no part)."""
    raw_id = _get(record, spec.id) if spec.id else None
    item_id = str(raw_id) if raw_id not in (None, "") else f"L{line}"
    strips = [re.compile(p) for p in spec.strip]

    def clean(text: str) -> str:
        for rx in strips:
            text = rx.sub("", text)
        return text

    parts: list[ItemPart] = []
    question = "\n".join(piece for f in spec.question for piece in flatten(_get(record, f)))
    if question:
        parts.append(ItemPart(spec.name, item_id, "question", clean(question)))
    for f in spec.answer:
        value = _get(record, f)
        if isinstance(value, list) and len(value) > 1:
            for i, v in enumerate(value):
                text = "\n".join(flatten(v))
                if text:
                    parts.append(ItemPart(spec.name, item_id, f"{f}[{i}]", clean(text)))
        else:
            text = "\n".join(flatten(value))
            if text:
                parts.append(ItemPart(spec.name, item_id, f, clean(text)))
    return parts


@dataclass
class LoadedSet:
    """An eval set as read: its file identity and its item parts."""

    spec: EvalSetSpec
    location: str
    sha256: str
    items: int
    parts: list[ItemPart]

    def describe(self) -> dict[str, Any]:
        shown = self.spec.path if self.spec.root == "evalsets" else f"{self.spec.root}:{self.spec.path}"
        return {"name": self.spec.name, "path": shown, "sha256": self.sha256, "items": self.items,
                "lang": self.spec.lang, "split": self.spec.split}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open_file(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _iter_file(spec: EvalSetSpec, location: str) -> Iterator[tuple[int, dict]]:
    for line, rec in iter_jsonl(location):
        if isinstance(rec, Reject):
            raise EvalSetError(f"eval set {spec.name!r}: {rec}")
        yield line, rec


def load_set(spec: EvalSetSpec, evalsets_root: str | None = None, allow_hub: bool = False) -> LoadedSet:
    """Read one eval set from its local file (or, with ``allow_hub`` and no local file, from the hub)."""
    location = spec.resolve(evalsets_root)
    if not os.path.exists(location) and "://" not in location:
        if allow_hub and spec.hub:
            return _load_from_hub(spec)
        hint = " (or pass --allow-hub to download it)" if spec.hub else ""
        raise EvalSetError(f"eval set {spec.name!r}: file not found: {location}{hint}")
    parts: list[ItemPart] = []
    items = 0
    for line, rec in _iter_file(spec, location):
        items += 1
        parts.extend(item_parts(spec, rec, line))
    return LoadedSet(spec, location, sha256_file(location), items, parts)


def _load_from_hub(spec: EvalSetSpec) -> LoadedSet:  # pragma: no cover - needs network
    """Opt-in: the hub copy via ``datasets`` (the sha256 is of the canonical JSONL of its records)."""
    import json

    import datasets

    hub = dict(spec.hub or {})
    ds = datasets.load_dataset(hub["dataset"], hub.get("config"), split=hub.get("split", "test"))
    h = hashlib.sha256()
    parts: list[ItemPart] = []
    items = 0
    for line, rec in enumerate(ds, 1):
        items += 1
        h.update(json.dumps(rec, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n")
        parts.extend(item_parts(spec, rec, line))
    return LoadedSet(spec, f"hub:{hub['dataset']}", h.hexdigest(), items, parts)


def load_sets(selection: str | Sequence[str], evalsets_root: str | None = None, registry: str | None = None,
              allow_hub: bool = False) -> list[LoadedSet]:
    """Resolve a profile/names selection against the registry and read every selected set."""
    reg = load_registry(registry)
    return [load_set(s, evalsets_root, allow_hub) for s in reg.select(selection)]

"""Run manifests: YAML files that describe inputs, stages and settings, validated on load.

Loaded with ``yaml.safe_load`` (no code execution). Every problem is reported as one line naming the file,
the key path and the problem, e.g. ``manifests/demo.yaml: stages[2].threshold: Input should be a valid
number``. Relative paths in a manifest (input paths, and stage settings whose key ends in ``_path``, ``_paths``,
``_dir``, ``_dirs`` or ``_root``) are relative to the manifest's own folder; ``$VARS`` and ``~`` are
expanded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corpus.errors import MathcorpusError
from corpus.schema import SOURCES
from pipelines.registry import StageSettings, get_stage, stages


class ManifestError(MathcorpusError, ValueError):
    """An invalid manifest; the message is one line naming file, key and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    """One input group: files of one source kind."""

    name: str
    source: str
    paths: list[str] = Field(min_length=1)
    format: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v not in SOURCES:
            raise ValueError(f"must be one of {', '.join(SOURCES)}")
        return v


class ExecutorSpec(_Strict):
    kind: Literal["ray", "local"] = "ray"
    tasks: int = Field(default=2, ge=1)
    workers: int = Field(default=-1, ge=-1)  # -1: as many as tasks (bounded by cores for local)
    cpus_per_task: float = Field(default=1, gt=0)
    mem_per_cpu_gb: float = Field(default=2, gt=0)
    ray_address: str | None = None  # else RAY_ADDRESS, else a local cluster


class StageResources(_Strict):
    """Per-stage overrides of the executor settings (``resources:`` on a stage entry); unset keys inherit."""

    tasks: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=-1)
    cpus_per_task: float | None = Field(default=None, gt=0)
    mem_per_cpu_gb: float | None = Field(default=None, gt=0)


class StageEntry(BaseModel):
    """A validated stage entry: its type name, its settings model instance and its resource overrides."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    stage: str
    settings: StageSettings
    resources: StageResources = Field(default_factory=StageResources)


class Manifest(_Strict):
    name: str
    description: str = ""
    output: str = "build/run"
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    inputs: list[InputSpec] = Field(default_factory=list)
    stages: list[StageEntry] = Field(default_factory=list)
    path: str | None = None  # where it was loaded from (set by the loader)

    @field_validator("inputs")
    @classmethod
    def _some_inputs(cls, v: list[InputSpec]) -> list[InputSpec]:
        if not v:
            raise ValueError("empty list: give at least one input (or leave the key out)")
        return v

    def stage(self, name: str) -> StageEntry | None:
        return next((s for s in self.stages if s.stage == name), None)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fmt(path: str, prefix: str, err: ValidationError) -> str:
    e = err.errors()[0]
    loc = _loc(e["loc"])
    key = f"{prefix}.{loc}" if prefix and loc != "(top level)" else (prefix or loc)
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"{path}: {key}: {msg}{more}"


def _resolve(value: str, base: Path) -> str:
    value = os.path.expanduser(os.path.expandvars(value))
    if "://" in value or os.path.isabs(value):
        return value
    return os.path.normpath(str(base / value))


_PATH_KEYS = ("_path", "_paths", "_dir", "_dirs", "_root")


def _resolve_value(key: str, value: Any, base: Path) -> Any:
    """Resolve path-valued settings: keys ending in _path(s), _dir(s) or _root, whose value is a string, a list
    of strings or a mapping of them (e.g. ``model_paths: {web: ..., code: ...}``); nested mappings recurse."""
    if isinstance(value, dict):
        return {k: _resolve_value(key if key.endswith(_PATH_KEYS) else k, v, base) for k, v in value.items()}
    if not key.endswith(_PATH_KEYS):
        return value
    if isinstance(value, str):
        return _resolve(value, base)
    if isinstance(value, list):
        return [_resolve(v, base) if isinstance(v, str) else v for v in value]
    return value


def parse_manifest(data: Any, path: str = "<manifest>") -> Manifest:
    """Validate a manifest already parsed from YAML; relative paths resolve against ``path``'s folder."""
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: (top level): expected a mapping, got {type(data).__name__}")
    data = dict(data)
    raw_stages = data.pop("stages", []) or []
    if not isinstance(raw_stages, list):
        raise ManifestError(f"{path}: stages: expected a list of stage entries")
    try:
        manifest = Manifest.model_validate({**data, "stages": []})
    except ValidationError as e:
        raise ManifestError(_fmt(path, "", e)) from None
    base = Path(path).resolve().parent if path != "<manifest>" else Path.cwd()
    for spec in manifest.inputs:
        spec.paths = [_resolve(p, base) for p in spec.paths]
    manifest.output = _resolve(manifest.output, base) if "output" in data else manifest.output
    entries = []
    for i, raw in enumerate(raw_stages):
        key = f"stages[{i}]"
        if not isinstance(raw, dict) or "stage" not in raw:
            raise ManifestError(f"{path}: {key}: expected a mapping with a 'stage' key")
        raw = dict(raw)
        name = raw.pop("stage")
        try:
            spec = get_stage(name)
        except KeyError:
            raise ManifestError(f"{path}: {key}.stage: unknown stage {name!r} (known: {', '.join(stages())})") from None
        raw = {k: _resolve_value(k, v, base) for k, v in raw.items()}
        try:
            resources = StageResources.model_validate(raw.pop("resources", None) or {})
        except ValidationError as e:
            raise ManifestError(_fmt(path, f"{key}.resources", e)) from None
        try:
            settings = spec.settings.model_validate(raw)
        except ValidationError as e:
            raise ManifestError(_fmt(path, key, e)) from None
        entries.append(StageEntry(stage=name, settings=settings, resources=resources))
    manifest.stages = entries
    manifest.path = path
    return manifest


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest file. Raises :class:`ManifestError` with a one-line message."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"{path}: {where}invalid YAML: {problem}") from None
    return parse_manifest(data, path)

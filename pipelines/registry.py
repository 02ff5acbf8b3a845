"""Stage registry: how a manifest's ``stages:`` entries become datatrove pipelines.

A *stage* (``extract``, ``classify``, ``dedup``, ``decontam``, ``mix`` ...) is a module in
``pipelines/stages/`` that defines ``STAGE = StageSpec(...)``. Modules are discovered automatically, so
adding a stage means adding one file. A stage builds one or more *phases*; each phase is one datatrove
executor job (a list of steps run per rank), run to completion before the next starts, with its own
completion markers (so a killed run resumes phase by phase, rank by rank).

Data contract between stages: a stage reads the previous stage's Parquet shards from ``ctx.input_dir`` and
writes its kept documents, in the document schema, to ``ctx.kept_dir`` (and removed ones, with a ``reason``
column, to ``ctx.removed_dir``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class StageSettings(BaseModel):
    """Base class of every stage's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Phase:
    """One executor job: ``steps`` run for each rank in ``range(tasks)``."""

    name: str
    steps: list[Any]
    tasks: int = 1


@dataclass
class StageContext:
    """What a stage needs to know about the run it is part of."""

    run_dir: str  # the run's output root
    stage_dir: str  # this stage's working folder: {run_dir}/stages/{index:02d}_{name}
    input_dir: str | None  # previous stage's kept shards (None for the first stage)
    tasks: int  # default number of tasks per phase
    manifest: Any  # pipelines.manifest.Manifest
    index: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kept_dir(self) -> str:
        return f"{self.stage_dir}/kept"

    @property
    def removed_dir(self) -> str:
        return f"{self.stage_dir}/removed"


@dataclass(frozen=True)
class StageSpec:
    """A stage type: its settings model, how to build its phases, and an optional driver-side finalizer.

    ``finalize(settings, ctx)`` runs once in the driver after all phases completed (reports, manifests) and
    returns a JSON-able summary that goes into the run manifest; an ``accounting`` key in it (``documents_in``,
    ``kept``, ``removed``, ``skipped``) replaces the runner's own count of the stage's conservation terms.
    """

    name: str
    settings: type[StageSettings]
    build: Callable[[Any, StageContext], list[Phase]]
    finalize: Callable[[Any, StageContext], dict[str, Any] | None] | None = None
    description: str = ""
    # When True, the stage writes the run's final corpus itself (e.g. mix) into ctx.extra["corpus_dir"].
    writes_corpus: bool = False
    # Up-front check of the settings before the run's first stage (eval sets, models ...): raises with the
    # problem, returns the identity ``{path: [size, mtime]}`` of extra files the stage reads (or None).
    check: Callable[[Any], dict[str, Any] | None] | None = None
    # Version of the stage's on-disk work files: bump it when the code reads files an older version did not
    # write (or writes them differently). A stage folder made with another work format is recomputed, like a
    # settings change, never resumed. 1: the format of folders made before formats were recorded.
    work_format: int = 1


_REGISTRY: dict[str, StageSpec] | None = None


def stages() -> dict[str, StageSpec]:
    """All stage types, discovered from the modules of ``pipelines.stages``."""
    global _REGISTRY
    if _REGISTRY is None:
        import pipelines.stages as pkg

        found: dict[str, StageSpec] = {}
        for mod in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"pipelines.stages.{mod.name}")
            spec = getattr(module, "STAGE", None)
            if isinstance(spec, StageSpec):
                found[spec.name] = spec
        _REGISTRY = dict(sorted(found.items()))
    return _REGISTRY


def get_stage(name: str) -> StageSpec:
    try:
        return stages()[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r} (known: {', '.join(stages())})") from None

"""Up-front checks of a run, before its first stage starts: option ranges, inputs, and every file, model and
eval set its stages name. Each problem is one line naming the option or manifest key and what to fix.

Also the identity (size + modification time) of those files, so a stage whose inputs changed is recomputed.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec

from corpus.errors import MathcorpusError
from corpus.io import expand_paths
from pipelines.registry import get_stage

PATH_SUFFIXES = ("_path", "_paths", "_root")  # settings naming files the stage reads (``*_dir``: it writes)


class OptionError(MathcorpusError, ValueError):
    """An option or setting out of its allowed range; the message names it and the range."""


def check_range(name: str, value: float | None, *, ge: float | None = None, gt: float | None = None,
                le: float | None = None, lt: float | None = None) -> None:
    """Raise :class:`OptionError` naming ``name`` and the allowed range unless ``value`` lies in it."""
    if value is None:
        return
    bad = ((ge is not None and value < ge) or (gt is not None and value <= gt)
           or (le is not None and value > le) or (lt is not None and value >= lt))
    if bad:
        lo = f">= {ge}" if ge is not None else (f"> {gt}" if gt is not None else "")
        hi = f"<= {le}" if le is not None else (f"< {lt}" if lt is not None else "")
        raise OptionError(f"{name}: must be {' and '.join(x for x in (lo, hi) if x)} (got {value})")


def check_run_options(executor: str, tasks: int, workers: int) -> None:
    from pipelines.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise OptionError(f"--executor: must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    check_range("--tasks", tasks, ge=1)
    check_range("--workers", workers, ge=-1)
    if workers == 0:
        raise OptionError("--workers: must be >= 1, or -1 for as many as tasks (got 0)")


def file_identity(path: str) -> list[Any]:
    """``[size, mtime]`` of a file (an ETag or checksum where an object store has no mtime)."""
    if "://" not in path:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    info = fsspec.get_fs_token_paths(path)[0].info(path)
    stamp = next((info[k] for k in ("mtime", "LastModified", "updated", "ETag", "md5Hash") if info.get(k)), None)
    return [info.get("size"), str(stamp)]


def files_identity(patterns: list[str]) -> dict[str, list[Any]]:
    """Identity of every file ``patterns`` (files, folders, globs) expand to; a pattern matching nothing fails."""
    return {f: file_identity(f) for f in expand_paths(patterns)}


def input_identity(manifest) -> dict[str, list[Any]]:
    """Identity of every file of the manifest's inputs (the same files ``extract`` reads, and a few more)."""
    out: dict[str, list[Any]] = {}
    for i, spec in enumerate(manifest.inputs):
        try:
            out.update(files_identity(list(spec.paths)))
        except MathcorpusError as e:
            raise MathcorpusError(f"{manifest.path}: inputs[{i}] ({spec.name}): {e}") from None
    return out


def _path_values(key: str, value: Any, where: str):
    """``(where, path)`` for path-valued settings (keys ending in _path, _paths, _root), nested models too."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = key if key.endswith(PATH_SUFFIXES) and not isinstance(v, dict) else k
            yield from _path_values(sub, v, f"{where}.{k}")
    elif isinstance(value, list) and key.endswith(PATH_SUFFIXES):
        for j, v in enumerate(value):
            if isinstance(v, str):
                yield f"{where}[{j}]", v
    elif isinstance(value, str) and key.endswith(PATH_SUFFIXES):
        yield where, value


def _inside(path: str, folder: str) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


def validate_manifest(manifest, output: str) -> list[dict[str, Any]]:
    """Check every stage's referenced files (and the stage's own ``check``) before the first stage starts.

    Paths inside the run's output folder are made by earlier stages and are not checked. Returns, per stage, the
    identity of the files it reads, for its completion hash."""
    where = manifest.path or "<manifest>"
    if manifest.stages and manifest.stages[0].stage != "extract":
        raise MathcorpusError(f"{where}: stages[0].stage: the first stage must be 'extract' (it reads the "
                              f"inputs), not {manifest.stages[0].stage!r}")
    if manifest.stages and not manifest.inputs:
        raise MathcorpusError(f"{where}: inputs: no inputs for the 'extract' stage (give at least one)")
    identities = []
    for i, entry in enumerate(manifest.stages):
        files: dict[str, Any] = {}
        for key, value in entry.settings.model_dump(mode="json").items():
            for loc, path in _path_values(key, value, f"stages[{i}].{key}"):
                if _inside(path, output):
                    continue
                try:
                    files.update(files_identity([path]))
                except (MathcorpusError, OSError) as e:
                    raise MathcorpusError(f"{where}: {loc}: {str(e).removeprefix(f'{path}: ')} ({path})") from None
        spec = get_stage(entry.stage)
        if spec.check is not None:
            try:
                files.update(spec.check(entry.settings) or {})
            except (MathcorpusError, ValueError, OSError) as e:
                raise MathcorpusError(f"{where}: stages[{i}] ({entry.stage}): {e}") from None
        identities.append(files)
    return identities

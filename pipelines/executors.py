"""Executors: datatrove's LocalPipelineExecutor or RayPipelineExecutor, chosen by name.

``ray`` starts a local Ray cluster when ``RAY_ADDRESS`` (or an explicit address) is unset and joins the
cluster when it is set; nothing else changes between a laptop and a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any

from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from datatrove.utils.stats import PipelineStats
from loguru import logger

from pipelines.logs import quiet_logs  # noqa: F401  (re-exported for the CLI)

EXECUTORS = ("ray", "local")

_datatrove_stats_repr = getattr(PipelineStats.get_repr, "__wrapped__", PipelineStats.get_repr)


def _stats_repr(self, text=None) -> str:
    """datatrove's stats block with its "Total Runtime" named for what it is: the sum of the steps' mean time per
    call (it read "0 seconds" for a 2-minute stage). Each task logs its real wall and CPU time next to it."""
    return _datatrove_stats_repr(self, text).replace("Total Runtime:", "Step time per call (mean, summed):", 1)


_stats_repr.__wrapped__ = _datatrove_stats_repr
PipelineStats.get_repr = _stats_repr


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to (or start) Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
    if address is None:
        # "local" forces a fresh local cluster: a bare ray.init() would join any `ray start` cluster on this host.
        address = "local"
        kwargs["include_dashboard"] = False
        if num_cpus:
            kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)


def _reset_peak_rss() -> None:
    """Reset this process's peak-RSS counter (Linux ``clear_refs``), so each task measures its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (since the last reset, where the OS supports it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_memory() -> None:
    """Give memory this process freed back to the OS: garbage cycles, glibc's free heap pages
    (``malloc_trim``) and Arrow's pool. A driver that runs light tasks inline calls it before it starts
    workers, which begin as a copy of it."""
    import ctypes
    import ctypes.util
    import gc
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ray_node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        return None


class TaskRecords:
    """Executor mixin: every completed rank writes ``{logging_dir}/tasks/{rank:05d}.json`` next to its completion
    marker: where it ran (host, pid, Ray node id), how long it took (wall and CPU seconds) and its peak resident
    memory (for sizing)."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, *args, **kwargs):
        if self.is_rank_completed(rank):
            return super()._run_for_rank(rank, local_rank, *args, **kwargs)
        from pipelines.progress import ProgressSettings, TaskProgress

        _reset_peak_rss()
        self._task_started = (rank, time.time(), _cpu_seconds())
        every = ProgressSettings.from_env().every_seconds  # 0: no progress file (benchmarks measure without)
        tracker = TaskProgress(self.logging_dir, rank, self.pipeline, self.world_size, every).start() if every > 0 \
            else None
        state = "failed"
        try:
            result = super()._run_for_rank(rank, local_rank, *args, **kwargs)
            state = "done" if self.is_rank_completed(rank) else "failed"
            return result
        finally:
            if tracker is not None:
                tracker.stop(state)

    def mark_rank_as_completed(self, rank: int) -> None:
        """Write the task record first, so a completed rank always has one (even if killed right after)."""
        started_rank, started, cpu = getattr(self, "_task_started", (None, time.time(), _cpu_seconds()))
        if started_rank == rank:
            record = {
                "rank": rank, "host": socket.gethostname(), "pid": os.getpid(), "node_id": _ray_node_id(),
                "started": round(started, 3), "seconds": round(time.time() - started, 3),
                "cpu_seconds": round(_cpu_seconds() - cpu, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
            }
            with self.logging_dir.open(f"tasks/{rank:05d}.json", "w") as fh:
                json.dump(record, fh)
            # datatrove's "Total Runtime" above sums per-document step means; this is the task's real time
            logger.info(f"Task {rank}: wall {record['seconds']:.1f} s, CPU {record['cpu_seconds']:.1f} s, "
                        f"peak RSS {record['peak_rss_mb']:.0f} MiB")
        super().mark_rank_as_completed(rank)


def stage_stats(stage_dir: str, documents: int | None, wall_seconds: float) -> dict[str, Any]:
    """A stage's cost from its task records (every phase): CPU seconds, throughput per core, peak memory per task.

    ``docs_per_core_second`` divides by the tasks' summed wall seconds (one task holds one core)."""
    import fsspec

    fs, _, (root,) = fsspec.get_fs_token_paths(stage_dir)
    records = []
    for path in sorted(fs.glob(f"{root}/logs/*/tasks/*.json")):
        with fs.open(path, "rt") as fh:
            records.append(json.load(fh))
    task_seconds = sum(r["seconds"] for r in records)
    return {
        "tasks": len(records),
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in records), 3),
        "task_seconds": round(task_seconds, 3),
        "docs_per_second": round(documents / wall_seconds, 2) if documents is not None and wall_seconds else None,
        "docs_per_core_second": round(documents / task_seconds, 2) if documents is not None and task_seconds else None,
        "peak_rss_mb": max((r["peak_rss_mb"] for r in records), default=None),
    }


class LocalExecutor(TaskRecords, LocalPipelineExecutor):
    """datatrove's local executor, writing per-task records. Its pool workers ignore Ctrl-C: the driver handles
    it (one line, exit 130) and terminates them, so no worker prints a traceback."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, *args, **kwargs):
        import multiprocessing
        import signal

        if multiprocessing.parent_process() is not None:  # a pool worker, not the driver (workers=1 runs inline)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return super()._run_for_rank(rank, local_rank, *args, **kwargs)


class RayExecutor(TaskRecords, RayPipelineExecutor):
    """datatrove's Ray executor, writing per-task records (with the Ray node id each rank ran on)."""


def make_executor(
    kind: str,
    steps: list[Any],
    *,
    tasks: int,
    workers: int,
    logging_dir: str,
    cpus_per_task: float = 1,
    mem_per_cpu_gb: float = 2,
    ray_address: str | None = None,
):
    """A datatrove executor that runs ``steps`` for ``tasks`` ranks, ``workers`` at a time, resumable."""
    if workers is None or workers < 1:
        workers = tasks if kind == "ray" else min(tasks, os.cpu_count() or 1)
    if kind == "local":
        return LocalExecutor(
            steps, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True,
            start_method="spawn",
        )
    if kind == "ray":
        ensure_ray(ray_address)
        return RayExecutor(
            steps, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True,
            cpus_per_task=cpus_per_task, mem_per_cpu_gb=mem_per_cpu_gb,
        )
    raise ValueError(f"unknown executor {kind!r} (expected one of {', '.join(EXECUTORS)})")

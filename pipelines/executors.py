"""Executors: datatrove's LocalPipelineExecutor or RayPipelineExecutor, chosen by name.

``ray`` starts a local Ray cluster when ``RAY_ADDRESS`` (or an explicit address) is unset and joins the
cluster when it is set; nothing else changes between a laptop and a cluster.
"""

from __future__ import annotations

import os
from typing import Any

from pipelines.logs import quiet_logs  # noqa: F401  (re-exported for the CLI)

EXECUTORS = ("ray", "local")


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
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(
            steps, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True,
            start_method="spawn",
        )
    if kind == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        ensure_ray(ray_address)
        return RayPipelineExecutor(
            steps, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True,
            cpus_per_task=cpus_per_task, mem_per_cpu_gb=mem_per_cpu_gb,
        )
    raise ValueError(f"unknown executor {kind!r} (expected one of {', '.join(EXECUTORS)})")

"""Shared fixtures: the real data beside the repo, a real local Ray cluster, small manifests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real eval sets, web pages, WARC files and seed text (read-only)."""
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (set MATHCORPUS_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster for the whole session (not mocked)."""
    import ray

    from pipelines.executors import ensure_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.pop("RAY_ADDRESS", None)
    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()

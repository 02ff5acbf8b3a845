"""Live progress and ``mathcorpus status``: a real run in a subprocess, followed from this process.

The moment of every check is decided by the test, not by the machine's speed: the ``slow`` test stage
(tests/test_scale_cluster.py) blocks rank 1 until the test creates the gate file, so while the test looks, rank 0
is finished and rank 1 is running, whatever the speed of the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datatrove.pipeline.base import PipelineStep
from test_scale_cluster import driver_with_stage, shard_phase

from pipelines.progress import TaskProgress, read_phase
from pipelines.registry import Phase, StageSettings, StageSpec

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SEEDS = ["math_text.jsonl", "general_code.jsonl"]  # 876 + 300 records


def _manifest(tmp: Path, seed: Path, kind: str) -> Path:
    data = {
        "name": f"progress-{kind}", "output": str(tmp / "run"),
        "executor": {"kind": kind, "tasks": 2, "workers": 2},
        "inputs": [{"name": f.split(".")[0], "source": "web" if "code" not in f else "code", "paths": [str(seed / f)]}
                   for f in SEEDS],
        "stages": [{"stage": "extract"},
                   {"stage": "slow", "started_dir": str(tmp / "started"), "gate": str(tmp / "gate"),
                    "gated_ranks": [1]}],
    }
    path = tmp / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.setdefault("RAY_AUTH_MODE", "disabled")
    return env


def _status(run: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mathcorpus"), "status", str(run), *args], capture_output=True, text=True,
                          timeout=60)


def _wait_for(cond, what: str, driver: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not cond():
        if driver.poll() is not None:
            pytest.fail(f"driver exited ({driver.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.time() > deadline:
            pytest.fail(f"gave up waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def follow_gated_run(tmp_path: Path, seed: Path, kind: str, *extra: str) -> tuple[dict, dict, str]:
    """Start the run, check ``status`` while rank 1 is held, release it; returns (held status, final status, log)."""
    from test_scale_cluster import DRIVER_WITH_SLOW_STAGE

    manifest = _manifest(tmp_path, seed, kind)
    run, gate = tmp_path / "run", tmp_path / "gate"
    slow_logs = run / "stages/01_slow/logs/slow"
    log = tmp_path / "driver.log"
    with open(log, "w") as fh:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER_WITH_SLOW_STAGE, "run", str(manifest), *extra],
                                  env=_env(), stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: (slow_logs / "completions/00000").exists() and (slow_logs / "progress/00001.json").exists(),
                  "rank 0 of the slow stage to finish and rank 1 to start", driver, log)
        out = _status(run, "--json")
        assert out.returncode == 0, out.stderr
        held = json.loads(out.stdout)
        text = _status(run)
        assert text.returncode == 0, text.stderr
        held["text"] = text.stdout
        gate.touch()
        driver.wait(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, log.read_text()[-3000:]
    final = _status(run, "--json")
    assert final.returncode == 0, final.stderr
    return held, json.loads(final.stdout), log.read_text()


def check_held_and_final(run: Path, held: dict, final: dict) -> None:
    kept = sorted((run / "stages/00_extract/kept").glob("*.parquet"))
    assert len(kept) == 2
    # while rank 1 is held: stage 1 done, stage 2 running with one task finished and one running
    assert held["state"] == "running"
    assert [s["state"] for s in held["stages"]] == ["done", "running"]
    assert held["stages"][0]["documents_out"] == 876 + 300
    assert held["current"]["stage"] == "slow" and held["current"]["phase"] == "slow"
    p = held["phase_progress"]
    assert (p["tasks"], p["finished"], p["running"], p["failed"], p["pending"]) == (2, 1, 1, 0, 0)
    assert p["documents_total"] == 876 + 300  # from the shards' footers, before the tasks read them
    assert p["documents"] == _rows(kept[0])  # rank 0 read its shard; rank 1 is held before reading
    assert p["bytes_total"] == sum(f.stat().st_size for f in kept)
    assert p["bytes"] == kept[0].stat().st_size
    assert p["fraction"] == pytest.approx(_rows(kept[0]) / (876 + 300))
    assert p["slowest"]["rank"] == 1
    assert "slow" in held["text"] and "tasks 1/2 done, 1 running, 0 failed" in held["text"]
    # at the end: everything done, the report named, per-stage cost in run.json
    assert final["state"] == "done" and [s["state"] for s in final["stages"]] == ["done", "done"]
    assert final["report"].endswith("report.html") and Path(final["report"]).is_file()
    done = read_phase(str(run / "stages/01_slow/logs/slow"))
    assert (done.finished, done.documents, done.fraction) == (2, 876 + 300, 1.0)
    info = json.loads((run / "run.json").read_text())
    for s in info["stages"]:
        assert s["tasks"] >= 2 and s["cpu_seconds"] > 0 and s["peak_rss_mb"] > 0, s
        assert s["docs_per_core_second"] > 0 and s["docs_per_second"] > 0, s
    for f in (run / "stages/01_slow/logs/slow/progress").glob("0*.json"):
        rec = json.loads(f.read_text())
        assert rec["state"] == "done" and rec["documents"] == rec["documents_total"], rec


def test_status_follows_a_local_run_and_the_driver_shows_progress(shared_data, tmp_path):
    held, final, log = follow_gated_run(tmp_path, shared_data / "seed", "local")
    check_held_and_final(tmp_path / "run", held, final)
    # not a terminal: log lines, one at least when a task finished, and the end-of-run table
    assert "slow: 0/1,176 docs" in log or "slow: " in log
    assert "tasks 2/2 done, 0 running, 0 failed" in log
    assert "docs/s/core" in log and f"report: {tmp_path / 'run'}/report.html" in log


@pytest.mark.ray
def test_status_follows_a_ray_run_and_quiet_shows_nothing(shared_data, tmp_path):
    held, final, log = follow_gated_run(tmp_path, shared_data / "seed", "ray", "--quiet")
    check_held_and_final(tmp_path / "run", held, final)
    assert "tasks 2/2 done" not in log and "docs/s/core" not in log  # --quiet: no progress, no table
    assert "Processing done for rank" not in log  # the tasks' own logs stay in their log files
    assert f"report: {tmp_path / 'run'}/report.html" in log


class FailSettings(StageSettings):
    fail_rank: int = 1


class FailingStep(PipelineStep):
    """Passes its documents on, then fails in ``fail_rank`` (a task that crashes after doing its work)."""

    name = "fail"
    type = "💥 - TEST"

    def __init__(self, fail_rank: int):
        super().__init__()
        self.fail_rank = fail_rank

    def run(self, data, rank: int = 0, world_size: int = 1):
        yield from data
        if rank == self.fail_rank:
            raise RuntimeError("planted failure")


def _build_fail(settings: FailSettings, ctx) -> list[Phase]:
    return shard_phase(ctx, "fail", FailingStep(settings.fail_rank))


FAIL_STAGE = StageSpec("fail", settings=FailSettings, build=_build_fail, description="test only: rank 1 fails")
DRIVER_WITH_FAIL_STAGE = driver_with_stage("test_progress", "FAIL_STAGE", "fail")


def test_status_reports_a_failed_task_and_a_stopped_driver(shared_data, tmp_path):
    seed = shared_data / "seed"
    data = {"name": "progress-fail", "output": str(tmp_path / "run"), "executor": {"kind": "local", "tasks": 2},
            "inputs": [{"name": "math", "source": "web", "paths": [str(seed / "math_text.jsonl")]}],
            "stages": [{"stage": "extract"}, {"stage": "fail"}]}
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    out = subprocess.run([sys.executable, "-c", DRIVER_WITH_FAIL_STAGE, "run", str(manifest), "--workers", "1"],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    st = json.loads(_status(tmp_path / "run", "--json").stdout)
    assert st["state"] == "stopped" and "rerun the same command" in st["note"]
    assert [s["state"] for s in st["stages"]] == ["done", "running"]
    p = st["phase_progress"]
    assert (p["tasks"], p["finished"], p["failed"], p["running"], p["pending"]) == (2, 1, 1, 0, 0)
    kept = sorted((tmp_path / "run/stages/00_extract/kept").glob("*.parquet"))
    assert p["documents"] == _rows(kept[0]) + _rows(kept[1])  # the failed rank read its shard before failing
    text = _status(tmp_path / "run").stdout
    assert "stopped" in text and "tasks 1/2 done, 0 running, 1 failed" in text


def test_task_progress_reads_the_offset_of_the_open_input(tmp_path):
    """Input bytes done come from the read offset of the file the task has open (/proc/self/fdinfo)."""
    from datatrove.io import get_datafolder

    from pipelines.steps.ingest import InputFile, InputReader

    data = tmp_path / "in.txt"
    data.write_bytes(b"x" * 10_000)
    other = tmp_path / "other.txt"
    other.write_bytes(b"y" * 5_000)
    files = [InputFile(str(other), "book", None), InputFile(str(data), "book", None)]  # rank 0 of 1 reads both
    tracker = TaskProgress(get_datafolder(str(tmp_path / "logs")), 0, [InputReader(files, str(tmp_path))], 1)
    assert tracker.bytes_total == 15_000
    with open(data, "rb", buffering=0) as fh:  # unbuffered: the OS offset is exactly what was read
        fh.read(4_000)
        snap = tracker.snapshot()
    assert snap["bytes"] == 5_000 + 4_000  # the first file is behind, 4,000 bytes into the second
    tracker.write("done")
    rec = json.loads((tmp_path / "logs/progress/00000.json").read_text())
    assert rec["state"] == "done" and rec["bytes"] == rec["bytes_total"] == 15_000
    # a reader that loads whole files (no offset to see): the files it started say how far it is
    reader = InputReader(files, str(tmp_path))
    whole = TaskProgress(get_datafolder(str(tmp_path / "logs2")), 0, [reader], 1)
    assert whole.snapshot()["bytes"] == 0
    reader.stat_update("files")
    reader.stat_update("files")  # now in the second file
    assert whole.snapshot()["bytes"] == 5_000


def test_status_of_a_folder_without_a_run_is_one_line(tmp_path):
    out = _status(tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no run here" in out.stderr and "Traceback" not in out.stderr

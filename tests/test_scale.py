"""Scale-out pieces that need no multi-node cluster: per-stage resources, fsspec (``file://``) run folders with
logs and completion markers on them, per-task records, and resuming a killed run without loss or duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from test_scale_cluster import DRIVER_WITH_SLOW_STAGE, TESTS, corpus_ids, task_records, write_manifest

from pipelines.manifest import ManifestError, load_manifest
from pipelines.runner import run_manifest
from pipelines.steps.io import read_shards

FILES = ["math_text.jsonl", "general_code.jsonl"]
N_DOCS = 876 + 300


def shard_ids(folder: Path) -> list[str]:
    return read_shards(str(folder)).column("id").to_pylist()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return env


def test_stage_resources_override_the_executor(shared_data, tmp_path):
    m = write_manifest(tmp_path / "m.yaml", shared_data / "seed", FILES, tmp_path / "run", tasks=2,
                       extra_stages=[], extract_resources={"tasks": 3, "workers": 1, "mem_per_cpu_gb": 1.5})
    manifest = load_manifest(m)
    res = manifest.stages[0].resources
    assert (res.tasks, res.workers, res.mem_per_cpu_gb, res.cpus_per_task) == (3, 1, 1.5, None)
    run_manifest(manifest, executor="local", progress=lambda s: None)
    stage = tmp_path / "run/stages/00_extract"
    assert sorted(p.name for p in (stage / "kept").glob("*.parquet")) == [f"{r:05d}.parquet" for r in range(3)]
    assert sorted(r["rank"] for r in task_records(stage)) == [0, 1, 2]
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["config"]["stages"][0]["resources"] == {"tasks": 3, "workers": 1, "mem_per_cpu_gb": 1.5}
    assert sorted(corpus_ids(tmp_path / "run")) == sorted(set(corpus_ids(tmp_path / "run")))
    assert len(corpus_ids(tmp_path / "run")) == N_DOCS


@pytest.mark.ray
def test_stage_resources_reach_the_ray_tasks(shared_data, tmp_path, ray_cluster):
    m = write_manifest(tmp_path / "m.yaml", shared_data / "seed", FILES[1:], tmp_path / "run", tasks=1,
                       extract_resources={"cpus_per_task": 0.5, "mem_per_cpu_gb": 0.25})
    run_manifest(load_manifest(m), executor="ray", progress=lambda s: None)
    saved = json.loads((tmp_path / "run/stages/00_extract/logs/extract/executor.json").read_text())
    assert (saved["cpus_per_task"], saved["mem_per_cpu_gb"]) == (0.5, 0.25)
    (record,) = task_records(tmp_path / "run/stages/00_extract")
    assert record["node_id"] == ray_cluster.get_runtime_context().get_node_id()
    assert record["peak_rss_mb"] > 10


def test_bad_stage_resources_name_the_key(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({"name": "x", "stages": [{"stage": "extract", "resources": {"gpus": 1}}]}))
    with pytest.raises(ManifestError, match=r"m\.yaml: stages\[0\]\.resources\.gpus: unknown key"):
        load_manifest(m)
    m.write_text(yaml.safe_dump({"name": "x", "stages": [{"stage": "extract", "resources": {"tasks": 0}}]}))
    with pytest.raises(ManifestError, match=r"stages\[0\]\.resources\.tasks: Input should be greater"):
        load_manifest(m)


def test_fsspec_run_folder_holds_outputs_logs_and_markers(shared_data, tmp_path):
    m = write_manifest(tmp_path / "m.yaml", shared_data / "seed", FILES, tmp_path / "unused", tasks=2)
    url = f"file://{tmp_path}/shared/run"
    result = run_manifest(load_manifest(m), executor="local", output=url, progress=lambda s: None)
    assert result.corpus_dir == f"{url}/corpus"
    run = tmp_path / "shared/run"
    logs = run / "stages/00_extract/logs/extract"
    assert sorted(p.name for p in (logs / "completions").iterdir()) == ["00000", "00001"]
    assert sorted(p.name for p in (logs / "logs").iterdir()) == ["task_00000.log", "task_00001.log"]
    assert (logs / "stats.json").is_file()
    assert json.loads((run / "run.json").read_text())["corpus_documents"] == N_DOCS
    assert Counter(corpus_ids(run)) == Counter(corpus_ids_of_plain_run(shared_data, tmp_path))


def corpus_ids_of_plain_run(shared_data: Path, tmp_path: Path) -> list[str]:
    m = write_manifest(tmp_path / "plain.yaml", shared_data / "seed", FILES, tmp_path / "plain", tasks=3)
    run_manifest(load_manifest(m), executor="local", workers=1, progress=lambda s: None)
    return corpus_ids(tmp_path / "plain")


def test_killed_run_resumes_from_completion_markers(shared_data, tmp_path):
    """Kill a local run mid-stage (SIGKILL, whole process group), rerun it: completed ranks are skipped, the
    rest are redone, and the corpus has every document exactly once.

    Ranks 1-3 of the slow stage block on a gate file, so the kill lands when rank 0 is complete and rank 1 is
    running, whatever the machine's speed; the gate is opened for the rerun."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    slow = [{"stage": "slow", "started_dir": str(started), "gate": str(gate), "gated_ranks": [1, 2, 3]}]
    m = write_manifest(tmp_path / "m.yaml", shared_data / "seed", FILES[:1], tmp_path / "run", tasks=4,
                       extra_stages=slow)
    cmd = [sys.executable, "-c", DRIVER_WITH_SLOW_STAGE, "run", str(m), "-e", "local", "-w", "1"]
    markers = tmp_path / "run/stages/01_slow/logs/slow/completions"
    log = tmp_path / "driver.log"  # a file, not a pipe: a full pipe would stall the driver
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=_env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120  # a guard against a hang, not a timing assumption
        while time.time() < deadline and proc.poll() is None:
            if (markers / "00000").exists() and list(started.glob("00001-*.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {log.read_text()[-2000:]}"
        done_before = sorted(p.name for p in markers.iterdir())
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert done_before == ["00000"]  # rank 0 done, rank 1 blocked on the gate, ranks 2-3 not started
    records_before = {r["rank"]: r for r in task_records(tmp_path / "run/stages/01_slow")}

    gate.touch()
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    records = {r["rank"]: r for r in task_records(tmp_path / "run/stages/01_slow")}
    assert sorted(records) == [0, 1, 2, 3]
    assert records[0] == records_before[0]  # not redone: its record is the first run's
    ids = corpus_ids(tmp_path / "run")
    assert len(ids) == 876 and len(set(ids)) == 876
    assert Counter(ids) == Counter(shard_ids(tmp_path / "run/stages/00_extract/kept"))


def test_changing_tasks_between_runs_recomputes_instead_of_mixing_shards(shared_data, tmp_path):
    m = write_manifest(tmp_path / "m.yaml", shared_data / "seed", FILES, tmp_path / "run", tasks=2)
    for tasks in (2, 3):
        run_manifest(load_manifest(m), executor="local", tasks=tasks, workers=1, progress=lambda s: None)
    kept = sorted(p.name for p in (tmp_path / "run/stages/00_extract/kept").glob("*.parquet"))
    assert kept == ["00000.parquet", "00001.parquet", "00002.parquet"]
    ids = corpus_ids(tmp_path / "run")
    assert len(ids) == N_DOCS and len(set(ids)) == N_DOCS

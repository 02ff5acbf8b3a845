"""Multi-node Ray on one machine: a head and a second node started with ``ray start`` on loopback.

The pipeline runs in a subprocess (``mathcorpus run MANIFEST -e ray`` with ``RAY_ADDRESS`` set), so it joins
THIS cluster and never the session's in-process one. Every process a test starts is killed by PID in a
``finally`` (never ``ray stop``, which would stop every Ray cluster on the host).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datatrove.pipeline.base import PipelineStep

from pipelines.registry import Phase, StageSettings, StageSpec

pytestmark = pytest.mark.ray

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's console scripts: ray, mathcorpus
# Same settings for both nodes and every driver: no token authentication, quick detection of a lost node.
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LoopbackCluster:
    """A Ray head plus worker nodes on 127.0.0.1, one CPU each, every port chosen free, own temp dirs."""

    def __init__(self) -> None:
        # short root: Ray's unix socket paths must stay under ~107 characters
        self.root = Path(tempfile.mkdtemp(prefix="mcray", dir="/tmp"))
        self.nodes: list[subprocess.Popen] = []
        self.address: str | None = None
        self._known: set[int] = set()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_ENV)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        env.update(extra)
        return env

    def _start_node(self, name: str, head: bool) -> subprocess.Popen:
        ports = _free_ports(7)
        args = [str(BIN / "ray"), "start", "--block", "--num-cpus=1", "--node-ip-address=127.0.0.1",
                "--disable-usage-stats", "--include-log-monitor=false", f"--temp-dir={self.root / name}",
                f"--node-manager-port={ports[0]}", f"--object-manager-port={ports[1]}",
                f"--dashboard-agent-listen-port={ports[2]}", f"--dashboard-agent-grpc-port={ports[3]}",
                f"--metrics-export-port={ports[4]}", f"--runtime-env-agent-port={ports[5]}"]
        if head:
            gcs = _free_ports(1)[0]
            args += ["--head", f"--port={gcs}", f"--ray-client-server-port={ports[6]}", "--include-dashboard=false"]
            self.address = f"127.0.0.1:{gcs}"
        else:
            args += [f"--address={self.address}"]
        log = open(self.root / f"{name}.out", "w")  # noqa: SIM115 (kept open for the node's lifetime)
        proc = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.nodes.append(proc)
        return proc

    def start(self, n_nodes: int = 2, timeout: float = 60) -> None:
        self._start_node("head", head=True)
        for i in range(1, n_nodes):
            self._start_node(f"node{i}", head=False)
        code = ("import ray, time\nray.init(log_to_driver=False)\n"
                f"while sum(n['Alive'] for n in ray.nodes()) < {n_nodes}:\n    time.sleep(0.3)\n")
        subprocess.run([sys.executable, "-c", code], env=self.env(RAY_ADDRESS=self.address), check=True,
                       timeout=timeout, capture_output=True)

    def processes(self, node: subprocess.Popen) -> set[int]:
        """PIDs of every live process of one node: its ``ray start`` process, descendants and session members."""
        table = _proc_table()
        pids = {node.pid} if node.pid in table else set()
        pids |= {pid for pid, (_, sid) in table.items() if sid == node.pid}
        grew = True
        while grew:
            more = {pid for pid, (ppid, _) in table.items() if ppid in pids} - pids
            pids |= more
            grew = bool(more)
        self._known |= pids
        return pids

    def kill(self, node: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        for pid in self.processes(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        """SIGTERM every process the nodes started, SIGKILL what is left after 5 s, reap, remove temp dirs."""
        for node in reversed(self.nodes):
            self.kill(node, signal.SIGTERM)
        deadline = time.time() + 5
        while time.time() < deadline and self._known & set(_proc_table()):
            for node in self.nodes:
                node.poll()
            time.sleep(0.2)
        for pid in self._known & set(_proc_table()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


def _proc_table() -> dict[int, tuple[int, int]]:
    """``{pid: (ppid, session id)}`` of live (non-zombie) processes, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


# --- a test-only stage: slow enough to lose a node mid-job; records where each rank started -------------------


class SlowSettings(StageSettings):
    seconds_per_doc: float = 0.0
    started_dir: str
    gate: str | None = None  # ranks in gated_ranks block until this file exists: the test releases them
    gated_ranks: list[int] | None = None  # None: every rank


class SlowStep(PipelineStep):
    """A pass-through step that notes (pid, Ray node) in ``started_dir``, then, for a gated rank, blocks until the
    test creates the ``gate`` file: the test, not the machine's speed, decides when a rank may finish."""

    name = "slow"
    type = "🐢 - TEST"

    def __init__(self, seconds: float, started_dir: str, gate: str | None = None,
                 gated_ranks: list[int] | None = None):
        super().__init__()
        self.seconds, self.started_dir = seconds, started_dir
        self.gate, self.gated_ranks = gate, gated_ranks

    def run(self, data, rank: int = 0, world_size: int = 1):
        import ray

        os.makedirs(self.started_dir, exist_ok=True)
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        note = {"rank": rank, "pid": os.getpid(), "node_id": node, "t": time.time()}
        tmp = f"{self.started_dir}/.{rank:05d}-{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(note, fh)
        os.replace(tmp, f"{self.started_dir}/{rank:05d}-{os.getpid()}.json")
        if self.gate and (self.gated_ranks is None or rank in self.gated_ranks):
            while not os.path.exists(self.gate):
                time.sleep(0.02)
        for doc in data:
            if self.seconds:
                time.sleep(self.seconds)
            self.stat_update("documents")
            yield doc


def shard_phase(ctx, name: str, step: PipelineStep) -> list[Phase]:
    """One phase of a test stage: the previous stage's shards -> ``step`` -> kept shards."""
    from pipelines.steps.io import ParquetShardReader, ParquetShardWriter

    return [Phase(name, [ParquetShardReader(ctx.input_dir), step, ParquetShardWriter(ctx.kept_dir)], tasks=ctx.tasks)]


def driver_with_stage(module: str, spec: str, name: str) -> str:
    """``python -c`` source of a ``mathcorpus`` driver with the test stage ``module.spec`` registered as ``name``."""
    return (f"import sys, {module} as t\nfrom pipelines.registry import stages\nstages()[{name!r}] = t.{spec}\n"
            "from pipelines.cli import main\nmain(sys.argv[1:])\n")


def _build_slow(settings: SlowSettings, ctx) -> list[Phase]:
    slow = SlowStep(settings.seconds_per_doc, settings.started_dir, settings.gate, settings.gated_ranks)
    return shard_phase(ctx, "slow", slow)


SLOW_STAGE = StageSpec("slow", settings=SlowSettings, build=_build_slow, description="test only: sleep per doc")

DRIVER_WITH_SLOW_STAGE = driver_with_stage("test_scale_cluster", "SLOW_STAGE", "slow")


# --- helpers -------------------------------------------------------------------------------------------------


def write_manifest(path: Path, seed: Path, files: list[str], output: Path, tasks: int, extra_stages=(),
                   extract_resources: dict | None = None) -> Path:
    """A manifest over seed files: ``extract`` (with optional ``resources:``) plus ``extra_stages``."""
    extract = {"stage": "extract", **({"resources": extract_resources} if extract_resources else {})}
    data = {
        "name": "scale-test",
        "output": str(output),
        "executor": {"kind": "ray", "tasks": tasks},
        "inputs": [{"name": f.split(".")[0], "source": "web" if "code" not in f else "code",
                    "paths": [str(seed / f)]} for f in files],
        "stages": [extract, *extra_stages],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 80, driver: str | None = None):
    cmd = [sys.executable, "-c", driver, *args] if driver else [str(BIN / "mathcorpus"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def corpus_ids(run_dir: Path) -> list[str]:
    from pipelines.steps.io import read_shards

    return read_shards(str(run_dir / "corpus")).column("id").to_pylist()


def task_records(stage_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(stage_dir.glob("logs/*/tasks/*.json"))]


def local_run_ids(manifest: Path, output: Path) -> list[str]:
    """The reference: the same manifest with the local executor (in this process, one rank at a time)."""
    from pipelines.manifest import load_manifest
    from pipelines.runner import run_manifest

    run_manifest(load_manifest(manifest), executor="local", workers=1, progress=lambda s: None)
    return corpus_ids(output)


# --- tests ---------------------------------------------------------------------------------------------------


def test_manifest_runs_across_two_nodes_and_matches_local(shared_data, tmp_path):
    seed = shared_data / "seed"
    files = ["math_text.jsonl", "general_code.jsonl", "math_text_zh.jsonl"]
    shared = tmp_path / "shared"  # the "shared storage" both nodes and the driver see, addressed as file://
    local_m = write_manifest(tmp_path / "local.yaml", seed, files, tmp_path / "local-run", tasks=4)
    ray_m = write_manifest(tmp_path / "ray.yaml", seed, files, tmp_path / "unused", tasks=4)

    local_ids = local_run_ids(local_m, tmp_path / "local-run")
    assert len(local_ids) == 876 + 300 + 774

    cluster = LoopbackCluster()
    try:
        cluster.start(2)
        out = _run_cli(["run", str(ray_m), "-e", "ray", "-o", f"file://{shared}/run"],
                       env=cluster.env(RAY_ADDRESS=cluster.address))
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        cluster.stop()

    run = shared / "run"
    ray_ids = corpus_ids(run)
    assert sorted(ray_ids) == sorted(local_ids)
    assert len(set(ray_ids)) == len(ray_ids)
    stage = run / "stages" / "00_extract"
    # logs, stats, completion markers and task records landed on the shared storage
    assert sorted(p.name for p in (stage / "logs/extract/completions").iterdir()) == ["00000", "00001", "00002",
                                                                                      "00003"]
    assert len(list((stage / "logs/extract/logs").glob("task_*.log"))) == 4
    records = task_records(stage)
    assert sorted(r["rank"] for r in records) == [0, 1, 2, 3]
    nodes = {r["node_id"] for r in records}
    assert None not in nodes
    assert len(nodes) == 2, f"all tasks ran on one node: {records}"
    assert json.loads((run / "run.json").read_text())["executor"] == "ray"


def test_losing_a_node_mid_job_still_yields_the_same_corpus(shared_data, tmp_path):
    """Every rank of the slow stage blocks on a gate; node 2 is killed while one of its ranks is blocked, then
    the gate opens: the lost rank must be finished on the head node."""
    seed = shared_data / "seed"
    files = ["math_text.jsonl", "general_code.jsonl"]
    started, gate = tmp_path / "started", tmp_path / "gate"
    slow = [{"stage": "slow", "started_dir": str(started), "gate": str(gate)}]
    local_m = write_manifest(tmp_path / "local.yaml", seed, files, tmp_path / "local-run", tasks=2)
    ray_m = write_manifest(tmp_path / "ray.yaml", seed, files, tmp_path / "ray-run", tasks=2, extra_stages=slow)

    local_ids = local_run_ids(local_m, tmp_path / "local-run")

    cluster = LoopbackCluster()
    driver = None
    try:
        cluster.start(2)
        head, node2 = cluster.nodes
        env = cluster.env(RAY_ADDRESS=cluster.address)
        cmd = [sys.executable, "-c", DRIVER_WITH_SLOW_STAGE, "run", str(ray_m), "-e", "ray"]
        driver_log = tmp_path / "driver.log"  # a file, not a pipe: a full pipe would stall the driver
        with open(driver_log, "w") as fh:
            driver = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        # wait until a rank of the slow stage is blocked on the gate on node 2, kill node 2, open the gate
        victim = None
        deadline = time.time() + 120
        while victim is None and time.time() < deadline and driver.poll() is None:
            node2_pids = cluster.processes(node2)
            for f in started.glob("*.json") if started.is_dir() else []:
                note = json.loads(f.read_text())  # written under a temporary name, renamed when complete
                if note["pid"] in node2_pids:
                    victim = note
            time.sleep(0.1)
        assert victim is not None, f"no task of the slow stage ran on node 2: {driver_log.read_text()[-2000:]}"
        cluster.kill(node2)
        gate.touch()
        driver.wait(timeout=80)
        log = driver_log.read_text()
        if driver.returncode != 0:  # ranks the executor gave up on: a rerun resumes from the completion markers
            out = _run_cli(["run", str(ray_m), "-e", "ray"], env=env, driver=DRIVER_WITH_SLOW_STAGE)
            assert out.returncode == 0, f"first run:\n{log[-2000:]}\nrerun:\n{out.stderr[-2000:]}"
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        cluster.stop()

    ray_ids = corpus_ids(tmp_path / "ray-run")
    assert Counter(ray_ids) == Counter(local_ids)  # nothing missing, nothing duplicated
    records = {r["rank"]: r for r in task_records(tmp_path / "ray-run/stages/01_slow")}
    assert sorted(records) == [0, 1]
    # the rank killed on node 2 was finished elsewhere
    assert records[victim["rank"]]["node_id"] != victim["node_id"]

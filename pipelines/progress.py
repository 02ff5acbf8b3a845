"""Live progress of a run: what each task has done, summed per phase, shown while the run goes.

Three parts, all reading and writing small JSON files in the run folder (local path or fsspec URL), so a second
process (``mathcorpus status RUN_DIR``) sees what the driver sees::

    {stage_dir}/logs/{phase}/progress/plan.json      the driver: documents / input bytes per rank, before the phase
    {stage_dir}/logs/{phase}/progress/{rank}.json    each task: documents and bytes done, every few seconds
    {run_dir}/status.json                            the driver: which stage and phase is running, stages done

- :class:`TaskProgress` runs in a task (a daemon thread; the pipeline itself is untouched, so progress never slows
  it): it reads the first step's ``documents`` counter and, on Linux, the read offset of the input file the task has
  open (``/proc/self/fdinfo``), and writes its file atomically every ``every_seconds``.
- :func:`read_phase` sums the task files of one phase: done / total, rate, ETA, tasks finished / running / failed /
  pending and the slowest running task. Pure: tests and the status command call it without Ray.
- :class:`RunMonitor` is the driver's: it writes the plan and ``status.json`` and shows the numbers, as a rich
  progress bar on a terminal or as a log line every ``log_seconds`` (and at every task finished) otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

PROGRESS = "progress"
PLAN = "plan.json"
STATUS = "status.json"
STALE_SECONDS = 60.0  # a running task whose file is older than this is reported as stale (lost node, killed)


@dataclass
class ProgressSettings:
    every_seconds: float = 2.0  # a task writes its progress file at most this often
    refresh_seconds: float = 0.5  # the driver polls (and redraws on a terminal) this often, up to 64 tasks
    refresh_seconds_many: float = 5.0  # ... and this often above 64 tasks (one file read per task per poll)
    log_seconds: float = 10.0  # not a terminal: a log line this often (and whenever a task finishes)

    @classmethod
    def from_env(cls) -> ProgressSettings:
        s = cls()
        if v := os.environ.get("MATHCORPUS_PROGRESS_SECONDS"):
            s.every_seconds = float(v)
        if v := os.environ.get("MATHCORPUS_PROGRESS_LOG_SECONDS"):
            s.log_seconds = float(v)
        return s


def live_default() -> bool:
    """Live progress unless ``MATHCORPUS_PROGRESS`` is 0/off/no/quiet."""
    return os.environ.get("MATHCORPUS_PROGRESS", "1").strip().lower() not in ("0", "off", "no", "false", "quiet")


# --- what a rank reads ----------------------------------------------------------------------------------------


def _local(path: str) -> str | None:
    """The local filesystem path of ``path`` (None for remote URLs)."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif "://" in path:
        return None
    return os.path.realpath(path)


def _size(path: str) -> int | None:
    try:
        local = _local(path)
        if local is not None:
            return os.path.getsize(local)
        import fsspec

        fs, _, (p,) = fsspec.get_fs_token_paths(path)
        return int(fs.size(p))
    except Exception:
        return None


def _parquet_rows(path: str) -> int | None:
    try:
        import pyarrow.parquet as pq

        from corpus.io import open_file

        with open_file(path, "rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows
    except Exception:
        return None


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


REMOTE_SIZE_LIMIT = 1000  # above this many remote files, sizes are not asked for (one request each)


def phase_inputs(steps: list[Any], tasks: int, ranks: list[int] | None = None) -> list[dict[str, Any]]:
    """For each rank of ``ranks`` (default: all): the input files it reads (with sizes) and its documents where
    the input says (Parquet footers).

    Known for the two readers that start phases (manifest inputs, Parquet shards); other first steps (a stage's own
    reader) give ``None`` totals and progress is shown in tasks."""
    from pipelines.steps.ingest import InputReader
    from pipelines.steps.io import ParquetShardReader, shard_files

    ranks = list(range(tasks)) if ranks is None else ranks
    first = steps[0] if steps else None
    if isinstance(first, ParquetShardReader):
        everything = shard_files(first.folder, 0, 1)
        count_docs = True
    elif isinstance(first, InputReader):
        everything = [f.path for f in first.files]
        count_docs = False
    else:
        return [{"files": [], "sizes": [], "documents": None, "bytes": None} for _ in ranks]
    many_remote = sum("://" in f and not f.startswith("file://") for f in everything) > REMOTE_SIZE_LIMIT
    out = []
    for rank in ranks:
        files = everything[rank::tasks]
        sizes = [None if many_remote and _local(f) is None else _size(f) for f in files]
        rows = [_parquet_rows(f) for f in files] if count_docs else None
        out.append({"files": files, "sizes": sizes, "rows": rows, "documents": _sum(rows) if rows is not None else None,
                    "bytes": _sum(sizes)})
    return out


def _documents_counter(steps: list[Any]):
    """The first step's ``documents`` stat (readers count every document they yield)."""
    for step in steps:
        stats = getattr(getattr(step, "stats", None), "stats", None)
        if stats is not None and "documents" in stats:
            return stats["documents"]
    return None


def _stat_total(step: Any, name: str) -> int:
    stats = getattr(getattr(step, "stats", None), "stats", None)
    return int(stats[name].total) if stats is not None and name in stats else 0


def _open_offsets(paths: set[str]) -> dict[str, int]:
    """Read offsets of the files of ``paths`` this process has open (Linux ``/proc/self/fdinfo``)."""
    out: dict[str, int] = {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target in paths:
                with open(f"/proc/self/fdinfo/{fd}") as fh:
                    pos = int(fh.readline().split()[1])
                out[target] = max(out.get(target, 0), pos)
        except (OSError, ValueError, IndexError):
            continue
    return out


class TaskProgress:
    """A task's progress file, rewritten by a daemon thread every ``every_seconds`` and once at the end."""

    def __init__(self, folder, rank: int, steps: list[Any], world_size: int, every_seconds: float = 2.0):
        self.folder, self.rank, self.steps, self.every = folder, rank, steps, every_seconds
        plan = phase_inputs(steps, world_size, [rank])[0] if rank < world_size else {}  # this rank's files only
        self.documents_total = plan.get("documents")
        self.bytes_total = plan.get("bytes")
        local = [_local(f) for f in plan.get("files", [])]
        sizes = plan.get("sizes", [])
        rows = plan.get("rows")
        # Parquet input: bytes done follow the documents read (rows per file are known); other input: the read
        # offset of the file open now
        self._rows = list(zip(rows, sizes, strict=True)) if rows and None not in rows and None not in sizes else None
        self._offsets: dict[str, int] = {}  # local path -> bytes of the files before it
        self._before: list[int] = []  # bytes of the files before the i-th file (readers count files they start)
        if None not in sizes:
            acc = 0
            for path, size in zip(local, sizes, strict=True):
                self._before.append(acc)
                if path is not None:
                    self._offsets.setdefault(path, acc)
                acc += size
        self.bytes_done = 0
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self, state: str = "running") -> dict[str, Any]:
        counter = _documents_counter(self.steps)
        docs = int(counter.total) if counter is not None else 0
        if self._rows is not None:
            left, done = docs, 0
            for n, size in self._rows:
                done += size if left >= n else int(size * left / n)
                left -= min(left, n)
                if left == 0:
                    break
            self.bytes_done = max(self.bytes_done, done)
        elif self._before:
            # files the reader started: the ones before the current are read (whole-file readers show no offset)
            started = _stat_total(self.steps[0], "files")
            if started:
                self.bytes_done = max(self.bytes_done, self._before[min(started, len(self._before)) - 1])
            if self._offsets and (open_now := _open_offsets(set(self._offsets))):
                self.bytes_done = max(self.bytes_done, max(self._offsets[p] + pos for p, pos in open_now.items()))
        if state == "done" and self.bytes_total is not None:
            self.bytes_done = self.bytes_total
        now = time.time()
        return {
            "rank": self.rank, "state": state, "host": socket.gethostname(), "pid": os.getpid(),
            "started": round(self.started, 3), "updated": round(now, 3), "seconds": round(now - self.started, 3),
            "documents": docs, "documents_total": self.documents_total,
            "bytes": self.bytes_done if self._before or self._rows or state == "done" else None,
            "bytes_total": self.bytes_total,
        }

    def write(self, state: str = "running") -> None:
        record = self.snapshot(state)
        name = f"{PROGRESS}/{self.rank:05d}.json"
        tmp = f"{PROGRESS}/.{self.rank:05d}.{os.getpid()}.tmp"
        with self.folder.open(tmp, "w") as fh:
            json.dump(record, fh)
        self.folder.mv(tmp, name)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # progress must never break a task
                self.write()

    def start(self) -> TaskProgress:
        with contextlib.suppress(Exception):
            self.write()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{self.rank}", daemon=True)
        self._thread.start()
        return self

    def stop(self, state: str) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.write(state)


# --- summing a phase --------------------------------------------------------------------------------------------


@dataclass
class PhaseProgress:
    """One phase's progress, summed over its tasks."""

    tasks: int
    finished: int = 0
    running: int = 0
    failed: int = 0
    pending: int = 0
    stale: int = 0
    documents: int = 0
    documents_total: int | None = None
    bytes: int | None = None
    bytes_total: int | None = None
    rate: float | None = None  # documents/s of the running tasks together
    bytes_rate: float | None = None
    eta_seconds: float | None = None
    fraction: float | None = None
    elapsed: float | None = None
    slowest: dict[str, Any] | None = None
    stage: str | None = None
    phase: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rank_fraction(r: dict[str, Any]) -> float | None:
    if r.get("documents_total"):
        return min(1.0, r["documents"] / r["documents_total"])
    if r.get("bytes_total") and r.get("bytes") is not None:
        return min(1.0, r["bytes"] / r["bytes_total"])
    return None


def _read_json(fs, path: str) -> dict[str, Any] | None:
    try:
        with fs.open(path, "rt") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None  # absent, or replaced between listing and reading: read again at the next poll


def read_phase(logging_dir: str, tasks: int | None = None, now: float | None = None) -> PhaseProgress:
    """Sum the progress files, plan and completion markers of the phase logged in ``logging_dir``."""
    import fsspec

    fs, _, (root,) = fsspec.get_fs_token_paths(logging_dir)
    now = time.time() if now is None else now
    plan = _read_json(fs, f"{root}/{PROGRESS}/{PLAN}") or {}
    ranks_plan = plan.get("ranks") or []
    n = tasks or plan.get("tasks") or len(ranks_plan)
    done = set()
    with contextlib.suppress(OSError):
        done = {int(os.path.basename(p)) for p in fs.ls(f"{root}/completions", detail=False)
                if os.path.basename(p).isdigit()}
    records: dict[int, dict[str, Any]] = {}
    with contextlib.suppress(OSError):
        for p in fs.ls(f"{root}/{PROGRESS}", detail=False):
            name = os.path.basename(p)
            if name.endswith(".json") and name[:-5].isdigit() and (rec := _read_json(fs, p)) is not None:
                records[int(name[:-5])] = rec
    p = PhaseProgress(tasks=n)
    docs_totals: list[int | None] = []
    bytes_totals: list[int | None] = []
    bytes_done: list[int | None] = []
    rate = bytes_rate = 0.0
    running: list[dict[str, Any]] = []
    for rank in range(n):
        planned = ranks_plan[rank] if rank < len(ranks_plan) else {}
        rec = records.get(rank)
        docs_totals.append(planned.get("documents", rec.get("documents_total") if rec else None))
        bytes_totals.append(planned.get("bytes", rec.get("bytes_total") if rec else None))
        if rank in done:
            p.finished += 1
            p.documents += rec["documents"] if rec else (docs_totals[-1] or 0)
            bytes_done.append(bytes_totals[-1])
        elif rec is None:
            p.pending += 1
            bytes_done.append(0)
        elif rec["state"] == "failed":
            p.failed += 1
            p.documents += rec["documents"]
            bytes_done.append(rec.get("bytes"))
        else:
            p.running += 1
            age = now - rec["updated"]
            p.stale += age > STALE_SECONDS
            p.documents += rec["documents"]
            bytes_done.append(rec.get("bytes"))
            seconds = max(1e-3, rec["updated"] - rec["started"])
            rate += rec["documents"] / seconds
            if rec.get("bytes") is not None:
                bytes_rate += rec["bytes"] / seconds
            running.append(rec | {"elapsed": round(now - rec["started"], 1), "fraction": _rank_fraction(rec)})
    p.documents_total = _sum(docs_totals) if n else None
    p.bytes_total = _sum(bytes_totals) if n else None
    p.bytes = _sum(bytes_done) if p.bytes_total is not None else None
    started = [r["started"] for r in records.values()]
    p.elapsed = round(now - min(started), 1) if started else None
    if running:
        p.rate, p.bytes_rate = round(rate, 2), (round(bytes_rate, 1) if p.bytes is not None else None)
        p.slowest = min(running, key=lambda r: (r["fraction"] if r["fraction"] is not None else 0.0, -r["elapsed"]))
        p.slowest = {k: p.slowest.get(k) for k in ("rank", "host", "elapsed", "fraction", "documents")}
    elif p.elapsed:
        p.rate = round(p.documents / p.elapsed, 2)
    if p.documents_total:
        p.fraction = min(1.0, p.documents / p.documents_total)
        if p.rate:
            p.eta_seconds = round(max(0, p.documents_total - p.documents) / p.rate, 1)
    elif p.bytes_total and p.bytes is not None:
        p.fraction = min(1.0, p.bytes / p.bytes_total)
        if p.bytes_rate:
            p.eta_seconds = round(max(0, p.bytes_total - p.bytes) / p.bytes_rate, 1)
    elif n:
        p.fraction = p.finished / n
    if p.finished == n:
        p.fraction, p.eta_seconds = 1.0, 0.0
    return p


# --- rendering ----------------------------------------------------------------------------------------------------


def _num(n: float | None) -> str:
    return "?" if n is None else f"{n:,.0f}"


def _bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n}"


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def describe(p: PhaseProgress) -> str:
    """One line: documents (and bytes) done / total, rate, ETA, tasks, slowest task."""
    parts = []
    if p.documents or p.documents_total is not None or p.bytes_total is not None:
        docs = f"{_num(p.documents)}" + (f"/{_num(p.documents_total)}" if p.documents_total else "") + " docs"
        if p.fraction is not None:
            docs += f" ({p.fraction:.0%})"
        parts.append(docs)
    if p.bytes_total:
        parts.append(f"{_bytes(p.bytes)}/{_bytes(p.bytes_total)} input")
    if p.rate:
        parts.append(f"{p.rate:,.1f} docs/s")
    if p.eta_seconds is not None and p.finished < p.tasks:
        parts.append(f"ETA {_duration(p.eta_seconds)}")
    tasks = f"tasks {p.finished}/{p.tasks} done, {p.running} running, {p.failed} failed"
    if p.stale:
        tasks += f" ({p.stale} not heard from for {STALE_SECONDS:.0f}s)"
    parts.append(tasks)
    if p.slowest and p.running:
        s = p.slowest
        frac = f"{s['fraction']:.0%}, " if s.get("fraction") is not None else ""
        parts.append(f"slowest: rank {s['rank']} ({frac}{_duration(s['elapsed'])})")
    return "; ".join(parts)


# --- the driver -------------------------------------------------------------------------------------------------


class RunMonitor:
    """The driver's view of a run: ``status.json``, each phase's plan, and the live display.

    ``live=False`` (``--quiet``) keeps the files (so ``mathcorpus status`` still works) and shows nothing."""

    def __init__(self, run_dir: str, stages: list[str], *, live: bool | None = None, stream=None,
                 settings: ProgressSettings | None = None):
        self.run_dir = run_dir
        self.live = live_default() if live is None else live
        self.stream = stream or sys.stderr
        self.settings = settings or ProgressSettings.from_env()
        self.status: dict[str, Any] = {
            "run_dir": run_dir, "host": socket.gethostname(), "pid": os.getpid(), "started": round(time.time(), 3),
            "state": "running", "stages": [{"index": i, "stage": s, "state": "pending"} for i, s in enumerate(stages)],
            "current": None,
        }
        self._write_status()

    def _write_status(self) -> None:
        from corpus.io import write_json

        self.status["updated"] = round(time.time(), 3)
        with contextlib.suppress(Exception):
            write_json(self.status, f"{self.run_dir}/{STATUS}")

    def stage_started(self, index: int) -> None:
        self.status["stages"][index].update(state="running", started=round(time.time(), 3))
        self._write_status()

    def stage_done(self, index: int, summary: dict[str, Any]) -> None:
        """Add the stage's cost (CPU time, throughput, peak memory per task, from the task records) to
        ``summary`` (it goes into run.json) and mark the stage done in ``status.json``."""
        from pipelines.executors import stage_stats

        docs = summary.get("documents_in")
        docs = summary.get("documents_out") if docs is None else docs
        summary.update(stage_stats(summary["dir"], docs, summary.get("seconds") or 0.0))
        keep = ("seconds", "documents_in", "documents_out", "documents_removed", "rejects", "cpu_seconds",
                "docs_per_second", "docs_per_core_second", "peak_rss_mb", "tasks")
        self.status["stages"][index].update(state="done", **{k: summary.get(k) for k in keep if k in summary})
        self.status["current"] = None
        self._write_status()

    def finish(self, stages: list[dict[str, Any]], progress=print) -> str:
        """The run is complete: write ``report.html``, show the stage table, mark ``status.json`` done."""
        from pipelines.report import write_report

        path = write_report(self.run_dir)
        if self.live:
            print_stage_table(stages, self.stream)
        self.status.update(state="done", report=path)
        self._write_status()
        progress(f"report: {path}")
        return path

    @contextlib.contextmanager
    def phase(self, index: int, stage: str, phase: str, logging_dir: str, steps: list[Any], tasks: int):
        """Write the phase's plan, then poll and show its progress until the block ends."""
        from corpus.io import write_json

        with contextlib.suppress(Exception):
            ranks = [{"documents": r["documents"], "bytes": r["bytes"]} for r in phase_inputs(steps, tasks)]
            write_json({"stage": stage, "phase": phase, "tasks": tasks, "ranks": ranks,
                        "documents": _sum([r["documents"] for r in ranks]), "bytes": _sum([r["bytes"] for r in ranks])},
                       f"{logging_dir}/{PROGRESS}/{PLAN}")
        self.status["current"] = {"index": index, "stage": stage, "phase": phase, "logging_dir": logging_dir,
                                  "tasks": tasks}
        self._write_status()
        stop = threading.Event()
        view = _Display(self, f"{stage}/{phase}" if phase != stage else stage, logging_dir, tasks)
        thread = threading.Thread(target=view.loop, args=(stop,), name="progress-monitor", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            view.close()


class _Display:
    """Polls one phase; a rich bar on a terminal, log lines otherwise; heartbeats ``status.json``."""

    def __init__(self, monitor: RunMonitor, label: str, logging_dir: str, tasks: int):
        self.m, self.label, self.logging_dir, self.tasks = monitor, label, logging_dir, tasks
        self.tty = monitor.live and monitor.stream.isatty()
        self._live = None
        self._last_line = 0.0
        self._last_text = ""
        self._last_finished = -1
        self._last_beat = time.time()
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=monitor.stream), refresh_per_second=4, transient=True)
            self._live.start()

    def render(self, p: PhaseProgress):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        top = Table.grid(padding=(0, 1))
        top.add_row(Text(f"  {self.label}", style="bold"),
                    ProgressBar(total=1000, completed=int((p.fraction or 0) * 1000), width=40),
                    Text(f"{p.fraction:.0%}" if p.fraction is not None else ""))
        return Group(top, Text(f"  {describe(p)}"))

    def poll(self, final: bool = False) -> None:
        p = read_phase(self.logging_dir, self.tasks)
        now = time.time()
        if now - self._last_beat > 5:
            self.m._write_status()
            self._last_beat = now
        if not self.m.live:
            return
        if self._live is not None:
            self._live.update(self.render(p))
        elif final or p.finished != self._last_finished or now - self._last_line >= self.m.settings.log_seconds:
            line = f"    {self.label}: {describe(p)}"
            if line != self._last_text:  # an unchanged line says nothing new
                print(line, file=self.m.stream, flush=True)
                self._last_text = line
            self._last_line, self._last_finished = now, p.finished

    def loop(self, stop: threading.Event) -> None:
        every = self.m.settings.refresh_seconds if self.tasks <= 64 else self.m.settings.refresh_seconds_many
        while not stop.wait(every):
            with contextlib.suppress(Exception):
                self.poll()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._live is not None:
                self._live.stop()
                self._live = None
            self.poll(final=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_status(run_dir: str, now: float | None = None) -> dict[str, Any]:
    """What ``mathcorpus status`` shows: the driver's ``status.json`` plus the running phase summed from its task
    files. A run whose driver is gone (same host, process not running) or silent for a minute is flagged."""
    import fsspec

    from corpus.errors import MathcorpusError

    now = time.time() if now is None else now
    fs, _, (root,) = fsspec.get_fs_token_paths(run_dir)
    st = _read_json(fs, f"{root}/{STATUS}")
    if st is None:
        run = _read_json(fs, f"{root}/run.json")
        if run is None:
            raise MathcorpusError(f"{run_dir}: no run here (neither {STATUS} nor run.json)")
        st = {"run_dir": run_dir, "state": "done", "current": None,
              "stages": [{"state": "done", **{k: s.get(k) for k in ("index", "stage", "seconds", "documents_in",
                                                                     "documents_out")}} for s in run["stages"]]}
    if st["state"] == "running":
        if st.get("host") == socket.gethostname() and st.get("pid") and not _pid_alive(st["pid"]):
            st["state"] = "stopped"
            st["note"] = f"driver (pid {st['pid']}) is not running: rerun the same command to resume"
        elif now - st.get("updated", now) > STALE_SECONDS:
            st["note"] = f"driver not heard from for {now - st['updated']:.0f}s"
    cur = st.get("current")
    if cur and st["state"] in ("running", "stopped"):
        st["phase_progress"] = read_phase(cur["logging_dir"], cur.get("tasks"), now).to_json()
    return st


def describe_status(st: dict[str, Any]) -> list[str]:
    """``mathcorpus status`` as text lines."""
    lines = [f"{st.get('run_dir')}: {st['state']}" + (f" ({st['note']})" if st.get("note") else "")]
    cur = st.get("current") or {}
    for s in st["stages"]:
        mark = {"done": "done", "running": "running", "pending": "pending"}.get(s["state"], s["state"])
        line = f"  [{s['index'] + 1}/{len(st['stages'])}] {s['stage']:<10} {mark}"
        if s["state"] == "done":
            line += (f": {_num(s.get('documents_in')) if s.get('documents_in') is not None else '-'} in, "
                     f"{_num(s.get('documents_out'))} out, {_duration(s.get('seconds'))}")
            if s.get("cpu_seconds") is not None:
                line += f", CPU {_duration(s['cpu_seconds'])}"
        elif s["state"] == "running" and cur.get("index") == s["index"] and st.get("phase_progress"):
            p = PhaseProgress(**st["phase_progress"])
            line += f" (phase {cur['phase']}): {describe(p)}"
        lines.append(line)
    if st.get("report"):
        lines.append(f"  report: {st['report']}")
    return lines


def print_stage_table(stages: list[dict[str, Any]], stream=None) -> None:
    """The end-of-run table: per stage wall and CPU time, throughput, peak memory per task."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="stages", title_justify="left")
    for col in ("stage", "in", "kept", "removed", "rejects", "wall", "CPU", "docs/s", "docs/s/core",
                "peak RSS/task"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in stages:
        rss = s.get("peak_rss_mb")
        table.add_row(
            s["stage"], _num(s.get("documents_in")), _num(s.get("documents_out")), _num(s.get("documents_removed")),
            _num(s.get("rejects")), _duration(s.get("seconds")), _duration(s.get("cpu_seconds")),
            f"{s['docs_per_second']:,.1f}" if s.get("docs_per_second") is not None else "-",
            f"{s['docs_per_core_second']:,.1f}" if s.get("docs_per_core_second") is not None else "-",
            f"{rss:,.0f} MiB" if rss is not None else "-")
    stream = stream or sys.stderr
    Console(file=stream, width=None if stream.isatty() else 132).print(table)


__all__ = ["PhaseProgress", "ProgressSettings", "RunMonitor", "TaskProgress", "describe", "describe_status",
           "phase_inputs", "print_stage_table", "read_phase", "run_status"]

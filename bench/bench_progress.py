"""What live progress costs a task: the same pass-through phase with and without the task's progress thread.

Documents are the real seed text in ../shared/data/seed (every record, repeated to ``--docs``), written as
Parquet shards. The phase is ``ParquetShardReader -> ParquetShardWriter`` (read, decode, re-encode every
document: the cheapest real stage, so any overhead shows most) run by our local executor, one task in this
process, in the same run, alternating, ``--repeats`` times each:

* peer: progress off (``MATHCORPUS_PROGRESS_SECONDS=0``: no thread, no file);
* ours: progress on at the default (a file every 2 s), and a stress setting (every 0.05 s, 40x more often).

Printed: median CPU seconds of each (``time.process_time``: this process and all its threads, the progress thread
included; wall seconds vary with the load of a shared machine and are printed beside them), the ratios ours / off,
and the cost of one progress write (wall, median of 200).

    python bench/bench_progress.py              # 60k documents, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("MATHCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_shards(out: Path, docs: int, shards: int = 4) -> int:
    from corpus.schema import normalize_row, rows_to_table

    rows = []
    for f in sorted((SHARED / "seed").glob("*.jsonl")):
        for i, line in enumerate(f.read_text().splitlines()):
            rec = json.loads(line)
            rows.append(normalize_row({"id": f"{f.stem}/{i}", "text": rec["text"]}, source="web"))
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    full = [dict(r, id=f"{r['id']}#{k}") for k in range(docs // len(rows) + 1) for r in rows][:docs]
    for s in range(shards):
        pq.write_table(rows_to_table(full[s::shards]), out / f"{s:05d}.parquet")
    return len(full)


def run_once(src: Path, work: Path, every: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one run of the phase."""
    from pipelines.executors import LocalExecutor
    from pipelines.steps.io import ParquetShardReader, ParquetShardWriter

    shutil.rmtree(work, ignore_errors=True)
    os.environ["MATHCORPUS_PROGRESS_SECONDS"] = str(every)
    ex = LocalExecutor([ParquetShardReader(str(src)), ParquetShardWriter(str(work / "kept"))], tasks=1, workers=1,
                       logging_dir=str(work / "logs"), skip_completed=True)
    t0, c0 = time.perf_counter(), time.process_time()
    ex.run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    progress = list((work / "logs" / "progress").glob("0*.json"))
    assert (len(progress) == 1) == (every > 0), progress
    return seconds, cpu


def write_cost(src: Path, work: Path, n: int = 200) -> float:
    from datatrove.io import get_datafolder

    from pipelines.progress import TaskProgress
    from pipelines.steps.io import ParquetShardReader

    tracker = TaskProgress(get_datafolder(str(work / "cost")), 0, [ParquetShardReader(str(src))], 1)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        tracker.write()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from loguru import logger

    logger.remove()
    tmp = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    try:
        n = make_shards(tmp / "src", args.docs)
        settings = {"off": 0.0, "on (2 s)": 2.0, "on (0.05 s)": 0.05}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in settings}
        for _ in range(args.repeats):
            for name, every in settings.items():
                times[name].append(run_once(tmp / "src", tmp / "work", every))
        cost = write_cost(tmp / "src", tmp)
        med = {k: statistics.median(c for _, c in v) for k, v in times.items()}
        wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
        print(f"{n:,} documents, one task, {args.repeats} repeats (median CPU seconds; wall beside)")
        for k, v in med.items():
            runs = [round(c, 2) for _, c in times[k]]
            print(f"  progress {k:<12} {v:7.2f} CPU-s   ratio to off {v / med['off']:.3f}   runs {runs}   "
                  f"(wall median {wall[k]:.2f} s, ratio {wall[k] / wall['off']:.3f})")
        print(f"  one progress write (snapshot + atomic JSON): {cost * 1e3:.2f} ms median of 200 "
              f"= {cost / 2.0:.5%} of a task's time at one write per 2 s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

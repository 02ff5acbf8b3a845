"""Record reading: our one reader (``corpus.records.iter_documents``) vs datatrove's ``JsonlReader``.

Both read the same real JSONL files (the six seed files in ../shared/data/seed, 4,168 records, 22 MB; with
``--copies N`` the set is read N times) in the same run, alternating, ``--repeats`` times each; printed times and
the ratio are medians. Same work: decode every line, parse JSON, build one document per record (ours: a
document-schema row with the extras in the metadata JSON; the peer: a datatrove ``Document``). Ours also checks
field types, repairs lone surrogates and counts bad records as rejects (file, line); the peer (orjson) logs a
malformed line and goes on without counting it, and a line of invalid UTF-8 ends its file. The input here is
clean, so both produce every record.

    python bench/bench_read.py                # 3 repeats
    python bench/bench_read.py --copies 4     # the seed set 4 times
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ours(files: list[str]) -> int:
    from corpus.io import Reject
    from corpus.records import iter_documents

    n = 0
    for item in iter_documents(files):
        assert not isinstance(item, Reject), item
        n += 1
    return n


def peer(folder: str, copies: int) -> int:
    from datatrove.pipeline.readers import JsonlReader

    n = 0
    for _ in range(copies):
        reader = JsonlReader(folder, glob_pattern="*.jsonl", recursive=False)
        n += sum(1 for _ in reader.run())
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "seed"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=1)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    from loguru import logger

    logger.disable("datatrove")
    files = sorted(str(p) for p in Path(args.data).glob("*.jsonl")) * args.copies
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    counts: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, fn in (("peer", lambda: peer(args.data, args.copies)), ("ours", lambda: ours(files))):
            t = time.perf_counter()
            counts[name] = fn()
            times[name].append(time.perf_counter() - t)
    assert counts["ours"] == counts["peer"], counts
    o, p = statistics.median(times["ours"]), statistics.median(times["peer"])
    mb = sum(Path(f).stat().st_size for f in files) / 1e6
    print(f"records {counts['ours']:,} ({len(files)} files, {mb:.1f} MB); datatrove JsonlReader {p:.3f} s, "
          f"ours {o:.3f} s; ours/peer time ratio {o / p:.2f} (median of {args.repeats})")


if __name__ == "__main__":
    main()

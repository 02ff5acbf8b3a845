"""Hostile input through the CLI, on real seed records (issues #16, #19).

Every case ends in a counted reject naming file and line, or in a one-line error (exit 2) naming what to fix;
never a traceback, and for every command: records in = kept + removed + rejected.

=============================================  =================================================================
case                                           outcome (filter, dedup, decontam, classify score, extract/run)
=============================================  =================================================================
undecodable JSON / invalid UTF-8 / not object  reject ``FILE:LINE: malformed JSON ...``; reading goes on
lone surrogate ``"\ud800"``                   kept, replaced by U+FFFD, ``repaired_surrogates: 1`` in metadata
``n_tokens: "abc"``, ``math_score: "high"``    reject naming the field and the value
no ``text``                                    reject; no ``id``: kept as ``PATH#LINE`` (path from common root)
UTF-8 BOM on line 1                            ignored, the record is kept
``.jsonl.gz`` / ``.jsonl.zst``                 read; ``.lz4``/``.bz2``/``.xz``/``.zip``: exit 2 naming the file
gzip cut short                                 records before kept, one reject at the next line
Parquet row group unreadable                   one reject (file, row group, rows); other row groups read
``--text-column``/``--columns``/``--html-column``/``--text-field`` absent: exit 2 before any work
same file names in two input folders           distinct ids (``a/x.md`` / ``b/x.md``)
permission error on one input                  exit 2 naming the file (``plan_inputs``: before any work)
filesystem failing on listing                  exit 2 ``URL: cannot list: ...``, never zero documents
handler failing part-way (run reader)          records before kept, reject at the position, next file read
stage shard unreadable                         error naming the shard
=============================================  =================================================================
"""

from __future__ import annotations

import builtins
import gzip
import json
import re
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from fsspec.implementations.memory import MemoryFileSystem

from corpus.io import InputError, expand_paths, resolve_document_inputs
from pipelines.cli import main
from pipelines.steps.io import read_shards, shard_files

N = 30  # real records per hostile file
BAD_LINES = {5: "malformed JSON", 11: "'n_tokens' must be an integer", 14: "'math_score' must be a number",
             17: "no string 'text' field", 20: "invalid UTF-8", 26: "not an object"}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``mathcorpus ARGS`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines and all(n in lines[-1] for n in needles), err


def real_records(shared_data: Path, n: int = N) -> list[dict]:
    with open(shared_data / "seed" / "math_text.jsonl", encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


@pytest.fixture(scope="module")
def hostile(shared_data, tmp_path_factory) -> Path:
    """30 real records; lines 5, 11, 14, 17, 20, 26 are bad, line 1 has a BOM, line 8 a lone surrogate, line 23
    no id."""
    recs = real_records(shared_data)
    lines: list[bytes] = [json.dumps(r).encode() for r in recs]
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines[4] = b'{"id": "x5", "text": "cut off'
    lines[7] = lines[7].replace(b'"text": "', b'"text": "\\ud800 ', 1)
    lines[10] = json.dumps({**recs[10], "n_tokens": "abc"}).encode()
    lines[13] = json.dumps({**recs[13], "math_score": "high"}).encode()
    lines[16] = json.dumps({k: v for k, v in recs[16].items() if k != "text"}).encode()
    lines[19] = lines[19][:40] + b"\xff\xfe" + lines[19][40:]
    lines[22] = json.dumps({k: v for k, v in recs[22].items() if k != "id"}).encode()
    lines[25] = b"[1, 2, 3]"
    path = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def model(shared_data, tmp_path_factory) -> str:
    """A small real fastText model trained on the seed files."""
    from classifiers.model import TrainParams, train_from_files

    out = str(tmp_path_factory.mktemp("model") / "m")
    train_from_files(out, [str(shared_data / "seed" / "math_text.jsonl")],
                     [str(shared_data / "seed" / "general_text.jsonl")],
                     TrainParams(dim=16, epoch=2, threads=1, min_count=2, bucket=50_000))
    return out


def rows(folder: Path) -> list[dict]:
    return read_shards(str(folder)).to_pylist() if folder.exists() else []


def reject_lines(*files: Path) -> dict[int, str]:
    out = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out[r["line"]] = r["error"]
    return out


COMMANDS = {
    "filter": (lambda i, o, m: ["filter", i, "-o", o, "--languages", "any"], "kept", "rejects.jsonl"),
    "dedup": (lambda i, o, m: ["dedup", i, "-o", o], "kept", "work/rejects.jsonl"),
    "decontam": (lambda i, o, m: ["decontam", i, "-o", o, "--evalsets", "gsm8k", "--evalsets-root", m["evalsets"]],
                 "kept", "rejects.jsonl"),
    "classify": (lambda i, o, m: ["classify", "score", i, "-o", o, "-m", m["model"]], "kept", "rejects.jsonl"),
    "extract": (lambda i, o, m: ["extract", i, "--source", "book", "-o", o], "corpus", "stages/00_extract/rejects"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_records_are_counted_rejects_and_the_rest_is_processed(command, hostile, model, shared_data, tmp_path,
                                                                   capsys):
    args, kept_dir, rejects = COMMANDS[command]
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, *args(hostile, out, {"model": model, "evalsets": shared_data / "evalsets"}))
    assert code == 0 and "Traceback" not in err, err
    kept, removed = rows(out / kept_dir), rows(out / "removed")
    rej_path = out / rejects
    got = reject_lines(*(sorted(rej_path.glob("*.jsonl")) if rej_path.is_dir() else [rej_path]))
    assert set(got) == set(BAD_LINES), got
    for line, reason in BAD_LINES.items():
        assert reason in got[line], (line, got[line])
    assert len(kept) + len(removed) + len(got) == N  # every record accounted for
    assert re.search(r"\b(6 rejected|rejected 6)\b", stdout), stdout  # the summary shows rejects
    docs = {r["id"]: r for r in kept + removed}
    repaired = [r for r in docs.values() if "\ufffd" in r["text"]]
    assert len(repaired) == 1 and json.loads(repaired[0]["metadata"])["repaired_surrogates"] == 1
    assert any(i.endswith("hostile.jsonl#23") for i in docs)  # no id: file and line, never dropped


def test_decontam_columns_told_to_use_must_exist_before_any_work(hostile, shared_data, tmp_path, capsys):
    base = ["decontam", hostile, "-o", tmp_path / "o", "--evalsets", "gsm8k",
            "--evalsets-root", shared_data / "evalsets"]
    code, _, err = cli(capsys, *base, "--text-column", "body")
    one_line_error(code, err, "hostile.jsonl", "no column 'body'", "--text-column")
    code, _, err = cli(capsys, *base, "--columns", "prompt")
    one_line_error(code, err, "hostile.jsonl", "no column 'prompt'", "--columns")
    assert not (tmp_path / "o").exists()  # refused before any work
    # A Q&A record set with the column: real GSM8K test items are found, not passed as clean.
    gsm = next((shared_data / "evalsets" / "gsm8k").glob("*.jsonl"))
    with open(gsm, encoding="utf-8") as fh:
        items = [json.loads(next(fh)) for _ in range(5)]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"prompt": it["question"], "id": i}) + "\n" for i, it in enumerate(items)))
    code, stdout, err = cli(capsys, "decontam", qa, "-o", tmp_path / "qa_out", "--evalsets", "gsm8k",
                            "--evalsets-root", shared_data / "evalsets", "--columns", "prompt")
    assert code == 0 and "5 removed" in stdout, stdout + err


def test_compressed_inputs_are_read_or_refused_by_name(shared_data, tmp_path, capsys):
    data = b"".join(json.dumps(r).encode() + b"\n" for r in real_records(shared_data))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(data))
    for name in ("a.jsonl.zst", "b.jsonl.gz"):
        code, stdout, err = cli(capsys, "filter", tmp_path / name, "-o", tmp_path / name.split(".")[0],
                                "--languages", "any")
        assert code == 0 and "rejected 0" in stdout, err
        assert len(rows(tmp_path / name.split(".")[0] / "kept")) + len(rows(tmp_path / name.split(".")[0] /
                                                                            "removed")) == N
    (tmp_path / "c.jsonl.lz4").write_bytes(b"\x04\x22\x4d\x18")
    code, _, err = cli(capsys, "filter", tmp_path / "c.jsonl.lz4", "-o", tmp_path / "c")
    one_line_error(code, err, "c.jsonl.lz4", "compressed as .lz4")


def test_a_cut_gzip_keeps_the_records_before_and_rejects_with_the_position(shared_data, tmp_path, capsys):
    data = b"".join(json.dumps(r).encode() + b"\n" for r in real_records(shared_data))
    packed = gzip.compress(data)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) * 2 // 3])
    code, stdout, err = cli(capsys, "extract", tmp_path / "cut.jsonl.gz", "--source", "book", "-o", tmp_path / "o")
    assert code == 0, err
    kept = rows(tmp_path / "o" / "corpus")
    got = reject_lines(*(tmp_path / "o" / "stages" / "00_extract" / "rejects").glob("*.jsonl"))
    assert 0 < len(kept) < N and len(got) == 1
    (line, error), = got.items()
    assert line == len(kept) + 1 or line == len(kept) + 2  # the record cut in half is the reject
    assert "unreadable after line" in error


def _corrupt_row_group(path: Path, group: int) -> None:
    meta = pq.ParquetFile(path).metadata.row_group(group)
    col = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "text")
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    raw = bytearray(path.read_bytes())
    for k in range(start + 20, start + col.total_compressed_size // 2):  # inside this column chunk only
        raw[k] = (raw[k] * 7 + 13) % 256
    path.write_bytes(bytes(raw))


def test_parquet_bad_row_group_and_wrong_types_are_rejects(shared_data, tmp_path, capsys):
    recs = real_records(shared_data)
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"]} for r in recs])
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=10, compression="zstd")
    _corrupt_row_group(tmp_path / "groups.parquet", 1)
    scores = [None if i % 3 else "high" for i in range(N)]
    pq.write_table(table.append_column("math_score", pa.array(scores, pa.string())), tmp_path / "typed.parquet")
    code, stdout, err = cli(capsys, "filter", tmp_path / "groups.parquet", tmp_path / "typed.parquet",
                            "-o", tmp_path / "o", "--languages", "any")
    assert code == 0 and "Traceback" not in err, err
    rejects = [json.loads(x) for x in (tmp_path / "o" / "rejects.jsonl").read_text().splitlines()]
    group = [r for r in rejects if r["file"].endswith("groups.parquet")]
    typed = [r for r in rejects if r["file"].endswith("typed.parquet")]
    assert len(group) == 1 and group[0]["line"] == 11 and "row group 1 (rows 11-20)" in group[0]["error"]
    assert len(typed) == 10 and all("'math_score' must be a number" in r["error"] for r in typed)
    docs = rows(tmp_path / "o" / "kept") + rows(tmp_path / "o" / "removed")
    # the rows of the other row groups and the well-typed rows are all there: nothing else lost
    assert len(docs) == 20 + 20
    assert {r["id"] for r in recs[:10] + recs[20:]} <= {d["id"] for d in docs}


def test_ids_are_unique_across_inputs_holding_the_same_names(shared_data, tmp_path, capsys):
    recs = real_records(shared_data, 4)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in recs))
        (tmp_path / d / "x.md").write_text(recs[0]["text"] if d == "a" else recs[1]["text"], encoding="utf-8")
    code, _, err = cli(capsys, "filter", tmp_path / "a" / "x.jsonl", tmp_path / "b" / "x.jsonl", "-o",
                       tmp_path / "f", "--languages", "any")
    assert code == 0, err
    ids = [r["id"] for r in rows(tmp_path / "f" / "kept") + rows(tmp_path / "f" / "removed")]
    assert len(ids) == 8 == len(set(ids)) and {"a/x.jsonl#1", "b/x.jsonl#1"} <= set(ids)
    code, _, err = cli(capsys, "extract", tmp_path / "a", tmp_path / "b", "--source", "book", "-o", tmp_path / "e",
                       "--format", "book")
    assert code == 0, err
    ids = [r["id"] for r in rows(tmp_path / "e" / "corpus")]
    assert len(ids) == len(set(ids)) and {"book/a/x.md#0", "book/b/x.md#0"} <= set(ids)


# ---- fault injection -------------------------------------------------------------------------------------


def test_permission_error_on_one_input_is_a_one_line_error_naming_it(hostile, tmp_path, capsys, monkeypatch):
    other = tmp_path / "ok.jsonl"
    other.write_bytes(hostile.read_bytes())
    denied = tmp_path / "denied.jsonl"
    denied.write_bytes(hostile.read_bytes())
    real_open = builtins.open

    def guarded(file, *args, **kwargs):  # the tests run as root: chmod 000 would not stop a read
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    code, _, err = cli(capsys, "filter", other, denied, "-o", tmp_path / "o", "--languages", "any")
    one_line_error(code, err, "denied.jsonl", "Permission denied")

    from pipelines.steps.ingest import plan_inputs

    class Spec:
        name, source, format, options, paths = "web", "web", "auto", {}, [str(tmp_path / "*.jsonl")]

    monkeypatch.setattr("os.access", lambda p, mode: not str(p).endswith("denied.jsonl"))
    with pytest.raises(InputError, match=r"denied\.jsonl: cannot read: permission denied"):
        plan_inputs([Spec()])


class FailingListFS(MemoryFileSystem):
    """A filesystem whose listing fails like a bucket without list permission (or a dropped network)."""

    protocol = "failfs"

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"AccessDenied: ListObjectsV2 on {path}")

    def info(self, path, **kwargs):
        raise PermissionError(f"AccessDenied: HeadObject on {path}")


def test_a_filesystem_that_fails_on_listing_is_an_error_never_zero_documents(tmp_path, capsys):
    fsspec.register_implementation("failfs", FailingListFS, clobber=True)
    for call in (lambda: resolve_document_inputs(["failfs://bucket/docs"]),
                 lambda: expand_paths("failfs://bucket/docs"),
                 lambda: shard_files("failfs://bucket/run/stages/01_tokens/kept", 0, 1)):
        with pytest.raises(InputError, match=r"failfs://bucket/.*: cannot list: PermissionError: AccessDenied"):
            call()
    code, _, err = cli(capsys, "filter", "failfs://bucket/docs", "-o", tmp_path / "o")
    one_line_error(code, err, "failfs://bucket/docs", "cannot list", "AccessDenied")
    # only a folder that does not exist yet means "nothing to read"
    assert shard_files(str(tmp_path / "not-yet"), 0, 1) == []


def test_a_reader_failing_part_way_keeps_what_it_read_and_skips_are_counted_apart(shared_data, tmp_path):
    """The run's reader step: records before a failure are kept, the failure is a reject at its position, the next
    file is read; skips are counted by reason (``skipped_<reason>``) and listed apart from rejects."""
    from corpus.formats import FORMATS
    from corpus.io import Skip
    from corpus.records import FileContext
    from pipelines.steps.ingest import InputFile, InputReader

    recs = real_records(shared_data, 6)

    def flaky(path, ctx):
        for i, r in enumerate(recs[:3], 1):
            yield {"id": f"{ctx.relpath}#{i}", "text": r["text"], "_line": i}
        yield Skip(path, 4, "skipped: vendored folder", reason="vendored")
        if path.endswith("a.bin"):
            raise OSError("device went away")
        yield {"id": f"{ctx.relpath}#5", "text": recs[4]["text"], "_line": 5}

    FORMATS["flaky-test"] = flaky
    try:
        files = [InputFile(str(tmp_path / n), "flaky-test", FileContext("in", "book", n)) for n in ("a.bin", "b.bin")]
        reader = InputReader(files, rejects_dir=str(tmp_path / "stage" / "rejects"))
        docs = list(reader.run())
    finally:
        del FORMATS["flaky-test"]
    assert [d.id for d in docs] == ["a.bin#1", "a.bin#2", "a.bin#3", "b.bin#1", "b.bin#2", "b.bin#3", "b.bin#5"]
    (reject,) = [json.loads(x) for x in (tmp_path / "stage" / "rejects" / "00000.jsonl").read_text().splitlines()]
    assert reject["file"].endswith("a.bin") and reject["line"] == 5
    assert "reading stopped after record 4" in reject["error"] and "device went away" in reject["error"]
    skipped = (tmp_path / "stage" / "skipped" / "00000.jsonl").read_text().splitlines()
    stats = reader.stats.stats
    assert len(skipped) == 2 and stats["skipped_vendored"].total == 2 and stats["rejected"].total == 1
    assert stats["documents"].total + stats["rejected"].total + stats["skipped_vendored"].total == 10


def test_extract_html_column_missing_is_an_error_before_work(shared_data, tmp_path, capsys):
    code, _, err = cli(capsys, "extract", shared_data / "web" / "pages.jsonl", "--source", "web",
                       "--html-column", "body", "-o", tmp_path / "o")
    one_line_error(code, err, "pages.jsonl", "no column 'body'", "--html-column")
    assert not (tmp_path / "o").exists()


def test_a_stage_shard_that_cannot_be_read_is_an_error_naming_it(shared_data, tmp_path):
    """A stage's own output is not input to be forgiven: an unreadable shard stops the stage, naming the file."""
    from pipelines.steps.io import ParquetShardReader

    recs = real_records(shared_data, 20)
    folder = tmp_path / "kept"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "text": r["text"]} for r in recs]),
                   folder / "00000.parquet", row_group_size=10, compression="zstd")
    _corrupt_row_group(folder / "00000.parquet", 1)
    reader = ParquetShardReader(str(folder))
    with pytest.raises(InputError, match=r"00000\.parquet: not a readable Parquet shard"):
        list(reader.run())


def test_classify_text_field_missing_is_an_error_before_training(hostile, tmp_path, capsys):
    for command in (["train", "-o", tmp_path / "m"], ["eval", tmp_path / "m"]):
        code, _, err = cli(capsys, "classify", *command, "-p", hostile, "-n", hostile, "--text-field", "body")
        one_line_error(code, err, "hostile.jsonl", "no column 'body'", "--text-field")
    assert not (tmp_path / "m").exists()

"""Runs that account for every document and can never be stale (issues 16 and 19, runner side).

Every case drives the real CLI in a subprocess on real data from ``shared/data`` (seed text, eval sets): a
conservation check on a real local run, reruns after changed input or settings, up-front validation of options
and manifests, mix accounting, ``--debug`` and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.accounting import AccountingError, StageCounts, check_conservation

MATHCORPUS = [sys.executable, "-m", "pipelines.cli"]


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*MATHCORPUS, *map(str, args)], capture_output=True, text=True, **kw)


def one_line_error(r: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single stderr line of a refused command (no traceback), after checking the exit code."""
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "errors.pydantic.dev" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def head(src: Path, dst: Path, n: int, skip: int = 0) -> Path:
    with open(src, encoding="utf-8") as fh:
        lines = fh.readlines()[skip:skip + n]
    dst.write_text("".join(lines), encoding="utf-8")
    return dst


@pytest.fixture()
def seeds(tmp_path, shared_data) -> dict[str, Path]:
    """Small real inputs: 30 math + 30 general seed records, and a file whose 2nd and 4th lines are broken."""
    seed = shared_data / "seed"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "ok-1", "text": "fine"}\n{oops\n{"id": "ok-2", "text": "also fine"}\n\xc3\x28\n')
    return {"math": head(seed / "math_text.jsonl", tmp_path / "math.jsonl", 30),
            "general": head(seed / "general_text.jsonl", tmp_path / "general.jsonl", 30), "bad": bad}


def manifest(tmp_path: Path, seeds: dict[str, Path], stages=None, name="m.yaml", **extra) -> Path:
    data = {"name": "t", "output": "out", "executor": {"kind": "local", "tasks": 1},
            "inputs": [{"name": "math", "source": "book", "paths": [str(seeds["math"])]},
                       {"name": "general", "source": "web", "paths": [str(seeds["general"]), str(seeds["bad"])]}],
            "stages": stages or [{"stage": "extract"}], **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# ---- conservation: the pure check ---------------------------------------------------------------------------


def test_check_conservation_accepts_balanced_terms_and_names_the_stage_otherwise():
    check_conservation("filter", StageCounts(documents_in=10, kept=6, removed=3, rejected=1))
    check_conservation("extract", StageCounts(documents_in=12, kept=9, rejected=1, skipped={"vendored": 2}))
    with pytest.raises(AccountingError, match=r"stage 'filter': documents do not add up: 10 in != 6 kept \+ 2 "
                                              r"removed \+ 1 rejected \+ 0 skipped \(1 document\(s\) unaccounted"):
        check_conservation("filter", StageCounts(documents_in=10, kept=6, removed=2, rejected=1))
    with pytest.raises(AccountingError, match="stage 'mix'.*1 more out than in"):
        check_conservation("mix", StageCounts(documents_in=5, kept=5, removed=0, skipped={"no_mix_source": 1}))
    assert StageCounts(documents_in=3, kept=3).to_json()["balanced"] is True


# ---- conservation and staleness on real runs ----------------------------------------------------------------


def test_run_records_conservation_per_stage_and_appended_input_recomputes(tmp_path, seeds, shared_data):
    m = manifest(tmp_path, seeds, stages=[{"stage": "extract"}, {"stage": "filter"}])
    r = cli("run", m)
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "out/run.json").read_text())
    extract, filt = run["stages"]
    # 30 + 30 + 4 records read: 62 documents, 2 rejects (malformed JSON, invalid UTF-8)
    assert extract["conservation"] == {"documents_in": 64, "kept": 62, "removed": 0, "rejected": 2, "skipped": {},
                                       "removed_by_reason": {}, "balanced": True}
    c = filt["conservation"]
    assert c["balanced"] and c["documents_in"] == 62 == c["kept"] + c["removed"] + c["rejected"]
    assert c["removed"] == sum(c["removed_by_reason"].values())
    funnel = json.loads((tmp_path / "out/corpus/funnel.json").read_text())
    assert [s["conservation"]["documents_in"] for s in funnel["stages"]] == [64, 62]
    assert "extract: 64 in, 62 kept, 0 removed, 2 rejected" in r.stderr

    # records appended to an input: extract and everything after it recompute (not "10 kept of 20")
    extra = head(shared_data / "seed" / "math_text.jsonl", tmp_path / "more.jsonl", 5, skip=30).read_text()
    with open(seeds["math"], "a", encoding="utf-8") as fh:
        fh.write(extra)
    r = cli("run", m)
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "out/run.json").read_text())
    assert run["stages"][0]["conservation"]["kept"] == 67
    assert run["stages"][1]["documents_in"] == 67
    corpus_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (tmp_path / "out/corpus").glob("*.parquet"))
    assert corpus_rows == run["stages"][1]["conservation"]["kept"] == run["corpus_documents"]


def test_unreadable_stage_output_is_an_error_not_zero(tmp_path):
    """A shard that cannot be read is named; only an absent folder counts as empty."""
    from pipelines.accounting import count_lines, count_rows

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(AccountingError, match=r"00000.parquet: not a readable Parquet shard"):
        count_rows(str(kept))
    with pytest.raises(AccountingError, match="missing"):
        count_rows(str(tmp_path / "absent"))
    assert count_rows(str(tmp_path / "absent"), missing_ok=True) == 0
    assert count_lines(str(tmp_path / "no-rejects")) == 0


def test_decontam_rank_without_counts_file_is_an_error_not_skipped(tmp_path):
    from corpus.errors import MathcorpusError
    from corpus.io import write_json
    from pipelines.registry import StageContext
    from pipelines.stages.decontam import DecontamSettings, finalize

    stage = tmp_path / "06_decontam"
    write_json({"evalsets": [], "index": {}}, str(stage / "index/meta.json"))
    write_json({"web": 3}, str(stage / "evidence/00000.counts.json"))
    (stage / "evidence/00000.jsonl").write_text("")
    ctx = StageContext(run_dir=str(tmp_path), stage_dir=str(stage), input_dir=str(tmp_path / "in"), tasks=2,
                       manifest=None)
    with pytest.raises(MathcorpusError, match=r"00001.counts.json: missing \(rank 1 did not finish"):
        finalize(DecontamSettings(), ctx)


# ---- validate up front ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    (["--tasks", "-1"], "'--tasks'"),
    (["--tasks", "0"], "'--tasks'"),
    (["--workers", "0"], "--workers: must be >= 1, or -1"),
    (["-e", "bogus"], "--executor"),
])
def test_run_options_are_range_checked(tmp_path, seeds, args, expected):
    m = manifest(tmp_path, seeds)
    line = one_line_error(cli("run", m, *args))
    assert expected in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, expected", [
    ({"executor": {"tasks": -2}}, "m.yaml: executor.tasks: Input should be greater than or equal to 1"),
    ({"inputs": []}, "m.yaml: inputs: empty list: give at least one input"),
    ({"stages": [{"stage": "tokens"}]}, "m.yaml: stages[0].stage: the first stage must be 'extract'"),
    ({"stages": [{"stage": "extract"}, {"stage": "classify", "model_path": "m", "thresholds": {"web": 1.5}}]},
     "m.yaml: stages[1].thresholds.web: Input should be less than or equal to 1"),
    ({"stages": [{"stage": "extract"}, {"stage": "mix", "shard_rows": -5,
                                         "sources": {"a": {"match": {"source": "web"}, "weight": 1}}}]},
     "m.yaml: stages[1].shard_rows: Input should be greater than 0"),
])
def test_manifest_values_are_range_checked(tmp_path, seeds, change, expected):
    m = manifest(tmp_path, seeds, **change)
    assert expected in one_line_error(cli("run", m))


def test_unknown_eval_set_and_missing_files_fail_before_the_first_stage(tmp_path, seeds, shared_data):
    evalsets = str(shared_data / "evalsets")
    cases = [
        ([{"stage": "decontam", "evalsets": ["gsm8k", "no_such_set"], "evalsets_root": evalsets}],
         "stages[1] (decontam): ", "unknown eval set or profile 'no_such_set'"),
        ([{"stage": "decontam", "evalsets": ["gsm8k"], "evalsets_root": str(tmp_path / "no-root")}],
         "stages[1].evalsets_root: ", "no such file"),
        ([{"stage": "classify", "model_path": str(tmp_path / "no-model")}], "stages[1].model_path: ", "no such file"),
        ([{"stage": "classify", "train": {"default": {"positives_paths": [str(seeds["math"])],
                                                      "negatives_paths": [str(tmp_path / "nope.jsonl")]}}}],
         "stages[1].train.default.negatives_paths[0]: ", "no such file"),
    ]
    for i, (stages, where, problem) in enumerate(cases):
        m = manifest(tmp_path, seeds, stages=[{"stage": "extract"}, *stages], name=f"m{i}.yaml")
        line = one_line_error(cli("run", m, "-o", tmp_path / f"out{i}"))
        assert f"m{i}.yaml: {where}" in line and problem in line, line
        assert not (tmp_path / f"out{i}/stages").exists(), "a stage started before the manifest was checked"
    m = manifest(tmp_path, seeds, name="missing-input.yaml")
    seeds["math"].rename(tmp_path / "moved.jsonl")
    line = one_line_error(cli("run", m))
    assert "inputs[0] (math)" in line and "math.jsonl: no such file" in line


def test_output_that_is_a_file_or_another_commands_folder_is_refused(tmp_path, seeds):
    m = manifest(tmp_path, seeds)
    (tmp_path / "afile").write_text("x")
    assert "afile: is an existing file" in one_line_error(cli("run", m, "-o", tmp_path / "afile"))
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"input_paths": ["x"], "sources": {"a": {"weight": 1}}}), encoding="utf-8")
    for command in (["filter", seeds["math"]], ["dedup", seeds["math"]], ["mix", mix], ["classify", "score",
                    seeds["math"], "-m", tmp_path], ["recall", "--pool", seeds["math"], "-p", seeds["math"], "-n",
                                                    seeds["general"]]):
        assert "afile: is an existing file" in one_line_error(cli(*command, "-o", tmp_path / "afile")), command
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("precious")
    assert "is not empty and was not written by `mathcorpus run`" in one_line_error(cli("run", m, "-o",
                                                                                         tmp_path / "data"))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / ".mathcorpus.json").write_text('{"command": "mix"}')
    assert "holds the output of `mathcorpus mix`" in one_line_error(cli("run", m, "-o", mixed))
    assert (tmp_path / "data" / "mine.txt").read_text() == "precious"


def test_unmarked_folder_of_the_same_command_is_adopted_and_then_owned(tmp_path):
    from pipelines.outputs import OutputError, claim_output

    old = tmp_path / "old"
    (old / "stages").mkdir(parents=True)  # a run folder made before output markers existed
    claim_output(str(old), "run", adopt=("stages", "corpus", "run.json"))
    assert json.loads((old / ".mathcorpus.json").read_text()) == {"command": "run"}
    with pytest.raises(OutputError, match="holds the output of `mathcorpus run`, not of `mathcorpus filter`"):
        claim_output(str(old), "filter", clear=("kept",))
    assert (old / "stages").is_dir()


@pytest.mark.parametrize("args, expected", [
    (["--rounds", "0"], "'--rounds'"),
    (["--dim", "0"], "'--dim'"),
    (["--target-recall", "1.5"], "'--target-recall': must be > 0 and <= 1 (got 1.5)"),
    (["--domain-threshold", "1"], "'--domain-threshold'"),
])
def test_recall_options_are_range_checked(tmp_path, seeds, args, expected):
    r = cli("recall", "--pool", seeds["general"], "-p", seeds["math"], "-n", seeds["general"], "-o",
            tmp_path / "rec", *args)
    assert expected in one_line_error(r)


def test_recall_bad_pool_fails_before_training(tmp_path, seeds):
    line = one_line_error(cli("recall", "--pool", tmp_path / "no-pool.parquet", "-p", seeds["math"], "-n",
                              seeds["general"], "-o", tmp_path / "rec", "--rounds", "1"))
    assert "no-pool.parquet: no such file" in line
    assert not list((tmp_path / "rec").glob("round_*")), "round 1 started before the pool was checked"


def test_classify_score_batch_size_zero_is_refused(tmp_path, seeds):
    line = one_line_error(cli("classify", "score", seeds["math"], "-m", tmp_path, "-o", tmp_path / "s",
                              "--batch-size", "0"))
    assert "'--batch-size'" in line


def test_rerun_into_the_same_folder_leaves_only_what_it_reports(tmp_path, seeds):
    """A second `filter` into the same folder: no old kept/removed shard or rejects file survives beside the new."""
    out = tmp_path / "filtered"
    r = cli("filter", seeds["math"], seeds["general"], seeds["bad"], "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "rejects.jsonl").exists() and list((out / "removed").glob("*.parquet"))
    small = head(seeds["math"], tmp_path / "small.jsonl", 5)
    keep_all = tmp_path / "keep-all.yaml"
    keep_all.write_text("{languages: null, length: null, ratios: null, repetition: null, boilerplate: null}")
    r = cli("filter", small, "-o", out, "--config", keep_all)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "filter_report.json").read_text())
    kept = sum(pq.ParquetFile(f).metadata.num_rows for f in (out / "kept").glob("*.parquet"))
    assert kept == report["kept"] == 5 and report["removed"] == 0
    assert not (out / "removed").exists() and not (out / "rejects.jsonl").exists()
    line = one_line_error(cli("classify", "score", small, "-m", tmp_path, "-o", out))
    assert "holds the output of `mathcorpus filter`" in line


# ---- recall reruns -----------------------------------------------------------------------------------------------


def test_recall_rerun_with_other_seed_or_dim_recomputes(tmp_path, shared_data, seeds):
    pool = tmp_path / "pool.jsonl"
    with open(pool, "w", encoding="utf-8") as out:
        for i, path in enumerate((seeds["math"], seeds["general"])):
            for j, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                rec = json.loads(line)
                out.write(json.dumps({"id": f"{i}-{j}", "text": rec["text"],
                                      "url": f"https://site{i}{j % 3}.org/p{j % 2}/{j}"}) + "\n")
    base = ["recall", "--pool", pool, "-p", seeds["math"], "-n", seeds["general"], "-o", tmp_path / "rec",
            "--rounds", "1", "--dim", "16", "--epoch", "3", "--lr", "0.05", "--min-count", "1", "--bucket", "5000",
            "--threads", "1"]
    r = cli(*base, "--seed", "1")
    assert r.returncode == 0, r.stderr
    first = json.loads((tmp_path / "rec/round_01/report.json").read_text())
    r = cli(*base, "--seed", "1")
    assert r.returncode == 0 and "done already" in r.stderr
    r = cli(*base, "--seed", "2")
    assert r.returncode == 0, r.stderr
    assert "done already" not in r.stderr and "recomputing" in r.stderr
    second = json.loads((tmp_path / "rec/round_01/report.json").read_text())
    assert second["seed"] == 2 and first["seed"] == 1 and second["settings_key"] != first["settings_key"]
    summary = json.loads((tmp_path / "rec/recall.json").read_text())
    assert summary["config"]["params"]["seed"] == 2


# ---- mix accounting -------------------------------------------------------------------------------------------


@pytest.fixture()
def shards(tmp_path, shared_data) -> Path:
    """Document-schema Parquet from real seed text: web en/zh, code, and 7 'other' documents no source takes."""
    from corpus.io import write_parquet
    from corpus.schema import normalize_row, rows_to_table

    rows = []
    for name, source, lang, n in (("math_text", "web", "en", 40), ("math_text_zh", "web", "zh", 30),
                                  ("math_code", "code", "en", 20), ("general_text", "other", "und", 7)):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            for _, line in zip(range(n), fh, strict=False):
                rec = json.loads(line)
                rows.append(normalize_row({**rec, "lang": lang, "n_tokens": len(rec["text"]) // 4 + 1}, source))
    folder = tmp_path / "shards"
    write_parquet(rows_to_table(rows), str(folder / "a.parquet"))
    return folder


def write_mix(tmp_path: Path, shards: Path, sources: dict, **extra) -> Path:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"output_dir": "mixed", "input_paths": [str(shards)], "sources": sources,
                                    **extra}), encoding="utf-8")
    return path


def test_mix_reports_unmatched_documents_and_accounts_for_every_input(tmp_path, shards):
    cfg = write_mix(tmp_path, shards, {"web": {"match": {"source": "web"}, "weight": 0.7},
                                       "code": {"match": {"source": "code"}, "weight": 0.3}})
    r = cli("mix", cfg)
    assert r.returncode == 0, r.stderr
    assert "7 input document(s) match no source" in r.stderr
    m = json.loads((tmp_path / "mixed/manifest.json").read_text())
    assert m["unmatched"]["documents"] == 7
    assert m["unmatched"]["by"] == [{"values": {"source": "other"}, "documents": 7}]
    acc = m["accounting"]
    assert acc["documents_in"] == 97 and acc["skipped"] == {"no_mix_source": 7}
    check_conservation("mix", StageCounts(documents_in=acc["documents_in"], kept=acc["kept"],
                                          removed=acc["removed"], skipped=acc["skipped"]))
    unique = {i.split("#")[0] for f in (tmp_path / "mixed").glob("*.parquet")
              for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()}
    assert len(unique) == acc["kept"]


def test_mix_stage_in_a_run_counts_documents_no_source_takes(tmp_path, seeds):
    """The web pages match no mix source: the run reports them as skipped (no_mix_source) and still balances."""
    m = manifest(tmp_path, seeds, stages=[{"stage": "extract"},
                                          {"stage": "mix", "sources": {"book": {"match": {"source": "book"},
                                                                                "weight": 1}}}])
    r = cli("run", m)
    assert r.returncode == 0, r.stderr
    mix = json.loads((tmp_path / "out/run.json").read_text())["stages"][1]
    c = mix["conservation"]
    assert c["balanced"] and c["documents_in"] == 62 and c["skipped"] == {"no_mix_source": 32}
    assert c["kept"] + c["removed"] == 30
    assert mix["summary"]["unmatched"]["by"] == [{"values": {"source": "web"}, "documents": 32}]


def test_mix_token_target_far_above_what_exists_warns(tmp_path, shards):
    cfg = write_mix(tmp_path, shards, {"web": {"match": {"source": "web"}, "tokens": 10_000_000}})
    r = cli("mix", cfg)
    assert r.returncode == 0, r.stderr
    assert "warning: sources.web:" in r.stderr and "of the 10,000,000 requested" in r.stderr
    m = json.loads((tmp_path / "mixed/manifest.json").read_text())
    assert len(m["warnings"]) == 1 and m["warnings"][0].startswith("sources.web:")


def test_mix_source_matching_nothing_is_an_error(tmp_path, shards):
    cfg = write_mix(tmp_path, shards, {"web": {"match": {"source": "web"}, "weight": 1},
                                       "exam": {"match": {"source": "exam"}, "weight": 1}})
    assert "sources.exam: selects no documents" in one_line_error(cli("mix", cfg))


# ---- --debug and Ctrl-C -----------------------------------------------------------------------------------------


def test_tracebacks_only_under_debug(tmp_path):
    line = one_line_error(cli("run", tmp_path / "nope.yaml"))
    assert line.endswith("nope.yaml: no such manifest file")
    r = cli("--debug", "run", tmp_path / "nope.yaml")
    assert r.returncode != 0 and "Traceback" in r.stderr and "ManifestError" in r.stderr
    stats = [str(Path(sys.executable).parent / "corpus-stats"), str(tmp_path / "none")]
    assert "none: no such file" in one_line_error(subprocess.run(stats, capture_output=True, text=True))
    r = subprocess.run([*stats, "--debug"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, seeds):
    """The manifest is a FIFO: the command blocks reading it until the test interrupts, whatever the machine's
    speed (the test knows the command is waiting once it can open the FIFO's write end)."""
    import errno
    import time

    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    proc = subprocess.Popen([*MATHCORPUS, "run", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    writer = None
    try:
        while writer is None:  # opening the write end succeeds only once the command has the read end open
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO and proc.poll() is None, proc.stderr.read() if proc.poll() else e
                time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        out, err = proc.communicate(timeout=120)
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err == "interrupted: rerun the same command to resume\n" and out == ""

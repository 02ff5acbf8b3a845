"""The frame: schema, manifests, readers with rejects, the runner on the local executor and on real Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from corpus.io import Reject, iter_jsonl
from corpus.schema import DOCUMENT_SCHEMA, SchemaError, conform_table, loads_metadata, normalize_row
from pipelines.manifest import ManifestError, load_manifest, parse_manifest
from pipelines.runner import run_manifest
from pipelines.steps.io import read_shards

MATHCORPUS = [sys.executable, "-m", "pipelines.cli"]


def write_manifest(path: Path, inputs: list[dict], stages=None, **extra) -> Path:
    data = {"name": "t", "output": "out", "executor": {"tasks": 2}, "inputs": inputs,
            "stages": stages or [{"stage": "extract"}], **extra}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def ids_of(folder) -> list[str]:
    return sorted(read_shards(str(folder)).column("id").to_pylist())


# ---- schema ----------------------------------------------------------------------------------------------


def test_normalize_row_keeps_id_and_moves_extras_to_metadata():
    row = normalize_row({"id": 7, "text": "x^2", "source": "HoTT/book@1", "license": "CC"}, source="book")
    assert row["id"] == "7" and row["source"] == "book"
    assert loads_metadata(row["metadata"]) == {"license": "CC", "orig_source": "HoTT/book@1"}
    with pytest.raises(SchemaError, match="text"):
        normalize_row({"id": "a", "text": None})
    with pytest.raises(SchemaError, match="source must be one of"):
        normalize_row({"id": "a", "text": "t", "source": "blog"})


def test_conform_table_names_file_and_column():
    t = pa.table({"id": ["a"], "text": ["b"], "math_score": ["not a number"]})
    with pytest.raises(SchemaError, match=r"f\.parquet: column 'math_score'"):
        conform_table(t, path="f.parquet")
    with pytest.raises(SchemaError, match="missing required column"):
        conform_table(pa.table({"text": ["b"]}), path="g.parquet")
    ok = conform_table(pa.table({"text": ["b"], "id": ["a"]}), path="h")
    assert ok.schema.equals(DOCUMENT_SCHEMA) and ok.column("source").null_count == 1


# ---- readers ---------------------------------------------------------------------------------------------


def test_jsonl_reader_rejects_bad_lines_with_their_numbers(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"id": "1", "text": "a"}\n{broken\n\n\xff\xfe{"id": 2}\n[1, 2]\n{"id": "5", "text": "e"}\n')
    got = list(iter_jsonl(str(p)))
    rejects = {n: r.error for n, r in got if isinstance(r, Reject)}
    assert [n for n, r in got if not isinstance(r, Reject)] == [1, 6]
    assert set(rejects) == {2, 4, 5}
    assert "malformed JSON" in rejects[2] and "UTF-8" in rejects[4] and "not an object" in rejects[5]


# ---- manifests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nstages: [\n", r"m\.yaml: line \d+, column \d+: invalid YAML"),
        ("name: t\nbogus: 1\n", r"m\.yaml: bogus: unknown key"),
        ("name: t\nstages:\n  - stage: extract\n    nope: 3\n", r"m\.yaml: stages\[0\]\.nope: unknown key"),
        ("name: t\nstages:\n  - stage: teleport\n", r"m\.yaml: stages\[0\]\.stage: unknown stage 'teleport'"),
        ("name: t\ninputs:\n  - {name: a, source: blog, paths: [x]}\n", r"m\.yaml: inputs\[0\]\.source: .*one of"),
        ("name: t\nexecutor: {kind: slurm}\n", r"m\.yaml: executor\.kind: "),
        ("- just a list\n", r"m\.yaml: \(top level\): expected a mapping"),
    ],
)
def test_manifest_errors_name_file_key_and_problem(tmp_path, text, expected):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ManifestError, match=expected) as e:
        load_manifest(p)
    assert "\n" not in str(e.value)


def test_manifest_is_loaded_safely_and_paths_resolve_relative_to_it(tmp_path):
    p = tmp_path / "sub" / "m.yaml"
    p.parent.mkdir()
    p.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ManifestError, match="invalid YAML"):
        load_manifest(p)
    m = parse_manifest({"name": "t", "output": "o", "inputs": [{"name": "a", "source": "web", "paths": ["d/*.jsonl"]}]},
                       str(p))
    assert m.inputs[0].paths == [str(tmp_path / "sub" / "d" / "*.jsonl")] and m.output == str(tmp_path / "sub" / "o")


def test_missing_manifest_and_missing_input_are_one_line_cli_errors(tmp_path):
    r = subprocess.run([*MATHCORPUS, "run", str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "nope.yaml: no such manifest file" in r.stderr
    m = write_manifest(tmp_path / "m.yaml", [{"name": "a", "source": "web", "paths": ["missing/*.jsonl"]}])
    r = subprocess.run([*MATHCORPUS, "run", str(m), "-e", "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Invalid value for --executor" in r.stderr
    r = subprocess.run([*MATHCORPUS, "run", str(m), "-e", "local"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing/*.jsonl: no such file or no matching input files" in r.stderr.strip().splitlines()[-1]


# ---- runs ------------------------------------------------------------------------------------------------


@pytest.fixture()
def seed_manifest(tmp_path, shared_data):
    """Real seed text (math + general, English + Chinese) plus a file with malformed records."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "ok-1", "text": "fine"}\n{oops\n\xc3\x28\n{"id": "no-text"}\n')
    seed = shared_data / "seed"
    return write_manifest(tmp_path / "m.yaml", [
        {"name": "math", "source": "book", "paths": [str(seed / "math_text.jsonl"), str(seed / "math_text_zh.jsonl")]},
        {"name": "general", "source": "web", "paths": [str(seed / "general_text.jsonl")]},
        {"name": "bad", "source": "other", "paths": [str(bad)]},
    ])


def expected_ids(shared_data) -> set[str]:
    ids = {"ok-1"}
    for name in ("math_text", "math_text_zh", "general_text"):
        with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
            ids |= {json.loads(line)["id"] for line in fh if line.strip()}
    return ids


def test_local_run_writes_schema_shards_rejects_and_run_manifest(seed_manifest, shared_data, tmp_path):
    result = run_manifest(load_manifest(seed_manifest), executor="local", progress=lambda s: None)
    corpus = Path(result.corpus_dir)
    shards = sorted(corpus.glob("*.parquet"))
    assert len(shards) == 2
    for s in shards:
        assert pq.read_schema(s).remove_metadata().equals(DOCUMENT_SCHEMA.remove_metadata())
    table = read_shards(str(corpus))
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) == expected_ids(shared_data)
    by_source = dict(zip(*pa.compute.value_counts(table.column("source")).flatten(), strict=True))
    assert set(map(str, by_source)) == {"book", "web", "other"}
    rejects = [json.loads(line) for f in sorted((tmp_path / "out/stages/00_extract/rejects").glob("*.jsonl"))
               for line in f.read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == [2, 3, 4]
    assert all(r["file"].endswith("bad.jsonl") for r in rejects)
    run = json.loads((tmp_path / "out/run.json").read_text())
    assert run["corpus_documents"] == len(ids) and run["stages"][0]["rejects"] == 3
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


@pytest.mark.ray
def test_ray_and_local_runs_give_the_same_ids(seed_manifest, ray_cluster, tmp_path, shared_data):
    m = load_manifest(seed_manifest)
    local = run_manifest(m, executor="local", output=str(tmp_path / "local"), progress=lambda s: None)
    ray_run = run_manifest(m, executor="ray", output=str(tmp_path / "ray"), progress=lambda s: None)
    assert ids_of(local.corpus_dir) == ids_of(ray_run.corpus_dir)
    assert set(ids_of(ray_run.corpus_dir)) == expected_ids(shared_data)


def test_killed_run_resumes_to_identical_shards(tmp_path, shared_data):
    """Kill a run after some tasks completed, rerun it, compare every shard with an uninterrupted run."""
    seed = shared_data / "seed"
    inputs = [{"name": n, "source": "book", "paths": [str(seed / f"{n}.jsonl")]}
              for n in ("math_text", "general_text", "math_code", "general_code", "math_text_zh", "general_text_zh")]
    m = write_manifest(tmp_path / "m.yaml", inputs, executor={"tasks": 6, "workers": 1})
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([*MATHCORPUS, "run", str(m), "-e", "local", "-o", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    completions = killed / "stages/00_extract/logs/extract/completions"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if completions.is_dir() and 1 <= len(os.listdir(completions)) < 6:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "run.json").exists()
    done_before = len(os.listdir(completions))
    assert 1 <= done_before < 6

    for out in (killed, clean):
        r = subprocess.run([*MATHCORPUS, "run", str(m), "-e", "local", "-o", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    shards = sorted(p.name for p in (clean / "corpus").glob("*.parquet"))
    assert shards == sorted(p.name for p in (killed / "corpus").glob("*.parquet")) and len(shards) == 6
    for name in shards:
        assert pq.read_table(killed / "corpus" / name).equals(pq.read_table(clean / "corpus" / name)), name
    ids = ids_of(killed / "corpus")
    assert len(ids) == len(set(ids))


def test_changed_stage_settings_recompute_the_stage(seed_manifest, tmp_path):
    m = load_manifest(seed_manifest)
    run_manifest(m, executor="local", progress=lambda s: None)
    marker = tmp_path / "out/stages/00_extract/logs/extract/completions"
    assert marker.is_dir()
    m.inputs = m.inputs[:1]  # inputs changed: extract must rerun, not reuse the old shards
    result = run_manifest(m, executor="local", progress=lambda s: None)
    assert "ok-1" not in ids_of(result.corpus_dir) and result.stages[0]["documents_out"] > 0

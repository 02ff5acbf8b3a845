"""decontam end to end: the CLI (subprocess) and the pipeline stage on the local executor and real Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.manifest import load_manifest
from pipelines.runner import run_manifest
from pipelines.steps.io import read_shards

MATHCORPUS = [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory, shared_data, repo) -> Path:
    """Real seed text, two documents with a demo item / a GSM8K solution planted, one reformatted."""
    folder = tmp_path_factory.mktemp("dc_inputs")
    seed = [json.loads(x) for x in (shared_data / "seed/math_text.jsonl").read_text().splitlines()[:12]]
    demo = [json.loads(x) for x in (repo / "corpus/demo/evalsets/demo/test.jsonl").read_text().splitlines()]
    gsm = json.loads((shared_data / "evalsets/gsm8k/test.jsonl").read_text().splitlines()[4])
    rows = [{"id": d["id"], "text": d["text"]} for d in seed]
    rows.append({"id": "planted-demo", "text": seed[0]["text"][:800] + "\n\n" + demo[2]["question"].upper()
                 + "\n\n" + seed[1]["text"][:800], "url": "https://example.org/demo"})
    rows.append({"id": "planted-gsm8k", "text": seed[2]["text"][:500] + "\n" + gsm["answer"] + "\n"})
    (folder / "docs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder / "docs.jsonl"


def test_cli_writes_kept_removed_and_reports(tmp_path, docs, shared_data):
    out = tmp_path / "out"
    proc = subprocess.run([*MATHCORPUS, "decontam", str(docs), "--evalsets", "demo,pretrain", "--evalsets-root",
                           str(shared_data / "evalsets"), "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "14 documents, 2 removed, 12 kept" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert {r["doc_id"]: r["evalset"] for r in report["removals"]} == {"planted-demo": "demo",
                                                                       "planted-gsm8k": "gsm8k"}
    assert sorted(e["name"] for e in report["evalsets"]) == ["demo", "gsm8k", "math"]
    assert (out / "report.md").exists() and "<mark>" in (out / "report.html").read_text()
    assert len(read_shards(str(out / "removed"))) == 2 and len(read_shards(str(out / "kept"))) == 12


def test_cli_reworded_tier_is_on_by_default_and_has_an_off_flag(tmp_path, repo):
    """A reworded demo item (same numbers, other words and order) is removed by default, kept with --no-reworded."""
    doc = ("On Saturday the bakery collected $121 after it sold forty-eight items in total. Cookies go for $2 each "
           "and muffins for $3 each at this bakery. What number of muffins were sold by the bakery on Saturday?")
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps({"id": "r1", "text": doc}) + "\n")
    outs = {}
    for flag in ([], ["--no-reworded"]):
        out = tmp_path / ("off" if flag else "on")
        proc = subprocess.run([*MATHCORPUS, "decontam", str(src), "--evalsets", "demo", "-o", str(out), *flag],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        outs[bool(flag)] = json.loads((out / "report.json").read_text())
    on, off = outs[False], outs[True]
    assert on["config"]["reworded"] is True and off["config"]["reworded"] is False
    assert [(r["item_id"], r["rule"], sorted(r["numbers_matched"])) for r in on["removals"]] == [
        ("demo-001", "reworded", ["121", "2", "3", "48"])]
    assert off["totals"]["removed"] == 0


def test_cli_errors_are_one_line(tmp_path, docs):
    proc = subprocess.run([*MATHCORPUS, "decontam", str(docs), "--evalsets", "gsm9k", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown eval set or profile 'gsm9k'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([*MATHCORPUS, "decontam", str(docs), "--evalsets", "gsm8k", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "--evalsets-root" in proc.stderr and "Traceback" not in proc.stderr


def _manifest(tmp_path: Path, docs: Path, shared_data: Path) -> Path:
    m = {"name": "dc", "output": str(tmp_path / "run"), "executor": {"kind": "local", "tasks": 2},
         "inputs": [{"name": "seed", "source": "book", "paths": [str(docs)]}],
         "stages": [{"stage": "extract"},
                    {"stage": "decontam", "evalsets": ["demo", "gsm8k"],
                     "evalsets_root": str(shared_data / "evalsets")}]}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(m))
    return path


@pytest.mark.ray
def test_stage_on_ray_and_local_gives_the_same_report(tmp_path, docs, shared_data, ray_cluster):
    manifest = load_manifest(_manifest(tmp_path, docs, shared_data))
    reports = {}
    for kind in ("local", "ray"):
        result = run_manifest(manifest, executor=kind, output=str(tmp_path / kind), progress=lambda s: None)
        stage = Path(result.stages[1]["dir"])
        assert result.stages[1]["summary"]["removed"] == 2
        assert result.stages[1]["documents_removed"] == 2 and result.stages[1]["documents_out"] == 12
        removed = read_shards(str(stage / "removed"))
        assert sorted(removed.column("id").to_pylist()) == ["planted-demo", "planted-gsm8k"]
        assert set(removed.column("evalset").to_pylist()) == {"demo", "gsm8k"}
        assert "planted-demo" not in read_shards(result.corpus_dir).column("id").to_pylist()
        reports[kind] = {n: (stage / n).read_bytes() for n in ("report.json", "report.md", "report.html")}
    assert reports["local"] == reports["ray"]
    rep = json.loads(reports["ray"]["report.json"])
    assert rep["totals"]["by_source"] == {"book": {"documents": 14, "removed": 2}}
    assert rep["inputs"] and all(len(i["sha256"]) == 64 for i in rep["inputs"])
    demo = next(r for r in rep["removals"] if r["doc_id"] == "planted-demo")
    assert demo["url"] == "https://example.org/demo" and demo["item_id"] == "demo-003"

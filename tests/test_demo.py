"""The demo manifest end to end: every stage on real local Ray and on the local executor, same corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.schema import DOCUMENT_SCHEMA
from pipelines.manifest import load_manifest
from pipelines.runner import run_manifest
from pipelines.steps.io import read_shards

DEMO = Path(__file__).resolve().parents[1] / "manifests" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory, ray_cluster):
    out = tmp_path_factory.mktemp("demo")
    m = load_manifest(DEMO)
    ray_run = run_manifest(m, executor="ray", output=str(out / "ray"), progress=lambda s: None)
    local_run = run_manifest(m, executor="local", output=str(out / "local"), progress=lambda s: None)
    return ray_run, local_run


def corpus_table(run):
    return read_shards(run.corpus_dir)


@pytest.mark.ray
def test_ray_and_local_build_the_same_corpus_byte_for_byte(demo_runs):
    ray_run, local_run = demo_runs
    shards = sorted(p.name for p in Path(ray_run.corpus_dir).glob("*.parquet"))
    assert len(shards) >= 2 and shards == sorted(p.name for p in Path(local_run.corpus_dir).glob("*.parquet"))
    for name in shards:
        a = (Path(ray_run.corpus_dir) / name).read_bytes()
        assert a == (Path(local_run.corpus_dir) / name).read_bytes(), name


@pytest.mark.ray
def test_demo_corpus_content(demo_runs):
    run = demo_runs[0]
    table = corpus_table(run)
    for f in Path(run.corpus_dir).glob("*.parquet"):
        assert pq.read_schema(f).remove_metadata().equals(DOCUMENT_SCHEMA.remove_metadata())
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    base = {i.split("#")[0] for i in ids}
    # math pages, books and code survive; the contaminated pages and the general pages do not
    assert {"web/quadratic_equations.html", "web/mirror_quadratic_equations.html"} & base
    assert "books/calculus_notes.tex" in base or any(b.startswith("books/calculus_notes.tex") for b in base)
    assert "code/primes.py" in base
    assert not {"web/contam_verbatim_tutoring.html", "web/contam_reformatted_blog.html"} & base
    assert not {"web/recipe_lentil_soup.html", "web/football_report.html", "books/garden_story.txt"} & base
    # exactly one copy of each planted duplicate pair is left
    assert len({"web/quadratic_equations.html", "web/mirror_quadratic_equations.html"} & base) == 1
    assert len({"web/derivatives_katex.html", "web/repost_derivatives.html"} & base) == 1
    for col in ("n_tokens", "lang", "math_score", "quality_tier"):
        assert table.column(col).null_count == 0, col
    assert set(table.column("source").to_pylist()) == {"web", "book", "code"}


@pytest.mark.ray
def test_demo_writes_reports_funnel_and_manifests(demo_runs):
    run = demo_runs[0]
    out = Path(run.output)
    runinfo = json.loads((out / "run.json").read_text())
    stages = [s["stage"] for s in runinfo["stages"]]
    assert stages == ["extract", "tokens", "langid", "classify", "filter", "dedup", "decontam", "mix"]
    extract = runinfo["stages"][0]
    assert extract["rejects"] + extract["documents_removed"] >= 1  # empty.html is counted
    skipped = extract["conservation"]["skipped"]  # vendored/generated code files: skips by reason, not rejects
    assert skipped.get("vendored", 0) >= 1 and skipped.get("generated", 0) >= 1
    decontam_dir = Path(runinfo["stages"][6]["dir"])
    report = json.loads((decontam_dir / "report.json").read_text())
    removed = read_shards(str(decontam_dir / "removed"))
    assert sorted(removed.column("id").to_pylist()) == [
        "web/contam_reformatted_blog.html", "web/contam_verbatim_tutoring.html"]
    assert "demo-003" in json.dumps(report) and "demo-008" in json.dumps(report)
    assert (decontam_dir / "report.html").read_text().count("<mark>") >= 2
    manifest = json.loads((Path(run.corpus_dir) / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"web", "book", "code"}
    funnel = json.loads((Path(run.corpus_dir) / "funnel.json").read_text())
    assert funnel and (Path(run.corpus_dir) / "funnel.png").stat().st_size > 0

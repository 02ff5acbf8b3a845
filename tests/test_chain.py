"""Commands that chain (issue #16), and CLI tests for the README paths that had none.

Every command that takes documents reads the previous command's output folder as it is: a run folder means its
``corpus/``, a command's output folder its ``kept/`` shards; reports, plots and logs are never read.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.io import resolve_document_inputs
from pipelines.cli import main
from pipelines.steps.io import read_shards


def cli(capsys, *args) -> str:
    """Run ``mathcorpus ARGS`` in this process; it must succeed. Returns stdout."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert (e.value.code or 0) == 0 and "Traceback" not in err, err[-3000:]
    return out


def n_rows(folder: Path) -> int:
    return read_shards(str(folder)).num_rows if folder.exists() else 0


def n_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def seed_jsonl(shared_data: Path, name: str, start: int, stop: int, dest: Path, **extra) -> Path:
    with open(shared_data / "seed" / f"{name}.jsonl", encoding="utf-8") as fh:
        lines = [json.loads(line) for i, line in enumerate(fh) if start <= i < stop]
    dest.write_text("".join(json.dumps({**r, **extra}) + "\n" for r in lines), encoding="utf-8")
    return dest


def train(shared_data: Path, pos: str, neg: str, out: Path) -> str:
    from classifiers.model import TrainParams, train_from_files

    train_from_files(str(out), [str(shared_data / "seed" / f"{pos}.jsonl")],
                     [str(shared_data / "seed" / f"{neg}.jsonl")],
                     TrainParams(dim=16, epoch=3, threads=1, min_count=2, bucket=50_000))
    return str(out)


@pytest.fixture(scope="module")
def models(shared_data, tmp_path_factory) -> dict[str, str]:
    """Small real fastText models trained on the seed files: text (math vs general prose), code."""
    d = tmp_path_factory.mktemp("models")
    return {"text": train(shared_data, "math_text", "general_text", d / "text"),
            "code": train(shared_data, "math_code", "general_code", d / "code")}


@pytest.fixture(scope="module")
def extracted(shared_data, tmp_path_factory) -> Path:
    """``mathcorpus extract`` of the real math web pages: a run folder (corpus/, stages/, run.json, reports)."""
    out = tmp_path_factory.mktemp("chain") / "extract"
    with pytest.raises(SystemExit) as e:
        main(["extract", str(shared_data / "web" / "math"), "--source", "web", "--output", str(out)])
    assert (e.value.code or 0) == 0
    return out


def test_chain_extract_score_filter_dedup_decontam_mix_stats(extracted, models, shared_data, tmp_path, capsys):
    corpus = n_rows(extracted / "corpus")
    assert corpus > 20 and (extracted / "corpus" / "funnel.json").exists()  # reports beside the shards
    assert resolve_document_inputs([str(extracted)]) == sorted(str(p) for p in (extracted / "corpus").glob("*.parquet"))

    out = cli(capsys, "classify", "score", extracted, "-o", tmp_path / "scored", "-m", models["text"],
              "-m", f"code={models['code']}")
    score = json.loads((tmp_path / "scored" / "score.json").read_text())
    assert score["documents"] == corpus and "0 rejected" in out  # the corpus only, no report read as records
    assert score["kept"] + score["removed"] == corpus == n_rows(tmp_path / "scored" / "kept") + n_rows(
        tmp_path / "scored" / "removed")

    cli(capsys, "filter", tmp_path / "scored", "-o", tmp_path / "filtered", "--languages", "any")
    report = json.loads((tmp_path / "filtered" / "filter_report.json").read_text())
    assert report["kept"] + report["removed"] + report["rejected_records"] == score["kept"]

    cli(capsys, "dedup", tmp_path / "filtered", "-o", tmp_path / "deduped")
    dedup = json.loads((tmp_path / "deduped" / "dedup_report.json").read_text())
    assert dedup["documents"] == report["kept"] and dedup["rejected"] == 0
    assert n_rows(tmp_path / "deduped" / "kept") + n_rows(tmp_path / "deduped" / "removed") == report["kept"]

    out = cli(capsys, "decontam", tmp_path / "deduped", "-o", tmp_path / "clean", "--evalsets", "gsm8k,math",
              "--evalsets-root", shared_data / "evalsets")
    audit = json.loads((tmp_path / "clean" / "report.json").read_text())
    kept = n_rows(tmp_path / "deduped" / "kept")
    assert audit["totals"]["documents"] + audit["totals"]["rejected"] == kept and "0 rejected" in out
    assert n_rows(tmp_path / "clean" / "kept") == audit["totals"]["kept"]

    mix_yaml = tmp_path / "mix.yaml"
    mix_yaml.write_text(f"output_dir: unused\ninput_paths: [{tmp_path / 'clean'}]\nseed: 0\n"
                        "sources:\n  web: {match: {source: web}, weight: 1.0}\n")
    cli(capsys, "mix", mix_yaml, "-o", tmp_path / "mixed", "--seed", "7")
    manifest = json.loads((tmp_path / "mixed" / "manifest.json").read_text())
    assert manifest["documents"] == audit["totals"]["kept"]  # removed/ and reports of decontam not mixed

    stats = json.loads(cli(capsys, "stats", tmp_path / "mixed", "--json"))
    assert stats["total"]["documents"] == manifest["documents"]
    # a run folder is its corpus: not the corpus plus every stage's kept/ and removed/ shards
    stats = json.loads(cli(capsys, "stats", extracted, "--json"))
    shards = list((extracted / "corpus").glob("*.parquet"))
    assert stats["total"]["documents"] == corpus and stats["files"] == len(shards)


def test_corpus_stats_markdown_and_plots(extracted, tmp_path, capsys):
    from pipelines.cli._app import run_cli
    from pipelines.cli.stats import stats_app

    with pytest.raises(SystemExit) as e:
        run_cli(stats_app, "corpus-stats", [str(extracted), "--markdown", "--plot", str(tmp_path / "plots")])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    corpus = n_rows(extracted / "corpus")
    assert "|" in out and f"| {corpus} |" in out.replace(",", "")  # Markdown tables of the corpus only
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_classify_score_routes_code_documents_to_the_code_model(models, shared_data, tmp_path, capsys):
    from classifiers.model import MathClassifier

    web = seed_jsonl(shared_data, "math_text", 0, 10, tmp_path / "web.jsonl", source="web")
    code = seed_jsonl(shared_data, "math_code", 0, 10, tmp_path / "code.jsonl", source="code")
    cli(capsys, "classify", "score", web, code, "-o", tmp_path / "o", "-m", models["text"],
        "-m", f"code={models['code']}", "--keep-all")
    score = json.loads((tmp_path / "o" / "score.json").read_text())
    assert set(score["models"]) == {"default", "code"} and score["documents"] == 20
    rows = read_shards(str(tmp_path / "o" / "kept")).to_pylist()
    for source, model in (("web", models["text"]), ("code", models["code"])):
        mine = [r for r in rows if r["source"] == source]
        expected = MathClassifier(model).score([r["text"] for r in mine])
        assert len(mine) == 10 and [round(r["math_score"], 4) for r in mine] == [round(float(s), 4) for s in expected]


def test_dedup_save_index_then_against_index(shared_data, tmp_path, capsys):
    first = seed_jsonl(shared_data, "math_text", 0, 20, tmp_path / "first.jsonl")
    second = tmp_path / "second.jsonl"
    again = first.read_text().splitlines()[5:15]
    fresh = seed_jsonl(shared_data, "math_text", 400, 410, tmp_path / "fresh.jsonl").read_text().splitlines()
    second.write_text("\n".join(again + fresh) + "\n")
    cli(capsys, "dedup", first, "-o", tmp_path / "a", "--save-index", tmp_path / "index")
    kept_a = set(read_shards(str(tmp_path / "a" / "kept")).column("id").to_pylist())
    cli(capsys, "dedup", second, "-o", tmp_path / "b", "--against-index", tmp_path / "index")
    removed = set(read_shards(str(tmp_path / "b" / "removed")).column("id").to_pylist())
    kept_b = set(read_shards(str(tmp_path / "b" / "kept")).column("id").to_pylist())
    again_ids = {json.loads(x)["id"] for x in again}
    assert again_ids & kept_a <= removed  # documents already in the index are removed, the index copy wins
    assert {json.loads(x)["id"] for x in fresh} <= kept_b and len(removed) + len(kept_b) == 20


def test_mix_manifest_output_and_seed(extracted, tmp_path, capsys):
    mix_yaml = tmp_path / "mix.yaml"
    mix_yaml.write_text(f"output_dir: {tmp_path / 'default'}\ninput_paths: [{extracted}]\nseed: 0\n"
                        "sources:\n  web: {match: {source: web}, weight: 1.0}\n")

    def order(folder: Path) -> list[str]:
        return [i for f in sorted(folder.glob("*.parquet")) for i in pq.read_table(f).column("id").to_pylist()]

    for name, seed in (("s1", 1), ("s1b", 1), ("s2", 2)):
        cli(capsys, "mix", mix_yaml, "-o", tmp_path / name, "--seed", seed)
    m1 = json.loads((tmp_path / "s1" / "manifest.json").read_text())
    m1b = json.loads((tmp_path / "s1b" / "manifest.json").read_text())
    assert m1["documents"] == n_rows(extracted / "corpus") and not (tmp_path / "default").exists()
    assert [s["sha256"] for s in m1["shards"]] == [s["sha256"] for s in m1b["shards"]]  # same seed, same bytes
    assert order(tmp_path / "s1") != order(tmp_path / "s2") and sorted(order(tmp_path / "s1")) == sorted(
        order(tmp_path / "s2"))


def test_extract_epub_book(shared_data, tmp_path, capsys):
    with open(shared_data / "seed" / "math_text.jsonl", encoding="utf-8") as fh:
        chapters = [json.loads(next(fh))["text"][:1500] for _ in range(3)]
    book = tmp_path / "book.epub"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:'
                   'tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                   'media-type="application/oebps-package+xml"/></rootfiles></container>')
        items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(3))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(3))
        z.writestr("OEBPS/content.opf", f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                   f'version="3.0"><manifest>{items}</manifest><spine>{spine}</spine></package>')
        for i, text in enumerate(chapters):
            paras = "".join(f"<p>{p.replace('&', '&amp;').replace('<', '&lt;')}</p>" for p in text.split("\n\n"))
            z.writestr(f"OEBPS/c{i}.xhtml", f'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Chapter {i}</h1>'
                       f"{paras}</body></html>")
    out = cli(capsys, "extract", book, "--source", "book", "-o", tmp_path / "o")
    rows = read_shards(str(tmp_path / "o" / "corpus")).to_pylist()
    assert rows and "0 rejected" in out and all(r["source"] == "book" for r in rows)
    assert all(r["id"].startswith("book/book.epub#") for r in rows)
    text = "\n".join(r["text"] for r in rows)
    for chapter in chapters:  # every chapter's opening words survive, in reading order
        words = " ".join(chapter.split()[:6])
        assert words[:20] in " ".join(text.split()), words
    assert "# Chapter 1" in text and json.loads(rows[0]["metadata"])["path"] == "book.epub"  # headings as Markdown


def test_recall_rounds_on_an_extracted_pool(extracted, shared_data, tmp_path, capsys):
    pool = str(extracted)  # a run folder: its corpus/ shards, not its reports
    out = cli(capsys, "recall", "--pool", pool, "-p", shared_data / "seed" / "math_text.jsonl",
              "-n", shared_data / "seed" / "general_text.jsonl", "-o", tmp_path / "r", "--rounds", "2",
              "--dim", "16", "--epoch", "2", "--bucket", "50000", "--threads", "1")
    report = json.loads((tmp_path / "r" / "recall.json").read_text())
    rounds = report["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and "round 2:" in out
    corpus = n_rows(extracted / "corpus")
    assert all(r["pool_documents"] == corpus and 0 <= r["recalled"] <= corpus for r in rounds)
    assert (tmp_path / "r" / "round_02").is_dir()


def test_extract_reads_a_run_folder_as_its_corpus_records(extracted, tmp_path, capsys):
    """``extract RUN`` (record files): the run's corpus shards, not its stages' kept/removed shards or reports."""
    out = cli(capsys, "extract", extracted, "--source", "web", "-o", tmp_path / "again")
    rows = read_shards(str(tmp_path / "again" / "corpus")).to_pylist()
    before = read_shards(str(extracted / "corpus")).to_pylist()
    assert "0 rejected" in out and sorted(r["id"] for r in rows) == sorted(r["id"] for r in before)

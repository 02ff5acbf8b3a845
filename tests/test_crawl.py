"""Crawl reading: robust WARC records (corrupt, truncated, skipped), charset evidence, and the first pass."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter

import pytest
from fastwarc.warc import ArchiveIterator

from corpus.extract.html import decode_with_evidence, extract_page
from corpus.extract.prefilter import FirstPassSettings, markup_counts, math_rich_domains
from corpus.extract.warc import WarcRecord, iter_archive, read_record_at
from corpus.extract.web import read_warc
from corpus.io import Reject, Skip
from corpus.records import FileContext

FR_PAGE = "web2/math/MatthWilhelm__ProbaStat__loi_normale.html"  # declared utf-8, French accents


def kinds(items) -> Counter:
    return Counter("record" if isinstance(i, WarcRecord) else f"skip_{i.reason}" if isinstance(i, Skip)
                   else "reject" for i in items)


def record_offsets(data: bytes) -> list[int]:
    return [r.stream_pos for r in ArchiveIterator(io.BytesIO(data), parse_http=False)]


# ---- robust reading ----------------------------------------------------------------------------------------


def test_corrupt_gzip_member_in_the_middle_is_a_reject_and_the_rest_is_read(shared_data, tmp_path):
    data = (shared_data / "warc" / "resiliparse__warcfile.warc.gz").read_bytes()
    good = [i for i in iter_archive(str(shared_data / "warc" / "resiliparse__warcfile.warc.gz"))
            if isinstance(i, WarcRecord)]
    offsets = record_offsets(data)
    bad_at = offsets[5]  # a response record (the 3rd) in the middle of the file
    assert bad_at in {r.offset for r in good}
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(data[:bad_at + 40] + b"\x00" * 200 + data[bad_at + 240:])
    items = list(iter_archive(str(path)))
    rejects = [i for i in items if isinstance(i, Reject) and not isinstance(i, Skip)]
    assert len(rejects) == 1 and f"byte offset {bad_at}" in rejects[0].error
    read = [i for i in items if isinstance(i, WarcRecord)]
    assert [r.record_id for r in read] == [r.record_id for r in good if r.offset != bad_at]
    assert max(r.offset for r in read) > bad_at  # records after the corrupt one were read


def test_corrupt_header_in_a_plain_warc_resyncs_on_the_next_record(shared_data, tmp_path):
    raw = gzip.decompress((shared_data / "warc" / "resiliparse__warcfile.warc.gz").read_bytes())
    at = raw.find(b"WARC/1.", 5000)
    path = tmp_path / "bad.warc"
    path.write_bytes(raw[:at] + b"GARBAGE\r\n" + raw[at + 7:])
    items = list(iter_archive(str(path)))
    assert kinds(items)["reject"] == 1
    assert f"byte offset {at}" in next(i.error for i in items if type(i) is Reject)
    assert kinds(items)["record"] >= 15  # 16 HTML responses in the file; at most the corrupt one is lost


def test_truncated_files_are_rejects_with_their_offset(shared_data, tmp_path):
    data = (shared_data / "warc" / "dolma__sample-0000.warc.gz").read_bytes()
    cut_first = tmp_path / "first.warc.gz"
    cut_first.write_bytes(data[:300])  # inside the first gzip member
    items = list(iter_archive(str(cut_first)))
    assert any(type(i) is Reject and "byte offset 0" in i.error and "cut short" in i.error for i in items)
    offsets = record_offsets(data)
    cut_inside = tmp_path / "inside.warc.gz"
    cut_inside.write_bytes(data[:offsets[12] + 3000])  # inside a response record
    items = list(iter_archive(str(cut_inside)))
    rejects = [i for i in items if type(i) is Reject]
    assert len(rejects) == 1 and "truncated" in rejects[0].error and str(offsets[12]) in rejects[0].error
    assert all(r.offset < offsets[12] for r in items if isinstance(r, WarcRecord))  # no fragment kept
    clipped = list(read_warc(str(shared_data / "warc" / "resiliparse__clipped.warc.gz"), FileContext("w", "web", "c")))
    assert len(clipped) == 1 and isinstance(clipped[0], Reject) and "truncated" in clipped[0].error


def test_skips_are_counted_by_reason(shared_data):
    counts = kinds(iter_archive(str(shared_data / "warc" / "pywb__iana.warc.gz")))
    # manifest.jsonl: 48 responses (20 HTML), 171 requests, 123 revisits, 1 warcinfo
    assert counts["skip_revisit"] == 123 and counts["skip_request"] == 171 and counts["skip_warcinfo"] == 1
    assert counts["skip_not_html"] + counts["skip_non_2xx"] + counts["record"] == 48
    assert counts["record"] + counts["skip_non_2xx"] == 20 and counts["reject"] == 0


def test_provenance_fetches_the_same_record_by_byte_range(shared_data):
    path = str(shared_data / "warc" / "dolma__sample-0000.warc.gz")
    recs = [i for i in iter_archive(path) if isinstance(i, WarcRecord)]
    assert len(recs) == 22
    rec = recs[7]
    assert rec.length > 0 and rec.record_id.startswith("urn:uuid:") and rec.url.startswith("http")
    data = (shared_data / "warc" / "dolma__sample-0000.warc.gz").read_bytes()
    again = next(ArchiveIterator(io.BytesIO(data[rec.offset:rec.offset + rec.length]), parse_http=False))
    assert again.headers["WARC-Record-ID"].strip("<>") == rec.record_id
    again = read_record_at(path, rec.offset, rec.length)
    assert again.payload == rec.payload and again.offset == rec.offset and again.length == rec.length


# ---- charset evidence --------------------------------------------------------------------------------------


def test_utf8_page_with_one_latin1_byte_is_not_mojibake(shared_data):
    raw = (shared_data / FR_PAGE).read_bytes()
    first = raw.index("théorème".encode())
    broken = raw[:first] + "é".encode("latin-1") + raw[first + 2:]  # one stray latin-1 byte in a UTF-8 page
    text, decision = decode_with_evidence(broken)
    assert decision["charset"] == "utf-8" and decision["invalid_bytes"] == 1 and decision["reason"]
    assert "Probabilités" in text and "hypothèses" in text and not any("\u0400" <= c <= "\u04ff" for c in text)
    page = extract_page(broken, timeout=None)
    assert page.metadata()["charset"]["declared"] == "utf-8"


def test_declared_latin1_on_utf8_bytes_is_read_as_utf8(shared_data):
    raw = (shared_data / FR_PAGE).read_bytes().replace(b'<meta charset="utf-8" />', b'<meta charset="iso-8859-1" />')
    text, decision = decode_with_evidence(raw)
    assert decision == {"charset": "utf-8", "declared": "cp1252",
                        "reason": "declared single-byte charset, bytes are valid UTF-8"}
    assert "théorème" in text and "thÃ©orÃ¨me" not in text
    latin = (shared_data / FR_PAGE).read_bytes().decode("utf-8").encode("cp1252", "replace")
    text, decision = decode_with_evidence(latin, header_charset="iso-8859-1")  # truly latin-1: kept as declared
    assert decision == {"charset": "cp1252"} and "théorème" in text


# ---- the first pass ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_first_pass(repo, tmp_path_factory):
    """A small first-pass model trained on the demo's seed text (real fastText training)."""
    from classifiers.firstpass import FirstPass
    from classifiers.model import TrainParams, train_from_files

    out = str(tmp_path_factory.mktemp("fp") / "model")
    train_from_files(out, [str(repo / "corpus/demo/seed/math.jsonl")], [str(repo / "corpus/demo/seed/general.jsonl")],
                     TrainParams(dim=16, epoch=25, lr=0.3, min_count=1, bucket=20_000, threads=1))
    return FirstPass(out, FirstPassSettings(threshold=0.5))


def test_first_pass_on_real_warc_records(shared_data, seed_first_pass):
    ctx = FileContext("crawl", "web", "x.warc.gz", {"_firstpass": seed_first_pass, "timeout": 0})
    math_rows = list(read_warc(str(shared_data / "warc" / "dolma__science-0.warc.gz"), ctx))
    math_page = next(r for r in math_rows if not isinstance(r, Reject) and r["url"].endswith("math.html"))
    assert "_removed" not in math_page and "$E = mc^2$" in math_page["text"]
    assert math_page["firstpass"]["candidate"] and math_page["firstpass"]["markup"]["tex_delims"] >= 2
    pop = next(r for r in math_rows if not isinstance(r, Reject) and r["url"].endswith("taylor.html"))
    assert pop["_removed"] == "firstpass" and pop["text"] == ""
    sig = pop["firstpass"]  # no hint of math in its bytes: not even parsed
    assert not sig["candidate"] and sig["reason"] == "no_math_cue" and not sig["cue"] and sig["score"] == 0
    rows = [r for r in read_warc(str(shared_data / "warc" / "dolma__sample-0000.warc.gz"), ctx)
            if not isinstance(r, Reject)]
    assert len(rows) == 22 and sum(r.get("_removed") == "firstpass" for r in rows) >= 20  # homepages, no math
    scored = [r["firstpass"] for r in rows if r["firstpass"]["reason"] == "below_threshold"]
    assert scored and all(s["cue"] and 0 < s["score"] < 0.5 and s["lang"] == "en" and s["text_chars"] for s in scored)
    assert {r["firstpass"]["reason"] for r in rows} >= {"below_threshold", "no_math_cue"}
    for r in rows:  # provenance on every document, candidate or not
        assert r["warc_file"] == "x.warc.gz" and r["warc_offset"] > 0 and r["warc_length"] > 0
        assert r["warc_record_id"] == r["id"] and r["url"] and r["crawl_date"].startswith("2024")


def test_markup_counts_and_math_rich_domains():
    low = b'<p>\\(a\\) and \\[b\\]</p><math><mi>x</mi></math><span class="katex">y</span>'
    assert markup_counts(low) == {"tex_delims": 2, "mathml": 1, "katex": 1}
    pool = ([{"domain": "m.org", "candidate": True}] * 3 + [{"domain": "m.org", "candidate": False}] * 2
            + [{"domain": "g.com", "candidate": True}] + [{"domain": "g.com", "candidate": False}] * 9)
    assert math_rich_domains(pool) == {"m.org": {"pages": 5, "candidates": 3, "share": 0.6}}
    assert math_rich_domains(pool, known=["m.org"]) == {}


def test_tex_delimiters_in_code_count_only_with_a_math_engine(shared_data):
    from corpus.extract.prefilter import ENGINES, IN_CODE, MARKUP, literal_counts, math_cue

    # Reuters: hundreds of TeX delimiters in its scripts, no math engine -> no formula markup at all
    low = (shared_data / "web" / "general" / "trafilatura__reuters.com.parasite.html").read_bytes().lower()
    hits = literal_counts(low)
    delims = MARKUP["tex_delims"]
    assert sum(hits.get(d, 0) for d in delims) > 100 and not any(e in hits for e in ENGINES)
    assert all(hits.get(IN_CODE + d, 0) == hits.get(d, 0) for d in delims)
    assert "tex_delims" not in markup_counts(low, hits)
    # ScienceForums: the delimiters are in its MathJax config (a math engine): they count, as in the body
    low = (shared_data / "web" / "math" / "magichtml__forum__44996889451f80a9.html").read_bytes().lower()
    hits = literal_counts(low)
    assert hits.get(IN_CODE + b"\\[", 0) > 0 and markup_counts(low, hits)["tex_delims"] == sum(
        low.count(d) for d in (b"\\(", b"\\[", b"$$", b"\\begin{"))
    # cue words only inside a script are no math cue; in prose (or a math engine anywhere) they are
    assert not math_cue(literal_counts(b"<script>var equation = Math.max(1, 2)</script><p>news</p>"), 0)
    assert math_cue(literal_counts(b"<script>var x = Math.max(1, 2)</script><p>a quadratic equation</p>"), 0)


def test_a_page_needs_two_kinds_of_math_hint_to_be_parsed(shared_data):
    from corpus.extract.prefilter import cue_count, first_pass_signals, literal_counts, math_cue

    one = literal_counts(b"<p>a quadratic equation</p>")
    two = literal_counts(b"<p>solve the equation with the quadratic formula</p>")
    assert cue_count(one, 0) == 1 and not math_cue(one, 0, 2) and math_cue(two, 0, 2)
    # a real programming blog page (general) whose only hint is one math word: not parsed, never scored
    raw = (shared_data / "web2" / "general" / "Hpasserby__Hpasserby.github.io__ef2727d8.html").read_bytes()
    sig, text = first_pass_signals(raw, lambda: decode_with_evidence(raw)[0], lambda t: 1.0)
    assert sig.cues == 1 and not sig.cue and sig.score == 0 and text == ""
    sig, text = first_pass_signals(raw, lambda: decode_with_evidence(raw)[0], lambda t: 1.0, min_cues=1)
    assert sig.cue and sig.score == 1.0 and text


def test_page_scored_at_the_threshold_is_a_candidate(shared_data):
    import math

    from corpus.extract.prefilter import decide, first_pass_signals

    # a threshold is the floor (6 decimals) of the score of the math page it was chosen to keep
    raw = (shared_data / "web" / "math" / "llmwebkit__math_physicsforums.html").read_bytes()
    score = 0.5838319
    sig, _ = first_pass_signals(raw, lambda: decode_with_evidence(raw)[0], lambda text: score)
    assert sig.cue and sig.formulas < 3
    assert decide(sig, None, math.floor(score * 1e6) / 1e6, FirstPassSettings()).reason == "score"


def test_cli_extract_with_prefilter(shared_data, seed_first_pass, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.steps.io import read_shards

    warcs = [str(shared_data / "warc" / f) for f in ("dolma__science-0.warc.gz", "dolma__sample-0001.warc.gz",
                                                      "pywb__dupes.warc.gz")]
    res = CliRunner().invoke(app, ["extract", *warcs, "--source", "web", "--prefilter", seed_first_pass.model_dir,
                                   "--output", str(tmp_path / "out"), "--executor", "local"])
    assert res.exit_code == 0, res.output
    kept = read_shards(str(tmp_path / "out" / "corpus")).to_pylist()
    removed = read_shards(str(tmp_path / "out" / "stages" / "00_extract" / "removed")).to_pylist()
    assert any(r["url"].endswith("math.html") for r in kept)
    assert len(kept) + len(removed) == 2 + 15 + 1 and {r["reason"] for r in removed} == {"firstpass"}
    meta = json.loads(removed[0]["metadata"])
    assert {"warc_file", "warc_offset", "warc_length", "warc_record_id", "crawl_date", "firstpass"} <= set(meta)
    stats = json.loads((tmp_path / "out/stages/00_extract/logs/extract/stats.json").read_text())
    counters = {k: v.get("total", v) if isinstance(v, dict) else v for s in stats for k, v in s["stats"].items()}
    assert counters.get("skipped_revisit") == 9 and counters.get("removed_firstpass") == len(removed)


def write_warc(path, pages) -> None:
    """A gzip WARC of HTTP 200 responses: ``pages`` is ``[(url, html bytes)]``."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for url, html in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=http))


def test_recall_round_expands_a_math_rich_domain_by_byte_range(shared_data, seed_first_pass, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.steps.io import read_shards

    rows = [json.loads(x) for x in (shared_data / "web2" / "pages.jsonl").read_text().splitlines()]
    site = [r for r in rows if r["site"] == "blog.phantom0174.online"]  # 8 math + 4 general pages, one blog
    other = [r for r in rows if r["site"] == "adanieljohnson/SWP_student_writing_guide"]  # 4 general, one site
    pages = [(f"https://{r['site']}/{r['file']}", (shared_data / "web2" / r["file"]).read_bytes())
             for r in site + other]
    write_warc(tmp_path / "crawl.warc.gz", pages)
    res = CliRunner().invoke(app, ["extract", str(tmp_path / "crawl.warc.gz"), "--source", "web", "--prefilter",
                                   seed_first_pass.model_dir, "--output", str(tmp_path / "out"), "--executor",
                                   "local", "--rounds", "2"])
    assert res.exit_code == 0, res.output
    removed = read_shards(str(tmp_path / "out/stages/00_extract/removed")).to_pylist()
    kept = read_shards(str(tmp_path / "out/corpus")).to_pylist()
    assert len(kept) + len(removed) == 16
    turned_away_here = [r for r in removed if r["domain"] == "blog.phantom0174.online"]
    assert turned_away_here and len(kept) >= 6
    summary = json.loads((tmp_path / "out/recall/recall.json").read_text())
    first, second = summary["rounds"]
    assert set(first["domains"]) == {"blog.phantom0174.online"}  # the other blog is not math-rich
    assert first["fetched"] == len(turned_away_here) and second["fetched"] == 0
    meta = [json.loads(r["metadata"]) for r in removed if r["domain"] == "blog.phantom0174.online"]
    assert first["bytes_read"] == sum(m["warc_length"] for m in meta)  # only those records' bytes were read
    recalled = read_shards(str(tmp_path / "out/recall/round_01")).to_pylist()
    assert sorted(r["id"] for r in recalled) == sorted(r["id"] for r in turned_away_here)
    assert all(r["text"] and json.loads(r["metadata"])["firstpass"]["reason"] == "domain" for r in recalled)


def test_first_pass_model_threshold_on_validation_sites_report_on_test_sites(shared_data, tmp_path):
    from classifiers.firstpass import load_pages, site_part, train_first_pass

    roots = [str(shared_data / "web"), str(shared_data / "web2")]
    parts = {}
    for p in load_pages(roots):
        parts.setdefault(site_part(p.site), set()).add(p.site)
    assert not (parts["train"] & parts["valid"] or parts["train"] & parts["test"] or parts["valid"] & parts["test"])
    card = train_first_pass(str(tmp_path / "fp"), roots)
    fp = card["first_pass"]
    assert fp["split_kind"] == "hash" and set(fp["site_parts"].values()) == {"train", "valid", "test"}
    assert card["validation_rule"]["recall"] >= 0.995 and card["train_rule"]["recall"] >= 0.995
    assert "validation sites" in card["threshold_rule"]
    assert fp["pages"]["test"]["math"] >= 5 and fp["sites"]["test"] >= 10
    assert fp["test_rule"]["recall"] >= 0.9 and fp["test_rule"]["precision"] >= 0.5  # sites that chose nothing
    assert (tmp_path / "fp" / "model.bin").stat().st_size < 20_000_000


def test_first_pass_on_an_explicit_site_split_keeps_each_site_on_one_side(shared_data, tmp_path):
    from classifiers.firstpass import load_pages, split_parts, train_first_pass
    from classifiers.pages import registered_site
    from corpus.io import InputError

    parts = {"phantom0174.online": "train", "zobinhuang.github.io": "train", "hrbrmstr/21-recipes": "train",
             "abertay-university-sdi.github.io": "train", "billhu.us": "validation", "aitozi.com": "validation",
             "liu-jincan.github.io": "test", "scipy-lectures.org": "test"}
    rows = [json.loads(line) for line in (shared_data / "web2" / "pages.jsonl").read_text().splitlines()]
    rows = [r | {"file": str(shared_data / "web2" / r["file"])} for r in rows if registered_site(r["site"]) in parts]
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "pages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    roots = [str(tmp_path / "pages")]
    pages = load_pages(roots, registered=True)
    assert len(pages) == len(rows) >= 50 and {p.registered for p in pages} == set(parts)
    by_part, _ = split_parts(pages, parts)
    sides = {k: {p.registered for p in v} for k, v in by_part.items()}
    assert not (sides["train"] & sides["valid"] or sides["train"] & sides["test"] or sides["valid"] & sides["test"])
    abertay = {p.site for p in pages if p.registered == "abertay-university-sdi.github.io"}
    assert len(abertay) == 2  # two repositories of one blog host: one site, one side
    assert all(p in by_part["train"] for p in pages if p.site in abertay)

    card = train_first_pass(str(tmp_path / "fp"), roots, split=parts, split_name="by hand")
    fp = card["first_pass"]
    assert fp["split_kind"] == "by hand" and "by hand" in fp["split"]
    assert fp["site_parts"] == {s: "valid" if v == "validation" else v for s, v in parts.items()}
    assert fp["sites"] == {"train": 4, "valid": 2, "test": 2}
    assert fp["pages"] == {k: {"math": sum(p.label == "math" for p in v), "other": sum(p.label == "other" for p in v)}
                           for k, v in by_part.items()}
    test_paths = {p.path for p in by_part["test"]}
    assert set(fp["test_misses"]) | set(fp["test_general_passed"]) <= test_paths
    assert card["validation_rule"]["recall"] >= 0.995
    with pytest.raises(InputError, match="aitozi.com"):
        train_first_pass(str(tmp_path / "fp2"), roots, split={k: v for k, v in parts.items() if k != "aitozi.com"})

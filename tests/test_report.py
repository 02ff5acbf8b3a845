"""``RUN_DIR/report.html`` and ``corpus-stats --html``: built from a real demo run, checked against the run's own
files read with pyarrow (not our code), and rendered in headless Chromium (the DevTools protocol): every section
present, every plot drawn, no console error, no network request.

Chromium is a system package (``apt-get install -y chromium``; ``make test`` installs it where apt is available);
without it the browser test is skipped with that reason. ``MATHCORPUS_REPORT_SCREENSHOT=docs/report.png`` keeps
the screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.manifest import load_manifest
from pipelines.report import SECTIONS
from pipelines.runner import run_manifest

DEMO = Path(__file__).resolve().parents[1] / "manifests" / "demo.yaml"
BIN = Path(sys.executable).parent
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "demo"
    run_manifest(load_manifest(DEMO), executor="local", output=str(out), progress=lambda s: None, live=False)
    return out


class _Page(HTMLParser):
    """Section ids, figures per section, every src/href, and the text of each section."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures: dict[str, int] = {}
        self.refs: list[tuple[str, str]] = []
        self.text: dict[str, list[str]] = {}
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(a["id"])
            self.text[a["id"]] = []
        if tag == "figure" and self.sections:
            self.figures[self.sections[-1]] = self.figures.get(self.sections[-1], 0) + 1
        for key in ("src", "href"):
            if key in a:
                self.refs.append((tag, a[key]))

    def handle_data(self, data):
        if self.sections:
            self.text[self.sections[-1]].append(data)


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    return p


def _rows(folder: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet"))


def test_report_has_every_section_with_the_runs_numbers(demo_run):
    report = demo_run / "report.html"
    page = parse(report)
    assert page.sections == [s for s, _ in SECTIONS]
    # self-contained: no script, stylesheet link or frame; every src is inline data, every href a local file
    assert not {"script", "link", "iframe"} & page.tags
    for tag, ref in page.refs:
        assert ref.startswith(("data:image/", "#")) or (tag == "a" and (demo_run / ref).is_file()), (tag, ref[:80])
    run = json.loads((demo_run / "run.json").read_text())
    text = {k: "".join(v) for k, v in page.text.items()}
    corpus_docs = _rows(demo_run / "corpus")
    assert f"{corpus_docs:,} documents" in text["corpus"]
    # every removal reason of every stage has sampled documents, each one really in that stage's removed shards
    for s in run["stages"]:
        removed = Path(s["dir"]) / "removed"
        if not removed.is_dir():
            continue
        by_reason: dict[str, list[str]] = {}
        for f in sorted(removed.glob("*.parquet")):
            for row in pq.read_table(f, columns=["id", "reason"]).to_pylist():
                by_reason.setdefault(row["reason"], []).append(row["id"])
        for reason, ids in by_reason.items():
            assert f"{s['stage']} · {reason}" in text["removed"], reason
            shown = sum(f"{i}" in text["removed"] for i in ids)
            assert shown == min(3, len(ids)), (s["stage"], reason, shown, len(ids))
    # per-stage time and cost come from run.json, which has them for every stage
    for s in run["stages"]:
        assert s["cpu_seconds"] > 0 and s["peak_rss_mb"] > 0 and s["tasks"] >= 1
        assert s["stage"] in text["stages"]
    # the mix manifest: requested and realized shares as the manifest says
    manifest = json.loads((demo_run / "corpus/manifest.json").read_text())
    for name, src in manifest["sources"].items():
        assert f"{src['requested_share']:.3f}" in text["mix"] and f"{src['realized_share']:.3f}" in text["mix"], name
    assert "stages/06_decontam/report.html" in text["decontam"]
    # rejects: the demo's empty page and skipped vendored files, with their reasons
    assert "empty.html" in text["rejects"] and "skipped_vendored" in text["rejects"]
    assert page.figures["corpus"] >= 5 and page.figures["funnel"] == 1 and page.figures["mix"] == 1


def test_corpus_stats_html_writes_the_corpus_part(demo_run, tmp_path):
    out = tmp_path / "corpus.html"
    res = subprocess.run([str(BIN / "corpus-stats"), str(demo_run / "corpus"), "--html", str(out), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)  # --json still prints JSON only on stdout
    assert f"html: {out}" in res.stderr
    page = parse(out)
    assert page.sections == ["corpus"] and page.figures["corpus"] >= 5
    text = "".join(page.text["corpus"])
    assert f"{_rows(demo_run / 'corpus'):,} documents" in text
    assert f"{stats['total']['tokens']:,} tokens" in text


# --- the browser ------------------------------------------------------------------------------------------------

PROBE = "mathcorpus-console-probe"
CHECK_JS = """(() => {
  const secs = [...document.querySelectorAll('section')];
  const figs = [...document.querySelectorAll('figure.plot')].map(f => {
    const svg = f.querySelector('svg'), img = f.querySelector('img'), sec = f.closest('section').id;
    if (svg) { const b = svg.getBoundingClientRect();
      return {sec, kind: 'svg', w: b.width, h: b.height, marks: svg.querySelectorAll('path,rect,use').length}; }
    if (img) return {sec, kind: 'img', w: img.naturalWidth, h: img.naturalHeight, marks: img.complete ? 1 : 0};
    return {sec, kind: 'none', w: 0, h: 0, marks: 0};
  });
  return JSON.stringify({
    sections: secs.map(s => [s.id, s.getBoundingClientRect().height]),
    figs, resources: performance.getEntriesByType('resource').map(r => r.name),
    height: document.documentElement.scrollHeight});
})()"""


class DevTools:
    """A headless Chromium and one page, driven over the DevTools protocol (aiohttp's websocket client)."""

    def __init__(self, ws) -> None:
        self.ws, self.next_id, self.events = ws, 0, []

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), timeout=60)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    async def until(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(await asyncio.wait_for(self.ws.receive_json(), timeout=60))

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(p["entry"].get("text", ""))
        return out


async def render(url: str, screenshot: Path) -> tuple[dict, list[str]]:
    import aiohttp

    profile = Path(tempfile.mkdtemp(prefix="mc-chromium-"))
    proc = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             "--window-size=1200,1000", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.time() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.time() < deadline, "chromium did not start"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                target = next(t for t in await r.json() if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                dt = DevTools(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await dt.call(f"{domain}.enable")
                await dt.call("Page.navigate", url=url)
                await dt.until("Page.loadEventFired")
                result = json.loads((await dt.call("Runtime.evaluate", expression=CHECK_JS,
                                                   returnByValue=True))["result"]["value"])
                await dt.call("Runtime.evaluate", expression=f"console.error('{PROBE}')")
                height = min(result["height"], 2400)
                shot = await dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                     clip={"x": 0, "y": 0, "width": 1200, "height": height, "scale": 1})
                import base64

                screenshot.write_bytes(base64.b64decode(shot["data"]))
                return result, dt.errors()
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; make test does it)")
def test_report_renders_in_chromium(demo_run, tmp_path):
    shot = tmp_path / "report.png"
    result, errors = asyncio.run(render((demo_run / "report.html").as_uri(), shot))
    sections = dict(result["sections"])
    assert list(sections) == [s for s, _ in SECTIONS]
    assert all(h > 40 for h in sections.values()), sections  # every section laid out with content
    assert result["figs"], "no plots"
    for f in result["figs"]:
        assert f["kind"] != "none" and f["w"] > 100 and f["h"] > 50 and f["marks"] > 0, f
    assert {f["sec"] for f in result["figs"]} >= {"funnel", "stages", "corpus", "mix"}
    assert result["resources"] == []  # nothing fetched: images are inline data, no scripts, no stylesheets
    assert PROBE in " ".join(errors), "the console check saw nothing: it would miss real errors too"
    assert [e for e in errors if PROBE not in e] == []
    assert shot.stat().st_size > 50_000
    if keep := os.environ.get("MATHCORPUS_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, keep)


def test_a_large_corpus_is_described_from_evenly_spread_shards(demo_run):
    """The run report caps what it reads (REPORT_MAX_ROWS); the page says so and the numbers are those shards'."""
    from pipelines.report import corpus_section, even_shards

    shards = sorted(str(p) for p in (demo_run / "corpus").glob("*.parquet"))
    assert len(shards) >= 2
    first = pq.ParquetFile(shards[0]).metadata.num_rows
    picked, total = even_shards(shards, first)
    assert total == _rows(demo_run / "corpus") and len(picked) < len(shards)
    html = corpus_section(str(demo_run / "corpus"), max_rows=first)
    p = _Page()
    p.feed(html)
    text = "".join(p.text["corpus"])
    assert f"Statistics from {len(picked)} of {len(shards)} shards" in text
    assert f"{sum(pq.ParquetFile(f).metadata.num_rows for f in picked):,} documents" in text
    assert even_shards(shards, total) == (shards, total)  # under the cap: every shard

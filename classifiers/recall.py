"""Iterative recall rounds with domain expansion (DeepSeekMath / Qwen2.5-Math).

Each round: train a classifier on the seed data plus what earlier rounds found, score the whole pool, and
then look at the recalled pages (score >= threshold) per domain. A domain whose recalled share exceeds
``domain_threshold`` (10 %) is a math domain (with at least ``min_domain_recalled`` recalled pages, and judged by
the Wilson lower bound of the share at ``domain_z`` = 1: one false positive among a small site's 4 posts is not a
math site); inside it, the URL path prefixes (``host/seg1/``, depth
``prefix_depth``) that hold recalled pages are math paths, and the pages under them that were *not* recalled
become candidate positives for the next round. Pages of non-math domains that score very low are sampled as
extra negatives, so the model learns the pool's own general text and does not drift.

Layout (every round is kept; a rerun skips rounds whose ``report.json`` exists)::

    {out}/round_01/model/model.bin, model.json   the round's classifier and its card
    {out}/round_01/scores/NNNNN.parquet           the pool scored by the round's model (one file per task)
    {out}/round_01/scores.parquet                 id, url, domain, math_score of every pool document
    {out}/round_01/candidates.jsonl               new positives found in this round (id, url, domain, text)
    {out}/round_01/negatives.jsonl                pool negatives sampled in this round
    {out}/round_01/report.json                    written last: the round is complete
    {out}/recall.json                             summary of all rounds
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from classifiers.data import MATH, OTHER, Example
from classifiers.model import MathClassifier, TrainParams, train_from_files
from classifiers.score import batched
from corpus.errors import MathcorpusError
from corpus.io import (
    InputError,
    Reject,
    expand_paths,
    iter_records,
    resolve_document_inputs,
    write_json,
    write_jsonl,
    write_parquet,
)


@dataclass
class RecallConfig:
    rounds: int = 4
    domain_threshold: float = 0.10  # recalled share above which a domain is a math domain
    min_domain_docs: int = 1  # domains with fewer pool documents are never math domains
    min_domain_recalled: int = 2  # ... and domains with fewer recalled documents
    domain_z: float = 1.0  # the share is judged by its Wilson lower bound at this z (0: the plain share)
    prefix_depth: int = 1  # URL path segments that make a prefix (0 = the whole domain)
    min_prefix_recalled: int = 1  # recalled pages a prefix needs to count as a math path
    candidate_min_score: float = 0.0  # candidates must score at least this (guards against junk pages)
    max_candidates: int | None = None  # per round, highest scores first
    negative_ratio: float = 1.0  # pool negatives sampled per candidate
    negative_max_score: float = 0.1  # pool negatives must score below this
    threshold: float | None = None  # recall threshold; default: each round's model card threshold
    batch_size: int = 1024
    params: TrainParams = field(default_factory=TrainParams)


def domain_of(url: str | None, domain: str | None = None) -> str:
    """The registered host of a page: the ``domain`` column when set, else the URL's host without ``www.``."""
    if domain:
        return domain.lower()
    host = (urlsplit(url or "").hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def path_prefix(url: str | None, host: str, depth: int) -> str:
    """``host/seg1/.../`` with up to ``depth`` directory segments of the URL path (the file name excluded)."""
    parts = [p for p in urlsplit(url or "").path.split("/")]
    dirs = [p for p in parts[1:-1] if p][:depth]
    return "/".join([host, *dirs]) + "/"


@dataclass
class PoolScores:
    ids: list[str]
    urls: list[str | None]
    domains: list[str]
    scores: np.ndarray


def iter_pool(paths: Sequence[str]) -> Iterator[dict[str, Any]]:
    for path in resolve_document_inputs(paths):  # a run folder: its corpus/; never reports
        for pos, rec in iter_records(path):
            if isinstance(rec, Reject):
                raise InputError(str(rec))
            if not isinstance(rec.get("text"), str):
                raise InputError(f"{path}:{pos}: record has no string 'text' field")
            rec.setdefault("id", f"{os.path.basename(path)}:{pos}")
            yield rec


def score_records(clf: MathClassifier, records: Iterable[dict[str, Any]], batch_size: int = 1024) -> PoolScores:
    """Scores of pool records (``id``, ``text``, ``url`` and/or ``domain``), ``batch_size`` texts at a time."""
    ids, urls, domains, scores = [], [], [], []
    for batch in batched(records, batch_size):
        scores.append(clf.score([r["text"] for r in batch]))
        for r in batch:
            ids.append(str(r["id"]))
            urls.append(r.get("url"))
            domains.append(domain_of(r.get("url"), r.get("domain")))
    return PoolScores(ids, urls, domains, np.concatenate(scores) if scores else np.zeros(0, np.float32))


def score_pool(clf: MathClassifier, pool: Sequence[str], batch_size: int = 1024) -> PoolScores:
    return score_records(clf, iter_pool(pool), batch_size)


def wilson_lower(hits: int, n: int, z: float = 1.0) -> float:
    """Lower bound of the Wilson score interval of the share ``hits / n`` (``z`` 0: the share itself)."""
    if n <= 0:
        return 0.0
    p, z2 = hits / n, z * z
    centre, half = p + z2 / (2 * n), z * float(np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)))
    return max(0.0, (centre - half) / (1 + z2 / n))


def expand_domains(ps: PoolScores, threshold: float, cfg: RecallConfig) -> dict[str, Any]:
    """Math domains, math path prefixes, candidate positives and pool negatives for one scored pool."""
    recalled = ps.scores >= threshold
    total, hits = Counter(ps.domains), Counter(d for d, r in zip(ps.domains, recalled, strict=True) if r)
    shares = {d: hits[d] / n for d, n in total.items() if d}
    math_domains = {d for d in shares if total[d] >= cfg.min_domain_docs and hits[d] >= cfg.min_domain_recalled
                    and wilson_lower(hits[d], total[d], cfg.domain_z) > cfg.domain_threshold}
    prefix_hits: Counter[str] = Counter()
    prefix_of: list[str | None] = []
    for url, dom, r in zip(ps.urls, ps.domains, recalled, strict=True):
        p = path_prefix(url, dom, cfg.prefix_depth) if dom in math_domains else None
        prefix_of.append(p)
        if p and r:
            prefix_hits[p] += 1
    prefixes = {p for p, n in prefix_hits.items() if n >= cfg.min_prefix_recalled}
    cand = [i for i, p in enumerate(prefix_of)
            if p in prefixes and not recalled[i] and ps.scores[i] >= cfg.candidate_min_score]
    cand.sort(key=lambda i: (-float(ps.scores[i]), ps.ids[i]))
    if cfg.max_candidates is not None:
        cand = cand[: cfg.max_candidates]
    neg_pool = [i for i, d in enumerate(ps.domains) if d not in math_domains and ps.scores[i] < cfg.negative_max_score]
    n_neg = int(round(len(cand) * cfg.negative_ratio))
    neg_pool.sort(key=lambda i: hashlib.blake2b(ps.ids[i].encode(), digest_size=8).digest())
    return {
        "recalled": int(recalled.sum()),
        "shares": shares,
        "totals": total,
        "math_domains": math_domains,
        "prefixes": prefixes,
        "candidates": cand,
        "negatives": neg_pool[:n_neg],
    }


def _texts_for(pool: Sequence[str], wanted: set[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for rec in iter_pool(pool):
        if str(rec["id"]) in wanted:
            out[str(rec["id"])] = {"id": str(rec["id"]), "url": rec.get("url"), "text": rec["text"]}
    return out


def _read_examples(path: Path, label: str) -> list[Example]:
    if not path.exists():
        return []
    return [Example(r["text"], label, r["id"]) for r in (json.loads(line) for line in path.open(encoding="utf-8"))]


class RecallError(MathcorpusError):
    """A recall round that cannot go on."""


@dataclass(frozen=True)
class ScoreRequest:
    """What :func:`iter_rounds` needs before it can go on: the pool scored by ``model`` (at ``threshold``),
    written as Parquet files with columns ``id, url, domain, math_score`` under ``scores_dir``."""

    round: int
    model: str
    threshold: float
    scores_dir: str


POOL_SCORES_SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("domain", pa.string()),
                                ("math_score", pa.float32())])


def pool_scores_table(ps: PoolScores) -> pa.Table:
    return pa.table({"id": ps.ids, "url": ps.urls, "domain": ps.domains, "math_score": ps.scores},
                    schema=POOL_SCORES_SCHEMA)


def read_pool_scores(scores_dir: str, round_no: int) -> PoolScores:
    """The scores written for a :class:`ScoreRequest` (files in name order, i.e. rank order)."""
    import pyarrow.parquet as pq

    files = sorted(Path(scores_dir).glob("*.parquet")) if Path(scores_dir).is_dir() else []
    if not files:
        raise RecallError(f"round {round_no}: no pool scores under {scores_dir} (the scoring phase of the round "
                          "must run before the round goes on)")
    t = pa.concat_tables([pq.read_table(f, columns=POOL_SCORES_SCHEMA.names).cast(POOL_SCORES_SCHEMA)
                          for f in files])
    return PoolScores(t.column("id").to_pylist(), t.column("url").to_pylist(), t.column("domain").to_pylist(),
                      t.column("math_score").to_numpy(zero_copy_only=False).astype(np.float32))


def iter_rounds(
    output_dir: str,
    pool: Sequence[str],
    positives: Sequence[str],
    negatives: Sequence[str],
    cfg: RecallConfig | None = None,
    *,
    initial_model: str | None = None,
    progress=lambda msg: None,
) -> Generator[ScoreRequest, None, dict[str, Any]]:
    """Run (or resume) ``cfg.rounds`` recall rounds, leaving the pool scoring to the caller: each round trains
    its model here, yields a :class:`ScoreRequest`, and once resumed reads the scores from its ``scores_dir``
    and does the domain statistics, candidates and report. Returns the summary written to ``recall.json``.

    :func:`run_rounds` scores in this process; the ``recall`` stage runs each request as an executor phase.
    """
    cfg = cfg or RecallConfig()
    out = Path(output_dir)
    key = round_settings(cfg, pool, positives, negatives, initial_model)  # before any work: bad paths fail here
    extra_pos: dict[str, Example] = {}
    extra_neg: dict[str, Example] = {}
    seen_domains: set[str] = set()
    prev_recalled: int | None = None
    reports = []
    for n in range(1, cfg.rounds + 1):
        rdir = out / f"round_{n:02d}"
        report_path = rdir / "report.json"
        key = _chain(key, n)
        if report_path.exists() and json.loads(report_path.read_text(encoding="utf-8")).get("settings_key") != key:
            progress(f"round {n}: settings, seeds or inputs changed: recomputing")
            shutil.rmtree(rdir)
        if report_path.exists():  # finished round with the same settings: reload its state, skip the work
            report = json.loads(report_path.read_text(encoding="utf-8"))
            progress(f"round {n}: done already ({report['recalled']} recalled)")
        else:
            t0 = time.time()
            if n == 1 and initial_model:
                model_path, card = initial_model, MathClassifier(initial_model).card
            else:
                model_path = str(rdir / "model")
                progress(f"round {n}: training on seeds + {len(extra_pos)} recalled positives, "
                         f"{len(extra_neg)} pool negatives")
                card = train_from_files(model_path, positives, negatives, cfg.params,
                                        extra=[*extra_pos.values(), *extra_neg.values()], reuse=True)
            clf = MathClassifier(model_path, threshold=cfg.threshold)
            progress(f"round {n}: scoring the pool (threshold {clf.threshold:.3f})")
            yield ScoreRequest(n, model_path, clf.threshold, str(rdir / "scores"))
            ps = read_pool_scores(str(rdir / "scores"), n)
            exp = expand_domains(ps, clf.threshold, cfg)
            write_parquet(pool_scores_table(ps), str(rdir / "scores.parquet"))
            wanted = {ps.ids[i] for i in exp["candidates"]} | {ps.ids[i] for i in exp["negatives"]}
            texts = _texts_for(pool, wanted) if wanted else {}
            write_jsonl((json.dumps({**texts[ps.ids[i]], "domain": ps.domains[i], "math_score": float(ps.scores[i])},
                                    ensure_ascii=False) for i in exp["candidates"]), str(rdir / "candidates.jsonl"))
            write_jsonl((json.dumps({**texts[ps.ids[i]], "domain": ps.domains[i], "math_score": float(ps.scores[i])},
                                    ensure_ascii=False) for i in exp["negatives"]), str(rdir / "negatives.jsonl"))
            valid = card.get("validation", {}).get("at_threshold", {}) if card else {}
            math_domains = sorted(exp["math_domains"], key=lambda d: (-exp["shares"][d], d))
            report = {
                "round": n,
                "model": model_path,
                "threshold": round(clf.threshold, 6),
                "pool_documents": len(ps.ids),
                "recalled": exp["recalled"],
                "recalled_share": round(exp["recalled"] / max(len(ps.ids), 1), 6),
                "math_domains": len(math_domains),
                "new_domains": sorted(set(math_domains) - seen_domains),
                "new_recalled": exp["recalled"] - prev_recalled if prev_recalled is not None else None,
                "math_path_prefixes": len(exp["prefixes"]),
                "candidates": len(exp["candidates"]),
                "pool_negatives": len(exp["negatives"]),
                "training": {"extra_positives": len(extra_pos), "extra_negatives": len(extra_neg),
                             "counts": card.get("counts") if card else None},
                "validation": {k: valid.get(k) for k in ("precision", "recall", "f1", "threshold")},
                "domains": [{"domain": d, "documents": exp["totals"][d], "recalled_share": round(exp["shares"][d], 4)}
                            for d in math_domains[:1000]],
                "prefixes": sorted(exp["prefixes"])[:1000],
                "seconds": round(time.time() - t0, 3),
                "settings_key": key, "seed": cfg.params.seed,
            }
            write_json(report, str(report_path))
            progress(f"round {n}: {report['recalled']} recalled, {len(math_domains)} math domains, "
                     f"{report['candidates']} candidates")
        seen_domains |= set(report["new_domains"])
        prev_recalled = report["recalled"]
        for ex in _read_examples(rdir / "candidates.jsonl", MATH):
            extra_pos.setdefault(ex.key, ex)
        for ex in _read_examples(rdir / "negatives.jsonl", OTHER):
            if ex.key not in extra_pos:
                extra_neg.setdefault(ex.key, ex)
        reports.append({k: v for k, v in report.items() if k not in ("domains", "prefixes")})
    summary = {"rounds": reports, "config": {**asdict(cfg), "params": asdict(cfg.params)},
               "pool": list(pool), "positives": list(positives), "negatives": list(negatives)}
    write_json(summary, str(out / "recall.json"))
    return summary


def _identity(patterns: Sequence[str]) -> dict[str, list[Any]]:
    out = {}
    for path in expand_paths(list(patterns)):
        if "://" in path:
            import fsspec

            info = fsspec.get_fs_token_paths(path)[0].info(path)
            out[path] = [info.get("size"), str(info.get("mtime") or info.get("ETag") or info.get("LastModified"))]
        else:
            st = os.stat(path)
            out[path] = [st.st_size, st.st_mtime_ns]
    return out


def round_settings(cfg: RecallConfig, pool: Sequence[str], positives: Sequence[str], negatives: Sequence[str],
                   initial_model: str | None = None) -> str:
    """Key of everything a round's result depends on: settings, seeds, and the identity (size + mtime) of the pool,
    seed files and initial model. Every path must match files (one-line error naming it otherwise)."""
    payload = {"config": {**asdict(cfg), "params": asdict(cfg.params)}, "rounds": None,
               "pool": _identity(pool), "positives": _identity(positives), "negatives": _identity(negatives),
               "initial_model": _identity([initial_model]) if initial_model else None}
    payload["config"].pop("rounds")  # more rounds keep the finished ones
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _chain(key: str, round_no: int) -> str:
    return hashlib.sha256(f"{key}:{round_no}".encode()).hexdigest()[:16]


class Rounds:
    """Iterating gives the :class:`ScoreRequest` of each round of :func:`iter_rounds`; each round goes on once the
    caller asks for the next request (its scores written by then). ``summary`` is set when the rounds are done."""

    def __init__(self, rounds: Generator[ScoreRequest, None, dict[str, Any]]):
        self._rounds = rounds
        self.summary: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[ScoreRequest]:
        self.summary = yield from self._rounds


def run_rounds(output_dir: str, pool: Sequence[str], positives: Sequence[str], negatives: Sequence[str],
               cfg: RecallConfig | None = None, **options: Any) -> dict[str, Any]:
    """:func:`iter_rounds` (same arguments and ``initial_model``/``progress`` options) with the pool scored in
    this process; returns the summary (``recall.json``)."""
    cfg = cfg or RecallConfig()
    rounds = Rounds(iter_rounds(output_dir, pool, positives, negatives, cfg, **options))
    for req in rounds:
        ps = score_pool(MathClassifier(req.model, threshold=req.threshold), pool, cfg.batch_size)
        write_parquet(pool_scores_table(ps), f"{req.scores_dir}/00000.parquet")
    return rounds.summary

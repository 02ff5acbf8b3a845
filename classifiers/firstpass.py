"""The first-pass model of the crawl reader: a high-recall fastText model scored on a page's fast view.

Training data are labelled HTML pages (``pages.jsonl`` folders: ``file``, ``label`` math|general, ``site`` or
``url``). Each page becomes :func:`corpus.extract.prefilter.model_text` (markup tokens + Resiliparse plain text),
the text the first pass scores at crawl time. Sites are split three ways (a site's pages all land in one part):
by a hash of the site name (:func:`site_part`, the default), or by an explicit ``{site: part}`` mapping such as
the classify bench's :func:`classifiers.pages.assign_splits` (``--split classify``; sites named as
:func:`classifiers.pages.site_of` names them). The model is trained on the train sites, its threshold is the
highest that keeps ``target_recall`` (99.5 %) of the math pages of the validation sites and of the training sites
(the model does not fit all of its own training pages), and it is reported on the test sites, which chose nothing.

``python -m classifiers.firstpass PAGES_DIR... -o MODEL_DIR [--split hash|classify]`` trains one (the README
shows the command); :class:`FirstPass` is the scorer the extract step hands to the page readers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from classifiers.data import MATH, OTHER, Example
from classifiers.metrics import evaluation_report, metrics_at
from classifiers.model import MathClassifier, TrainParams, read_card, train_model
from corpus.extract.html import ExtractError, decode_with_evidence, domain_of, page_url, parse_html
from corpus.extract.prefilter import FirstPassSettings, Signals, fast_view, first_pass_signals, model_text
from corpus.io import InputError, write_json

TARGET_RECALL = 0.995
FIRST_PASS_PARAMS = TrainParams(dim=32, lr=0.2, word_ngrams=2, min_count=1, epoch=15, bucket=50_000,
                                threads=1, max_chars=4000, max_tokens=400)


PARTS = ("train", "valid", "test")
SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}


@dataclass(frozen=True)
class Page:
    path: str
    label: str  # MATH or OTHER
    site: str  # the hash split's site: the ``site`` column, else the URL's domain, else the upstream repository
    registered: str = ""  # the site as classifiers.pages names it (the key of an explicit split)


def registered_site(root: str, r: dict[str, Any]) -> str:
    """:func:`classifiers.pages.site_of` of a list row, the URL read from the page's canonical link or
    ``og:url`` when the row has neither ``site`` nor ``url`` (as ``read_pages`` gets it from the extraction)."""
    from classifiers.pages import site_of

    url = r.get("url")
    if not url and not r.get("site"):
        try:
            url = page_url(parse_html(decode_with_evidence(Path(root, r["file"]).read_bytes())[0]))
        except ExtractError:
            url = None
    return site_of(r["file"], url, r.get("site"))


def load_pages(roots: Sequence[str], registered: bool = False) -> list[Page]:
    """Labelled pages of ``pages.jsonl`` folders (with ``registered``: also each page's
    :func:`registered_site`, which reads the pages without a ``site`` or ``url``)."""
    pages = []
    for root in roots:
        for line in Path(root, "pages.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("label") not in ("math", "general"):
                continue
            site = r.get("site") or domain_of(r.get("url")) or r.get("source_repo") or r["file"]
            pages.append(Page(str(Path(root, r["file"])), MATH if r["label"] == "math" else OTHER, site,
                              registered_site(root, r) if registered else ""))
    return pages


def split_parts(pages: Sequence[Page], split: Mapping[str, str] | None = None,
                seed: int = 0) -> tuple[dict[str, list[Page]], dict[str, str]]:
    """The pages of each part and ``{site: part}``: by :func:`site_part` (``split`` None) or by ``split``
    (``{registered site: "train"|"validation"|"valid"|"test"}``); a page whose site it lacks is an error."""
    if split is None:
        sites = {p.site: site_part(p.site, seed) for p in pages}
        return {k: [p for p in pages if sites[p.site] == k] for k in PARTS}, sites
    missing = sorted({p.registered for p in pages} - set(split))
    if missing:
        example = next(p.path for p in pages if p.registered == missing[0])
        raise InputError(f"the split names no part for {len(missing)} site(s) of the pages: "
                         f"{', '.join(map(repr, missing[:5]))} (e.g. {example}); load the pages with "
                         "registered=True and give every site a part")
    bad = sorted({v for v in split.values() if v not in SPLIT_NAMES})
    if bad:
        raise InputError(f"split parts must be train, validation (or valid) or test, got {bad}")
    sites = {p.registered: SPLIT_NAMES[split[p.registered]] for p in pages}
    return {k: [p for p in pages if sites[p.registered] == k] for k in PARTS}, sites


def classify_split(roots: Sequence[str], seed: int = 0) -> dict[str, str]:
    """The classify bench's split (:func:`classifiers.pages.assign_splits`) of the pages of ``roots``, read as
    :func:`classifiers.pages.read_pages` reads them."""
    from classifiers.pages import assign_splits, read_pages

    return assign_splits(read_pages([str(Path(r, "pages.jsonl")) for r in roots], []), seed=seed)


def site_part(site: str, seed: int = 0) -> str:
    """``train`` (60 %), ``valid`` (20 %) or ``test`` (20 %) by a hash of the site name."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}\0{site}".encode(), digest_size=8).digest(), "big") / 2**64
    return "train" if h < 0.6 else "valid" if h < 0.8 else "test"


def page_signals(path: str, max_chars: int = 20_000) -> tuple[Signals, str]:
    """The first pass's signals for one HTML file and the text its model reads (computed for pages without a
    math cue too, which the first pass never scores: the model learns from them all the same)."""
    raw = Path(path).read_bytes()
    html, _ = decode_with_evidence(raw)
    sig, text = first_pass_signals(raw, html, None, max_chars)
    if not sig.cue:
        text = fast_view(html, max_chars)
    return sig, model_text(sig, text)


@dataclass
class Evidence:
    """Per page, what the whole first-pass rule looks at besides the score."""

    formulas: list[int] = field(default_factory=list)
    cue: list[bool] = field(default_factory=list)


def examples(pages: Sequence[Page]) -> tuple[list[Example], Evidence]:
    """Training examples and each page's formula-markup count and math cue."""
    out, ev = [], Evidence()
    for p in pages:
        sig, text = page_signals(p.path)
        out.append(Example(text, p.label, p.path))
        ev.formulas.append(sig.formulas)
        ev.cue.append(sig.cue)
    return out, ev


def rule_decisions(scores: Sequence[float], ev: Evidence, threshold: float, min_markup: int) -> list[bool]:
    """The whole first-pass rule (:func:`corpus.extract.prefilter.decide`): a math cue and score >= threshold, or
    markup >= min_markup."""
    return [(c and s >= threshold) or m >= min_markup for s, m, c in zip(scores, ev.formulas, ev.cue, strict=True)]


def rule_threshold(scores: Sequence[float], ev: Evidence, labels: Sequence[bool], min_markup: int,
                   target_recall: float) -> float:
    """The highest score threshold at which the whole rule keeps ``target_recall`` of the math pages: only the
    math pages with a cue that the markup rule misses need the model."""
    n_math = sum(labels)
    if not n_math:
        return 0.5
    lost = sum(1 for c, m, lab in zip(ev.cue, ev.formulas, labels, strict=True)
               if lab and not c and m < min_markup)  # no threshold brings them
    allowed = int(n_math * (1 - target_recall) + 1e-9) - lost
    need = sorted(s for s, m, c, lab in zip(scores, ev.formulas, ev.cue, labels, strict=True)
                  if lab and c and m < min_markup)
    if allowed < 0:
        return need[0] if need else 0.5  # the target is out of reach: keep every page the model can
    return float(need[allowed]) if allowed < len(need) else 1.0


def rule_metrics(scores: Sequence[float], ev: Evidence, labels: Sequence[bool], threshold: float,
                 min_markup: int) -> dict[str, Any]:
    decided = [1.0 if d else 0.0 for d in rule_decisions(scores, ev, threshold, min_markup)]
    return metrics_at(decided, labels, 0.5).to_dict()


def train_first_pass(output_dir: str, roots: Sequence[str], params: TrainParams | None = None, *,
                     target_recall: float = TARGET_RECALL, seed: int = 0, split: Mapping[str, str] | None = None,
                     split_name: str = "explicit") -> dict[str, Any]:
    """Train on the train sites, threshold on the validation sites, report on the test sites; returns the card
    (``first_pass`` holds the split and the test metrics of the model alone and of the whole rule). ``split``:
    None for the hash split (:func:`site_part`), else ``{site: part}`` over :func:`registered_site` names (e.g.
    :func:`classify_split`), recorded in the card as ``split_name``."""
    params = replace(params or FIRST_PASS_PARAMS, target_recall=target_recall, seed=seed)
    pages = load_pages(roots, registered=split is not None)
    parts, site_parts = split_parts(pages, split, seed)
    ex, evidence = {}, {}
    for k, v in parts.items():
        ex[k], evidence[k] = examples(v)
    card = train_model(output_dir, ex["train"], ex["valid"], params)
    clf = MathClassifier(output_dir)
    rule = FirstPassSettings().min_markup
    v_scores = clf.score([e.text for e in ex["valid"]]).tolist()
    v_y = [e.label == MATH for e in ex["valid"]]
    t_scores = clf.score([e.text for e in ex["train"]]).tolist()
    t_y = [e.label == MATH for e in ex["train"]]
    chosen = min(rule_threshold(v_scores, evidence["valid"], v_y, rule, target_recall),
                 rule_threshold(t_scores, evidence["train"], t_y, rule, target_recall))
    card["threshold"] = math.floor(chosen * 1e6) / 1e6
    card["threshold_rule"] = (f"highest threshold with recall >= {target_recall} on the validation sites and on the "
                              f"training sites (fastText underfits its own training pages) for the whole first-pass "
                              f"rule (a math cue and score >= threshold, or formula markup >= {rule})")
    card["train_rule"] = rule_metrics(t_scores, evidence["train"], t_y, card["threshold"], rule)
    card["validation_rule"] = rule_metrics(v_scores, evidence["valid"], v_y, card["threshold"], rule)
    scores = clf.score([e.text for e in ex["test"]]).tolist()
    y = [e.label == MATH for e in ex["test"]]
    kept = rule_decisions(scores, evidence["test"], card["threshold"], rule)
    card["first_pass"] = {
        "roots": list(roots),
        "split": ("by site (blake2b of seed + site): 60 % train, 20 % validation (threshold), 20 % test (report)"
                  if split is None else f"by site, given ({split_name}): train, validation (threshold), test (report)"),
        "split_kind": "hash" if split is None else split_name,
        "site_parts": dict(sorted(site_parts.items())),
        "sites": {k: sum(v == k for v in site_parts.values()) for k in PARTS},
        "pages": {k: {MATH: sum(p.label == MATH for p in v), OTHER: sum(p.label == OTHER for p in v)}
                  for k, v in parts.items()},
        "target_recall": target_recall,
        "test": evaluation_report(scores, y, card["threshold"]),
        "test_at_threshold": metrics_at(scores, y, card["threshold"]).to_dict(),
        "test_rule": {"min_markup": rule, **rule_metrics(scores, evidence["test"], y, card["threshold"], rule)},
        "test_misses": [e.key for e, d, lab in zip(ex["test"], kept, y, strict=True) if lab and not d],
        "test_general_passed": [e.key for e, d, lab in zip(ex["test"], kept, y, strict=True) if d and not lab],
        "test_no_cue": {"math": sum(1 for c, lab in zip(evidence["test"].cue, y, strict=True) if lab and not c),
                        "other": sum(1 for c, lab in zip(evidence["test"].cue, y, strict=True)
                                     if not lab and not c)},
    }
    write_json(card, str(Path(output_dir) / "model.json"))
    return card


@dataclass
class FirstPass:
    """The scorer the page readers call (``ctx.options['_firstpass']``): model loaded lazily, once a worker."""

    model_dir: str
    settings: FirstPassSettings = field(default_factory=FirstPassSettings)
    _clf: MathClassifier | None = None

    @property
    def clf(self) -> MathClassifier:
        if self._clf is None:
            self._clf = MathClassifier(self.model_dir, self.settings.threshold)
        return self._clf

    @property
    def threshold(self) -> float:
        return self.clf.threshold

    def score(self, text: str) -> float:
        return float(self.clf.score_prepared([self.clf.prepare(text)])[0])

    def describe(self) -> dict[str, Any]:
        card = read_card(self.model_dir, missing_ok=True) or {}
        return {"model": self.model_dir, "threshold": self.threshold, "min_markup": self.settings.min_markup,
                "domains": len(self.settings.domains), "test": card.get("first_pass", {}).get("test_at_threshold")}


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m classifiers.firstpass", description=__doc__.split("\n\n")[0])
    ap.add_argument("roots", nargs="+", help="folders with pages.jsonl + the HTML files it names")
    ap.add_argument("-o", "--output", required=True, help="model folder (model.bin + model.json)")
    ap.add_argument("--target-recall", type=float, default=TARGET_RECALL)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("hash", "classify"), default="hash",
                    help="sites split by a hash of their name (default), or as the classify bench splits them "
                         "(classifiers.pages.assign_splits over the same pages)")
    a = ap.parse_args(argv)
    if not 0 < a.target_recall <= 1:
        ap.error(f"--target-recall: expected a value in (0, 1], got {a.target_recall}")
    split = classify_split(a.roots, a.seed) if a.split == "classify" else None
    card = train_first_pass(a.output, a.roots, target_recall=a.target_recall, seed=a.seed, split=split,
                            split_name="classify: classifiers.pages.assign_splits")
    fp = card["first_pass"]
    t, r = fp["test_at_threshold"], fp["test_rule"]
    print(f"first-pass model -> {a.output}: threshold {card['threshold']:.4f} ({card['threshold_rule']}); "
          f"test sites {fp['pages']['test']}: model recall {t['recall']:.4f} precision {t['precision']:.4f}; "
          f"with markup >= {r['min_markup']}: recall {r['recall']:.4f} precision {r['precision']:.4f}")


if __name__ == "__main__":
    main()

"""Labelled web pages for training and evaluation, split by site.

A page list is a JSONL file with one row per HTML page: ``file`` (relative to the list's folder), ``label``
(``math`` or ``general``), and optionally ``site``, ``url`` and ``lang`` (the layout of
``../shared/data/web*/pages.jsonl``). Pages are extracted with our extract code (formulas kept as LaTeX), the
same code that makes the corpus, so a classifier trained on them sees what it will score.

Sites, not pages, are split: a site's pages all go to train, validation or test (:func:`assign_splits`), so
a score on validation or test pages measures how the model holds on sites it has never seen.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from classifiers.data import MATH, OTHER, Example
from corpus.io import InputError

SPLITS = ("train", "validation", "test")
PUBLIC_SUFFIXES = {"github.io", "gitee.io", "gitlab.io", "netlify.app", "vercel.app", "wordpress.com",
                   "blogspot.com", "readthedocs.io", "medium.com"}
SECOND_LEVEL = {"co", "com", "ac", "org", "net", "gov", "edu", "ne", "or"}
LABELS = {"math": MATH, "general": OTHER, "other": OTHER}


@dataclass(frozen=True)
class Page:
    key: str  # "{list file}:{file}": stable identity
    file: str  # the HTML file, absolute
    label: str  # MATH or OTHER
    site: str  # registered host (or "owner/repo" for pages without a host)
    lang: str  # ISO 639-1 from the list, else detected on the extracted text
    text: str

    def example(self) -> Example:
        return Example(self.text, self.label, self.key)


def registered_site(host_or_site: str) -> str:
    """``math.stackexchange.com`` -> ``stackexchange.com``, ``www.x.co.uk`` -> ``x.co.uk``, ``a.github.io/repo``
    -> ``a.github.io`` (one site per blog host); names without a host (``owner/repo``) stay as they are."""
    s = host_or_site.strip().lower()
    host = s.split("/", 1)[0]
    if "." not in host:
        return s
    parts = host.removeprefix("www.").split(".")
    keep = 3 if (len(parts) >= 3 and parts[-2] in SECOND_LEVEL and len(parts[-1]) == 2) or \
        ".".join(parts[-2:]) in PUBLIC_SUFFIXES else 2
    return ".".join(parts[-keep:])


def site_of(file: str, url: str | None, site: str | None = None) -> str:
    """The site of a page: the list's ``site``, else the URL's registered host, else the site its file name
    names (``trafilatura__zeit.de.x.html``, ``distill__*``, ``readability__wikipedia``), else the file."""
    if site:
        return registered_site(site)
    host = (urlsplit(url).hostname or "") if url else ""
    if host:
        return registered_site(host)
    src, _, name = Path(file).stem.partition("__")
    if src == "trafilatura" and name.count(".") > 1:
        return registered_site(name.rsplit(".", 1)[0])
    if src in ("distill", "mil"):
        return {"distill": "distill.pub", "mil": "mathematics-in-lean"}[src]
    if src == "readability":
        name = re.sub(r"-\d+$", "", name)
        return "wikipedia.org" if name == "wikipedia" else f"readability:{name}"
    return Path(file).stem


def _lang_id():
    from corpus.langid import LanguageIdentifier

    return LanguageIdentifier()


def read_pages(lists: str | Sequence[str], rejects: list[str] | None = None) -> list[Page]:
    """Extract the pages of the page lists. A page that cannot be extracted (no main text) is appended to
    ``rejects`` as one line naming the file (and left out); a bad list row is an :class:`InputError`."""
    from corpus.extract.web import read_html_file
    from corpus.io import Reject
    from corpus.records import FileContext

    lists = [lists] if isinstance(lists, str) else list(lists)
    lid = None
    pages: list[Page] = []
    for lst in lists:
        base = Path(lst).parent
        try:
            lines = Path(lst).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise InputError(f"{lst}: cannot read the page list: {e.strerror or e}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                file, label = r["file"], LABELS[r["label"]]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"{lst}:{n}: not a page row with 'file' and 'label' (math|general): {e}") from None
            path = base / file
            if not path.is_file():
                raise InputError(f"{lst}:{n}: {path}: no such page file")
            row = next(read_html_file(str(path), FileContext("pages", "web", file)), None)
            if row is None or isinstance(row, Reject) or not row["text"].strip():
                if rejects is not None:
                    rejects.append(f"{path}: {row.reason if isinstance(row, Reject) else 'no text'}")
                continue
            lang = r.get("lang")
            if not lang:
                lid = lid or _lang_id()
                lang = lid.identify(row["text"]).lang
            site = site_of(file, r.get("url") or row.get("url"), r.get("site"))
            pages.append(Page(f"{lst}:{file}", str(path), label, site, lang, row["text"]))
    return pages


def _frac(key: str, salt: str) -> float:
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest(), "big") / 2**64


def deal_sites(pages: Iterable[Page], fractions: Sequence[float], salt: str) -> dict[str, int]:
    """``{site: part index}``: a fixed, hash-ordered deal of the sites into ``len(fractions)`` parts, stratified
    by what a site holds (math or general only, and its main language) so each part gets math and general pages
    of every language in about ``fractions`` (counted in pages). Deterministic for the same set of sites."""
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    kinds: dict[str, set[str]] = {}
    langs: dict[str, dict[str, int]] = {}
    size: dict[str, int] = {}
    for p in pages:
        size[p.site] = size.get(p.site, 0) + 1
        kinds.setdefault(p.site, set()).add(p.label)
        langs.setdefault(p.site, {}).setdefault(p.lang, 0)
        langs[p.site][p.lang] += 1
    strata: dict[tuple, list[str]] = {}
    for site in kinds:
        main = max(sorted(langs[site]), key=langs[site].get)
        strata.setdefault((MATH in kinds[site], main if main in ("en", "zh") else "other"), []).append(site)
    out: dict[str, int] = {}
    n = len(fractions)
    for key in sorted(strata):
        sites = sorted(strata[key], key=lambda s: _frac(s, salt))
        counts, total = [0] * n, 0
        for site in sites:
            # the part furthest below its share of the pages dealt so far takes the site (and its pages)
            total += size[site]
            k = max(range(n), key=lambda j: (fractions[j] * total - counts[j], -j))
            counts[k] += size[site]
            out[site] = k
    return out


def assign_splits(pages: Iterable[Page], fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> dict[str, str]:
    """``{site: "train"|"validation"|"test"}`` (:func:`deal_sites` with ``fractions``): no site on two sides."""
    return {site: SPLITS[k] for site, k in deal_sites(pages, fractions, f"split{seed}").items()}


def site_folds(pages: Iterable[Page], folds: int = 5, seed: int = 0) -> dict[str, int]:
    """``{site: fold}`` for grouped cross-validation by site (:func:`deal_sites`, ``folds`` equal parts)."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    return deal_sites(pages, [1 / folds] * folds, f"folds{seed}")


def split_pages(pages: Sequence[Page], splits: dict[str, str]) -> dict[str, list[Page]]:
    out: dict[str, list[Page]] = {s: [] for s in SPLITS}
    for p in pages:
        out[splits[p.site]].append(p)
    return out


def page_report(scores, pages: Sequence[Page], threshold: float) -> dict:
    """Metrics at ``threshold`` over ``pages``, per language and per site (worst first)."""
    from classifiers.metrics import grouped_report, metrics_at

    y = [p.label == MATH for p in pages]
    return {"pages": len(pages), "math": sum(y), "general": len(y) - sum(y),
            **{k: v for k, v in metrics_at(scores, y, threshold).to_dict().items()},
            "per_language": grouped_report(scores, y, [p.lang for p in pages], threshold),
            "per_site": grouped_report(scores, y, [p.site for p in pages], threshold)}


def record_pages(paths: str | Sequence[str], label: str, text_field: str = "text") -> list[Page]:
    """Labelled documents from JSONL/Parquet record files as pages: ``lang`` and ``site`` (or ``domain`` /
    ``url``) taken from the record when present; the language is detected otherwise, the site is ``-``."""
    from classifiers.data import iter_labelled_records

    lid = None
    out = []
    for key, rec, text in iter_labelled_records(paths, text_field):
        lang = rec.get("lang")
        if not lang or lang == "und":
            lid = lid or _lang_id()
            lang = lid.identify(text).lang
        site = rec.get("site") or rec.get("domain")
        site = site_of(rec["_path"], rec.get("url"), site) if (site or rec.get("url")) else "-"
        out.append(Page(key, rec["_path"], label, site, lang, text))
    return out

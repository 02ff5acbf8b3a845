"""Offline language identification: ``lang`` (ISO 639-1, or ``und``) and ``lang_score`` (0..1) per document.

Nothing is downloaded at run time. Two backends:

* ``py3langid`` (default): langid.py's Naive Bayes model, shipped inside the PyPI package (97 languages).
* ``fasttext``: a fastText LID model you provide as a local file (``lid.176.bin``, GlotLID, OpenLID ...);
  labels like ``__label__en`` or ``__label__eng_Latn`` are mapped to ISO 639-1 where known. A missing file
  is a :class:`LangIdError` naming the path.

Math-aware preparation, whatever the backend: formulas (``$...$``, ``\\[...\\]``, math environments), code
blocks, TeX commands and URLs are stripped first (:func:`corpus.filters.markup.strip_markup`), so they do not
count as a language; a document with no prose left is ``und``. Mixed English/Chinese math text is decided by
the Han character share: Han characters vs. Latin words in the prose (a Chinese character carries about as
much as an English word). At ``zh_share`` or more (default 0.3) of those units, and with no kana/hangul
(Japanese/Korean), the document is ``zh`` whatever the byte-level model says; ``lang_score`` is then the
larger of the model's P(zh) and the share-based confidence ``min(1, share / 0.6)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from corpus.errors import MathcorpusError
from corpus.filters.markup import HAN_RE, HANGUL_RE, KANA_RE, LATIN_WORD_RE, strip_markup

UNDETERMINED = "und"
Backend = Literal["py3langid", "fasttext"]

# ISO 639-3 (GlotLID / OpenLID / NLLB labels) -> 639-1 for the languages a math corpus meets most.
_ISO3 = {
    "eng": "en", "cmn": "zh", "zho": "zh", "yue": "zh", "wuu": "zh", "lzh": "zh", "gan": "zh", "hak": "zh",
    "jpn": "ja", "kor": "ko", "fra": "fr",
    "deu": "de", "spa": "es", "por": "pt", "ita": "it", "rus": "ru", "ukr": "uk", "pol": "pl", "nld": "nl",
    "tur": "tr", "vie": "vi", "ara": "ar", "arb": "ar", "fas": "fa", "pes": "fa", "hin": "hi", "ind": "id",
    "ces": "cs", "swe": "sv", "fin": "fi", "dan": "da", "nob": "no", "ell": "el", "heb": "he", "hun": "hu",
    "ron": "ro", "tha": "th", "cat": "ca", "lat": "la",
}


class LangIdError(MathcorpusError):
    """A language-ID model cannot be loaded (the message names the path)."""


@dataclass(frozen=True)
class LangResult:
    lang: str  # ISO 639-1 code, or "und" when there is no prose to judge
    score: float  # confidence of ``lang``, 0..1
    han_share: float  # Han characters / (Han characters + Latin words) in the prose


@dataclass(frozen=True)
class ProseCounts:
    prose: str
    han: int
    kana: int
    hangul: int
    latin_words: int

    @property
    def han_share(self) -> float:
        units = self.han + self.latin_words
        return self.han / units if units else 0.0


def prose_counts(text: str, max_chars: int = 0) -> ProseCounts:
    """Strip formulas/code/TeX and count the script units of the remaining prose."""
    if max_chars and len(text) > max_chars:
        half = max_chars // 2  # the head and the middle of long documents
        mid = len(text) // 2
        text = text[:half] + "\n" + text[mid : mid + half]
    prose = strip_markup(text)
    return ProseCounts(
        prose=prose,
        han=len(HAN_RE.findall(prose)),
        kana=len(KANA_RE.findall(prose)),
        hangul=len(HANGUL_RE.findall(prose)),
        latin_words=sum(1 for w in LATIN_WORD_RE.findall(prose) if len(w) > 1),  # "x", "y": variables
    )


class LanguageIdentifier:
    """Identify the language of documents offline. Models load lazily, once per process.

    Args:
        backend: ``py3langid`` (model shipped in the package) or ``fasttext`` (``model_path`` required).
        model_path: local fastText LID model file (fasttext backend only).
        zh_share: Han-character share of the prose units from which a document is Chinese.
        min_units: fewer prose units (Latin words + CJK characters) than this -> ``und``.
        max_chars: only the first and middle ``max_chars / 2`` characters of long documents are read.
        short_units, short_min_score: prose shorter than ``short_units`` units (e.g. "Solve $|x-2|<1$.") is
            ``und`` unless the model is at least ``short_min_score`` sure: too little text to tell.
    """

    def __init__(self, backend: Backend = "py3langid", model_path: str | None = None, zh_share: float = 0.3,
                 min_units: int = 1, max_chars: int = 6000, short_units: int = 5, short_min_score: float = 0.5):
        if backend not in ("py3langid", "fasttext"):
            raise LangIdError(f"unknown language-ID backend {backend!r} (use py3langid or fasttext)")
        if backend == "fasttext" and not model_path:
            raise LangIdError("the fasttext language-ID backend needs model_path (a local fastText LID model file)")
        self.backend = backend
        self.model_path = model_path
        self.zh_share = zh_share
        self.min_units = min_units
        self.max_chars = max_chars
        self.short_units = short_units
        self.short_min_score = short_min_score
        self._model = None

    def __getstate__(self):  # picklable for executors: the model is reloaded in each worker
        return {**self.__dict__, "_model": None}

    # -- models ------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (normally done on first use); raises :class:`LangIdError` if it is missing."""
        if self._model is not None:
            return
        if self.backend == "py3langid":
            from py3langid.langid import MODEL_FILE
            from py3langid.langid import LanguageIdentifier as _Py3

            self._model = _Py3.from_model_file(MODEL_FILE, norm_probs=True)
        else:
            path = os.path.expanduser(self.model_path)
            if not os.path.isfile(path):
                raise LangIdError(
                    f"{path}: fastText language-ID model not found. Nothing is downloaded at run time: copy a "
                    f"model (e.g. lid.176.bin) there, or use backend: py3langid (model shipped in the package)"
                )
            import fasttext

            try:
                self._model = fasttext.load_model(path)
            except ValueError as e:
                raise LangIdError(f"{path}: not a fastText model: {e}") from None

    def _predict(self, prose: str) -> tuple[str, float, dict[str, float]]:
        """Best language, its probability, and the probabilities of a few candidates."""
        self.load()
        if self.backend == "py3langid":
            merged = {}
            for lang, p in self._model.rank(prose)[:8]:
                merged[_canonical(lang)] = merged.get(_canonical(lang), 0.0) + float(p)
            best = max(merged, key=merged.get)
            return best, merged[best], merged
        labels, probs = self._model.predict(" ".join(prose.split()), k=5)
        ranked = [(_iso(lab), float(min(p, 1.0))) for lab, p in zip(labels, probs, strict=True)]
        merged: dict[str, float] = {}
        for lang, p in ranked:
            merged[lang] = merged.get(lang, 0.0) + p
        best = max(merged, key=merged.get)
        return best, merged[best], merged

    # -- identification ----------------------------------------------------------------------------------

    def identify(self, text: str) -> LangResult:
        counts = prose_counts(text, self.max_chars)
        units = counts.han + counts.kana + counts.hangul + counts.latin_words
        if units < self.min_units and not _other_script_letters(counts.prose):
            return LangResult(UNDETERMINED, 0.0, counts.han_share)
        lang, score, probs = self._predict(counts.prose)
        share = counts.han_share
        if units < self.short_units and score < self.short_min_score and share < self.zh_share:
            return LangResult(UNDETERMINED, round(score, 4), share)  # a few words the model is unsure of
        if share >= self.zh_share and counts.kana + counts.hangul <= 0.05 * counts.han:
            return LangResult("zh", round(min(1.0, max(probs.get("zh", 0.0), share / 0.6)), 4), share)
        if lang == "zh" and share < self.zh_share and counts.latin_words:
            # Mostly Latin-script prose with some Han: the byte-level model over-weights 3-byte characters.
            latin = {k: v for k, v in probs.items() if k != "zh"}
            if latin:
                lang = max(latin, key=latin.get)
                score = latin[lang] / max(1e-9, 1.0 - probs.get("zh", 0.0))
        return LangResult(lang, round(min(1.0, score), 4), share)


def _other_script_letters(prose: str) -> bool:
    """Any letters of other scripts (Cyrillic, Greek, Arabic ...): enough to let the model judge."""
    return any(c.isalpha() and 0x024F < ord(c) < 0x3000 for c in prose)


def _iso(label: str) -> str:
    code = label.removeprefix("__label__").split("_")[0].split("-")[0].lower()
    return _ISO3.get(code, code)


def _canonical(lang: str) -> str:
    """Chinese varieties (Wu, Cantonese, Classical ...) are ``zh``; other codes pass through."""
    return "zh" if lang in ("wuu", "yue", "lzh", "gan", "hak", "cmn", "zho") else lang

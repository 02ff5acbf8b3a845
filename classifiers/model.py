"""Train a fastText math classifier with a model card, and load it for batched scoring.

A model is a folder holding ``model.bin`` (fastText) and ``model.json`` (the model card: data files and their
sha256, counts, parameters, preprocessing, validation metrics and the threshold). Both are written under
temporary names and renamed into place, card last: a folder with a card holds a complete model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.data import MATH, OTHER, Example, file_fingerprints, load_examples, split
from classifiers.metrics import evaluation_report, threshold_for
from classifiers.preprocess import MAX_CHARS, MAX_TOKENS, VERSION, Features, prepare
from corpus.errors import MathcorpusError
from corpus.io import write_json

CARD_FORMAT = "mathcorpus.fasttext/1"
MODEL_FILE, CARD_FILE = "model.bin", "model.json"
LABEL_PREFIX = "__label__"


class ModelError(MathcorpusError):
    """A model folder or file that is missing or unusable."""


@dataclass
class TrainParams:
    """fastText hyperparameters (defaults: DeepSeekMath's recall classifier) and the data split."""

    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    minn: int = 0  # character n-grams of words (fastText subwords; 0: none)
    maxn: int = 0
    epoch: int = 3
    bucket: int = 500_000  # hashed n-gram rows: model size ~ bucket * dim * 4 bytes
    loss: str = "softmax"
    threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))  # 1 = reproducible
    seed: int = 0
    valid_fraction: float = 0.1
    max_chars: int = MAX_CHARS
    max_tokens: int = MAX_TOKENS
    target_recall: float | None = None  # threshold = highest that reaches this recall on validation
    target_precision: float | None = None  # ... or lowest that reaches this precision
    features: Features = field(default_factory=Features)  # what preprocessing adds to the words
    page_repeat: int = 8  # labelled web pages (train sites) count this many times next to the seed texts
    site_split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / validation / test share of the pages
    cv_folds: int = 5  # folds (by site) of the cross-validation over the train+validation sites
    high_recall: float = 0.995  # recall of the high-recall (first-pass) operating point, pooled out-of-fold

    def fasttext_kwargs(self) -> dict[str, Any]:
        return {"dim": self.dim, "lr": self.lr, "wordNgrams": self.word_ngrams, "minCount": self.min_count,
                "minn": self.minn, "maxn": self.maxn, "epoch": self.epoch, "bucket": self.bucket, "loss": self.loss,
                "thread": self.threads, "seed": self.seed, "verbose": 0}


_TRAIN_SCRIPT = (
    "import json, sys, fasttext; a = json.loads(sys.argv[1]); "
    "fasttext.train_supervised(a['input'], **a['kwargs']).save_model(a['output'])"
)


def _train_in_fresh_process(train_file: str, kwargs: dict[str, Any], model_file: str) -> None:
    """Run ``fasttext.train_supervised`` in a fresh Python process and save the model to ``model_file``.

    fastText 0.9.x (``DenseMatrix::uniform``) initializes only ``thread``/10 of the input matrix; the rest is
    whatever the allocator returns. A fresh process gets fresh zeroed pages for it; inside a long-lived process
    the matrix can land on recycled heap memory: garbage weights, "Encountered NaN." and irreproducible runs.
    """
    import subprocess
    import sys

    arg = json.dumps({"input": train_file, "kwargs": kwargs, "output": model_file})
    proc = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, arg], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        hint = " (try a lower lr)" if "NaN" in proc.stderr else ""
        raise ModelError(f"fastText training failed: {lines[-1] if lines else proc.returncode}{hint}")


def _line(ex: Example, p: TrainParams) -> str:
    return f"{LABEL_PREFIX}{ex.label} {prepare(ex.text, p.max_chars, p.max_tokens, features=p.features)}"


def data_fingerprint(params: TrainParams, data: dict[str, list[dict]], extra: Sequence[Example] = ()) -> str:
    """Identity of a training run: parameters (threads aside), input file hashes and any extra examples."""
    p = {k: v for k, v in asdict(params).items() if k != "threads"} | {"preprocess_version": VERSION}
    h = hashlib.sha256(json.dumps({"params": p, "data": {k: [f["sha256"] for f in v] for k, v in data.items()}},
                                  sort_keys=True).encode())
    for ex in extra:
        h.update(f"{ex.label}\0{ex.key}\0{ex.text}".encode())
    return h.hexdigest()[:20]


def train_model(
    output_dir: str,
    train: Sequence[Example],
    valid: Sequence[Example],
    params: TrainParams,
    *,
    data: dict[str, list[dict]] | None = None,
    extra_card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on ``train``, evaluate on ``valid``, write ``model.bin`` + ``model.json``; returns the card."""
    labels = {ex.label for ex in train}
    if labels != {MATH, OTHER}:
        raise ModelError(f"{output_dir}: training needs both math and other examples, got {sorted(labels) or 'none'}")
    t0 = time.time()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lines = [_line(ex, params) for ex in train]
    random.Random(params.seed).shuffle(lines)  # fastText reads in order: mix the classes
    train_file = out / f".train-{tag}.txt"
    tmp_bin = out / f"{MODEL_FILE}.tmp-{tag}"
    try:
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            _train_in_fresh_process(str(train_file), params.fasttext_kwargs(), str(tmp_bin))
        except ModelError as e:
            raise ModelError(f"{output_dir}: {e}") from None
        (out / CARD_FILE).unlink(missing_ok=True)  # a card describes the model beside it: the old one goes first
        os.replace(tmp_bin, out / MODEL_FILE)
    finally:
        for f in (train_file, tmp_bin):
            if f.exists():
                f.unlink()
    clf = MathClassifier(str(out), threshold=0.5)
    clf.max_chars, clf.max_tokens, clf.features = params.max_chars, params.max_tokens, params.features
    threshold, rule = 0.5, "default 0.5"
    report: dict[str, Any] = {}
    if valid:
        scores = clf.score([ex.text for ex in valid])
        y = [ex.label == MATH for ex in valid]
        target = None
        if params.target_recall is not None:
            target = threshold_for(scores, y, recall=params.target_recall)
            rule = f"highest threshold with validation recall >= {params.target_recall}"
        elif params.target_precision is not None:
            target = threshold_for(scores, y, precision=params.target_precision)
            rule = f"lowest threshold with validation precision >= {params.target_precision}"
        if target is not None:
            threshold = target
        elif rule != "default 0.5":
            rule = f"default 0.5 (target not reachable: {rule})"
        report = evaluation_report(scores, y, threshold)
    count = lambda exs, lab: sum(1 for e in exs if e.label == lab)  # noqa: E731
    card = {
        "format": CARD_FORMAT,
        "model_file": MODEL_FILE,
        "labels": [MATH, OTHER],
        "params": json.loads(json.dumps(asdict(params))),  # as read back (tuples become lists)
        "preprocess": {"function": "classifiers.preprocess.prepare", "version": VERSION,
                       "max_chars": params.max_chars, "max_tokens": params.max_tokens,
                       "features": params.features.to_dict()},
        "data": data or {},
        "counts": {"train": {MATH: count(train, MATH), OTHER: count(train, OTHER)},
                   "validation": {MATH: count(valid, MATH), OTHER: count(valid, OTHER)}},
        "validation": report,
        "threshold": round(float(threshold), 6),
        "threshold_rule": rule,
        "train_seconds": round(time.time() - t0, 3),
        "model_bytes": (out / MODEL_FILE).stat().st_size,
        **(extra_card or {}),
    }
    write_json(card, str(out / CARD_FILE))
    return card


def train_from_files(
    output_dir: str,
    positives: Sequence[str],
    negatives: Sequence[str],
    params: TrainParams | None = None,
    *,
    extra: Sequence[Example] = (),
    valid: Sequence[Example] | None = None,
    pages: Sequence[str] = (),
    text_field: str = "text",
    reuse: bool = False,
    rejects: list[str] | None = None,
) -> dict[str, Any]:
    """Train from JSONL/Parquet files of positives (math) and negatives (other), plus ``extra`` examples.

    Validation is ``valid`` when given, else a deterministic ``valid_fraction`` of the file examples. With
    ``pages`` (page lists, :mod:`classifiers.pages`), the pages are split by site: the train+validation sites
    are cross-validated by site (``cv_folds``) to choose the thresholds on pooled out-of-fold scores (best F1,
    and the high-recall point), the model trains on the seed + those pages (``page_repeat`` times) and the test
    sites report both points (model card: ``protocol``, ``cv``, ``operating_points``, ``site_split``).
    With ``reuse``, an existing model trained on the same data and parameters is kept (its card is returned).
    """
    params = params or TrainParams()
    data = {"positives": file_fingerprints(positives), "negatives": file_fingerprints(negatives)}
    if pages:
        data["pages"] = file_fingerprints(pages)
    fingerprint = data_fingerprint(params, data, extra)
    if reuse:
        card = read_card(output_dir, missing_ok=True)
        if card and card.get("fingerprint") == fingerprint and (Path(output_dir) / MODEL_FILE).exists():
            return card
    examples = load_examples(positives, MATH, text_field) + load_examples(negatives, OTHER, text_field)
    if pages:
        return _train_with_pages(output_dir, [*examples, *extra], pages, params, data, fingerprint, len(extra),
                                 rejects)
    if valid is None:
        train, valid = split(examples, params.valid_fraction, params.seed)
    else:
        train = examples
    return train_model(output_dir, [*train, *extra], valid, params, data=data,
                       extra_card={"fingerprint": fingerprint, "extra_examples": len(extra)})


def _train_with_pages(output_dir: str, base: list[Example], pages: Sequence[str], params: TrainParams,
                      data: dict, fingerprint: str, n_extra: int, rejects: list[str] | None) -> dict[str, Any]:
    """Sites split train/validation/test; thresholds from cross-validation by site over the train+validation
    (dev) sites (:mod:`classifiers.cv`); the model trains on ``base`` + every dev page; test sites reported."""
    from classifiers.cv import cross_validate, fasttext_fit, site_split_card
    from classifiers.metrics import evaluation_report
    from classifiers.pages import assign_splits, read_pages, split_pages

    page_rows = read_pages(pages, rejects)
    parts = split_pages(page_rows, assign_splits(page_rows, params.site_split, params.seed))
    dev = parts["train"] + parts["validation"]
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    cv = cross_validate(base, dev, fasttext_fit(params), folds=params.cv_folds, page_repeat=params.page_repeat,
                        target_recall=params.high_recall, seed=params.seed, workdir=output_dir)
    card = train_model(output_dir, [*base, *[p.example() for p in dev] * params.page_repeat], [], params,
                       data=data, extra_card={"fingerprint": fingerprint, "extra_examples": n_extra})
    y = [p.label == MATH for p in dev]
    card["counts"]["validation"] = {MATH: sum(y), OTHER: len(y) - sum(y)}  # out-of-fold: every dev page once
    card["validation"] = evaluation_report(cv.scores, y, cv.final.threshold)
    card.update(site_split_card(MathClassifier(output_dir).score, parts, cv, params.site_split, params.seed))
    write_json(card, str(Path(output_dir) / CARD_FILE))
    return card


# ---- loading and scoring ---------------------------------------------------------------------------------


def model_paths(path: str) -> tuple[Path, Path]:
    """``(model.bin, model.json)`` for a model folder or a ``.bin`` file (card beside it, same stem)."""
    p = Path(path)
    if p.is_dir() or not p.suffix:
        return p / MODEL_FILE, p / CARD_FILE
    return p, p.with_suffix(".json")


def read_card(path: str, missing_ok: bool = False) -> dict[str, Any] | None:
    card_path = model_paths(path)[1]
    if not card_path.exists():
        if missing_ok:
            return None
        raise ModelError(f"{card_path}: no model card")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelError(f"{card_path}: invalid model card JSON: {e.msg} (line {e.lineno})") from None


class MathClassifier:
    """A trained model, loaded lazily on first use; :meth:`score` gives P(math) for a batch of texts.

    Works with any two-label fastText model with a ``__label__math`` (or ``label``) class; preprocessing
    limits come from the card when there is one.
    """

    def __init__(self, path: str, threshold: float | None = None, label: str = MATH):
        self.path = path
        self.bin_path, self.card_path = model_paths(path)
        self.card = read_card(path, missing_ok=True) or {}
        pre = self.card.get("preprocess", {})
        if pre and pre.get("version", 1) != VERSION:
            raise ModelError(f"{self.card_path}: model trained with preprocessing version {pre.get('version', 1)}, "
                             f"this code has version {VERSION}: retrain it (mathcorpus classify train)")
        self.max_chars = int(pre.get("max_chars", MAX_CHARS))
        self.max_tokens = int(pre.get("max_tokens", MAX_TOKENS))
        self.features = Features(**pre.get("features", {}))
        self.threshold = float(threshold if threshold is not None else self.card.get("threshold", 0.5))
        self.label = LABEL_PREFIX + label
        self._model = None

    def __getstate__(self) -> dict:  # picklable for executors: the model is reloaded in the worker
        return {**self.__dict__, "_model": None}

    @property
    def model(self):
        if self._model is None:
            if not self.bin_path.exists():
                raise ModelError(f"{self.bin_path}: no such fastText model file")
            from fasttext.FastText import _FastText

            try:
                self._model = _FastText(model_path=str(self.bin_path))
            except ValueError as e:
                raise ModelError(f"{self.bin_path}: not a fastText model: {e}") from None
            if self.label not in self._model.labels:
                raise ModelError(f"{self.bin_path}: model has no {self.label!r} label ({self._model.labels})")
        return self._model

    def prepare(self, text: str) -> str:
        return prepare(text, self.max_chars, self.max_tokens, features=self.features)

    def score_prepared(self, lines: Sequence[str]) -> np.ndarray:
        """P(math) for already prepared lines, in one batched fastText call (empty lines score 0)."""
        if not lines:
            return np.zeros(0, dtype=np.float32)
        all_labels, all_probs = self.model.predict(list(lines), k=-1)
        out = np.zeros(len(lines), dtype=np.float32)
        for i, (labs, probs) in enumerate(zip(all_labels, all_probs, strict=True)):
            if lines[i]:
                for lab, p in zip(labs, probs, strict=True):
                    if lab == self.label:
                        out[i] = p
                        break
        return np.clip(out, 0.0, 1.0)

    def score(self, texts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        """P(math) for each text (preprocessed with the card's limits), predicted in batches."""
        parts = [self.score_prepared([self.prepare(t) for t in texts[i : i + batch_size]])
                 for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

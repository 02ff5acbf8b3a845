"""Steps of the ``langid`` and ``filter`` stages: thin shells over :mod:`corpus.langid` and
:mod:`corpus.filters`. Kept documents flow on (to a ``ParquetShardWriter``); removed ones go to
``{removed_dir}/{rank:05d}.parquet`` with ``reason``, ``filter_value`` and ``filter_threshold``."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.filters.heuristics import HeuristicsConfig, check_text, strip_boilerplate_lines
from corpus.filters.textstats import TextStats
from corpus.filters.tiers import TierConfig, quality_score, score_to_tier
from corpus.langid import UNDETERMINED, LanguageIdentifier
from pipelines.steps.io import RemovedSink

EVIDENCE_FIELDS = [pa.field("filter_value", pa.float64()), pa.field("filter_threshold", pa.float64())]


class LanguageGate:
    """Which languages pass: ``languages`` (None = all), a minimum score, and what to do with ``und``."""

    def __init__(self, languages: list[str] | None, min_score: float = 0.0, keep_undetermined: bool = True):
        self.languages = set(languages) if languages else None
        self.min_score = min_score
        self.keep_undetermined = keep_undetermined

    def reason(self, lang: str | None, score: float | None) -> str | None:
        """None when the document passes, else the removal reason."""
        if lang in (None, UNDETERMINED):
            return None if self.keep_undetermined else "lang.undetermined"
        if self.languages is not None and lang not in self.languages:
            return "lang.not_selected"
        if score is not None and score < self.min_score:
            return "lang.low_score"
        return None


def _annotate_lang(doc, lid: LanguageIdentifier, overwrite: bool) -> None:
    if overwrite or not doc.metadata.get("lang"):
        res = lid.identify(doc.text)
        doc.metadata["lang"] = res.lang
        doc.metadata["lang_score"] = res.score


class LangIdStep(PipelineStep):
    """Writes ``lang`` / ``lang_score``; removes documents the :class:`LanguageGate` rejects."""

    name = "language id"
    type = "🔬 - FILTER"

    def __init__(self, lid: LanguageIdentifier, gate: LanguageGate, removed_dir: str, overwrite: bool = True):
        super().__init__()
        self.lid, self.gate, self.removed_dir, self.overwrite = lid, gate, removed_dir, overwrite

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.lid.load()  # a missing model fails here, once, with the path in the message
        sink = RemovedSink(self.removed_dir, rank, EVIDENCE_FIELDS)
        try:
            for doc in data or ():
                with self.track_time():
                    _annotate_lang(doc, self.lid, self.overwrite)
                    lang = doc.metadata["lang"]
                    self.stat_update(f"lang_{lang}")
                    reason = self.gate.reason(lang, doc.metadata.get("lang_score"))
                if reason:
                    self.stat_update("removed", reason)
                    sink.remove(doc, reason, filter_value=doc.metadata.get("lang_score"), filter_threshold=None)
                    continue
                self.stat_update("kept")
                yield doc
        except BaseException:
            sink.abort()
            raise
        sink.close()


class QualityFilterStep(PipelineStep):
    """Language gate (running LID where ``lang`` is missing), math-aware heuristics, quality tier, ``min_tier``.

    ``tier_model`` is optional: any object with ``score(texts) -> array`` of P(high quality) (e.g. a
    ``classifiers.model.MathClassifier`` for a second fastText model); scored per batch of ``batch_size``.
    """

    name = "math-aware quality filter"
    type = "🔬 - FILTER"

    def __init__(self, gate: LanguageGate, lid: LanguageIdentifier, heuristics: HeuristicsConfig, tiers: TierConfig,
                 min_tier: int, removed_dir: str, tier_model=None, batch_size: int = 256):
        super().__init__()
        self.gate, self.lid, self.heuristics, self.tiers = gate, lid, heuristics, tiers
        self.min_tier, self.removed_dir = min_tier, removed_dir
        self.tier_model, self.batch_size = tier_model, batch_size

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        sink = RemovedSink(self.removed_dir, rank, EVIDENCE_FIELDS)
        try:
            batch = []
            for doc in data or ():
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    yield from self._process(batch, sink)
                    batch = []
            yield from self._process(batch, sink)
        except BaseException:
            sink.abort()
            raise
        sink.close()

    def _process(self, batch: list, sink: RemovedSink):
        passed = []
        with self.track_time(unit="batch"):
            for doc in batch:
                _annotate_lang(doc, self.lid, overwrite=False)
                reason = self.gate.reason(doc.metadata.get("lang"), doc.metadata.get("lang_score"))
                if reason:
                    self._remove(sink, doc, reason, doc.metadata.get("lang_score"), self.gate.min_score)
                    continue
                bp = self.heuristics.boilerplate
                if bp is not None and bp.strip_lines:
                    doc.text, n_stripped = strip_boilerplate_lines(doc.text, bp)
                    if n_stripped:
                        self.stat_update("stripped_lines", value=n_stripped)
                st = TextStats(doc.text)
                verdict = check_text(doc.text, self.heuristics, lang=doc.metadata.get("lang"), stats=st)
                if not verdict.keep:
                    self._remove(sink, doc, verdict.reason, verdict.value, verdict.threshold)
                    continue
                passed.append((doc, st))
            model_q = self.tier_model.score([d.text for d, _ in passed]) if self.tier_model and passed else None
        counts: Counter = Counter()
        for i, (doc, st) in enumerate(passed):
            q = float(model_q[i]) if model_q is not None else None
            score = quality_score(st, doc.metadata.get("math_score"), q, self.tiers)
            tier = score_to_tier(score, self.tiers)
            doc.metadata["quality_tier"] = tier
            counts[tier] += 1
            if tier < self.min_tier:
                self._remove(sink, doc, "tier.below_min", score, self.tiers.thresholds[self.min_tier - 1])
                continue
            self.stat_update("kept")
            yield doc
        for tier, n in counts.items():
            self.stat_update(f"tier_{tier}", value=n)

    def _remove(self, sink: RemovedSink, doc, reason: str, value, threshold) -> None:
        self.stat_update("removed", reason)
        sink.remove(doc, reason, filter_value=None if value is None else float(value),
                    filter_threshold=None if threshold is None else float(threshold))

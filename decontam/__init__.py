"""Decontamination against eval sets, the Qwen2.5-Math way plus three tiers it misses (pure logic: no Ray).

* :mod:`decontam.evalsets` - the registry (``manifests/evalsets.yaml``), profiles, item parts, sha256.
* :mod:`decontam.normalize` - decontam-only spacing rules (spaced-out CJK/English text, TeX commands split into
  letters, split decimals) before the shared tokenizer :func:`corpus.normalize.math_tokens`.
* :mod:`decontam.index` - normalized 13-gram index over item parts, short questions joined with their answers,
  a table of short questions, and the reworded tier's numeric-fingerprint index.
* :mod:`decontam.matcher` - n-gram candidates, then |LCS| >= 13 and >= 0.6 x min(len(window), len(part))
  on the document window aligned with the hit (rapidfuzz); short questions (exact, whole line, followed by
  their answer); reworded items; near misses for review. See :class:`decontam.config.DecontamConfig`.
* :mod:`decontam.numbers` / :mod:`decontam.reworded` - numbers (digits, number words, Chinese numerals), content
  words, and the reworded-item tier (numbers in span + IDF-weighted content-word containment).
* :mod:`decontam.report` - the deterministic audit report (json / md / self-contained html).
* :mod:`decontam.run` - files in, kept/removed shards and the report out (``mathcorpus decontam``).
"""

from decontam.config import DecontamConfig

__all__ = ["DecontamConfig"]

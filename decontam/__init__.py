"""Decontamination against eval sets, the Qwen2.5-Math way (pure logic: no Ray, no executor).

* :mod:`decontam.evalsets` - the registry (``manifests/evalsets.yaml``), profiles, item parts, sha256.
* :mod:`decontam.index` - normalized 13-gram index over item parts (:func:`corpus.normalize.math_tokens`).
* :mod:`decontam.matcher` - n-gram candidates, then |LCS| >= 13 and >= 0.6 x min(len(window), len(part))
  on the document window aligned with the hit (rapidfuzz); parts under 13 tokens: see
  :class:`decontam.config.DecontamConfig`.
* :mod:`decontam.report` - the deterministic audit report (json / md / self-contained html).
* :mod:`decontam.run` - files in, kept/removed shards and the report out (``mathcorpus decontam``).
"""

from decontam.config import DecontamConfig

__all__ = ["DecontamConfig"]

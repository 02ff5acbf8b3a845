"""Exact + MinHash near-duplicate detection on math-safe shingles (pure logic, no executor).

Pipeline (see ``pipelines/stages/dedup.py`` for how it is distributed):

1. :mod:`.minhash` — per document: exact key of :func:`corpus.normalize.normalize_text`, shingles of
   :func:`corpus.normalize.math_tokens`, a MinHash signature and one LSH key per band (plus the exact band).
2. :mod:`.buckets` — documents sharing a band key become candidate pairs.
3. :mod:`.verify` — a candidate pair is a duplicate only if its real shingle Jaccard (or containment) passes
   the threshold and a token diff (:mod:`.tokens` tags math symbols) finds few enough edits for its length
   and no math symbol replaced by another (distinct problems often differ in one number, variable or word).
4. :mod:`.components` — connected components by rounds of min-label propagation with pointer jumping, one
   partition per shard; the label is the best document of the component under :mod:`.priority`, so the
   converged label *is* the survivor.

:mod:`.store` holds the on-disk layout shared by the phases, :mod:`.index` saves a run as an index that
later batches are deduplicated against, :mod:`.planted` builds the planted benchmark used to pick defaults.
"""

from corpus.dedup.params import DedupConfig
from corpus.dedup.priority import PriorityConfig

__all__ = ["DedupConfig", "PriorityConfig"]

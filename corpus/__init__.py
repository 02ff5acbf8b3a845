"""mathcorpus core: the document schema, I/O, math-safe normalization, tokens, mixing and stats."""

__version__ = "0.1.0"

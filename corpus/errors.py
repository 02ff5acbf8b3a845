"""The error type behind every one-line user-facing failure (bad input, manifest, schema, run)."""


class MathcorpusError(Exception):
    """An expected failure: the CLI prints its message as one line (no traceback) and exits non-zero.

    Messages name the file (and line or key) and the problem.
    """

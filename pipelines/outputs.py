"""Output folders: one command owns a folder, and what is in it is exactly what that command reports.

:func:`claim_output` runs before any work. It refuses a path that is a file, and a folder holding another
command's output (each command leaves a ``.mathcorpus.json`` marker naming itself); with ``clear`` it removes
the listed entries (``kept``, ``removed``, ``rejects`` ...) left by an earlier run of the same command, so no
stale shard survives beside the new ones.
"""

from __future__ import annotations

import json

import fsspec

from corpus.errors import MathcorpusError
from corpus.io import write_json

MARKER = ".mathcorpus.json"


class OutputError(MathcorpusError, ValueError):
    """An output path that cannot be used; the message names it and what to do."""


def claim_output(folder: str, command: str, *, clear: tuple[str, ...] = (), adopt: tuple[str, ...] = ()) -> None:
    """Make ``folder`` the output of ``mathcorpus {command}``.

    ``adopt``: entries that identify an unmarked folder as this command's own (written before markers existed);
    an unmarked folder that is not empty and holds none of them is refused, as is one marked by another command.
    """
    fs = fsspec.get_fs_token_paths(folder)[0]
    if fs.isfile(folder):
        raise OutputError(f"{folder}: is an existing file; the output must be a folder (give another path)")
    marker = f"{folder}/{MARKER}"
    if fs.exists(marker):
        with fs.open(marker, "rt") as fh:
            try:
                owner = json.load(fh).get("command")
            except ValueError:
                owner = None
        if owner != command:
            raise OutputError(f"{folder}: holds the output of `mathcorpus {owner}`, not of `mathcorpus {command}`; "
                              "give another output folder or delete it")
    elif fs.isdir(folder):
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)}
        if names and not names & {*adopt, *clear}:
            raise OutputError(f"{folder}: is not empty and was not written by `mathcorpus {command}`; give an "
                              "empty or new output folder")
    for name in clear:
        if fs.exists(f"{folder}/{name}"):
            fs.rm(f"{folder}/{name}", recursive=True)
    write_json({"command": command}, marker)

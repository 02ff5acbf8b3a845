"""fastText training options shared by ``classify train`` and ``recall``; defaults come from ``TrainParams``."""

from __future__ import annotations

from typing import Annotated

import typer

from classifiers.model import TrainParams
from pipelines.cli._app import in_range

_D = TrainParams(threads=1)

Dim = Annotated[int, typer.Option(min=1, help=f"fastText embedding size (DeepSeekMath: {_D.dim}).")]
Lr = Annotated[float, typer.Option(callback=in_range(gt=0), help=f"fastText learning rate (DeepSeekMath: {_D.lr}).")]
WordNgrams = Annotated[int, typer.Option(min=1, help=f"fastText word n-grams (DeepSeekMath: {_D.word_ngrams}).")]
MinCount = Annotated[int, typer.Option(min=1, help=f"fastText minimum token count (DeepSeekMath: {_D.min_count}).")]
Epoch = Annotated[int, typer.Option(min=1, help=f"fastText epochs (DeepSeekMath: {_D.epoch}; more for small seeds).")]
Bucket = Annotated[int, typer.Option(min=1, help="Hashed n-gram buckets (model size ~ bucket*dim*4 bytes).")]
Threads = Annotated[int, typer.Option(min=0, help="Training threads (0: cores-1; 1: reproducible).")]
Seed = Annotated[int, typer.Option(help="Random seed (shuffle, split, fastText).")]
TargetRecall = Annotated[float | None, typer.Option(
    callback=in_range(gt=0, le=1), help="Pick the threshold that reaches this validation recall.")]

DIM, LR, WORD_NGRAMS, MIN_COUNT, EPOCH, BUCKET, SEED = (
    _D.dim, _D.lr, _D.word_ngrams, _D.min_count, _D.epoch, _D.bucket, _D.seed)


def train_params(threads: int, **kwargs) -> TrainParams:
    """``TrainParams`` from CLI values; ``threads`` 0 keeps the default (cores - 1)."""
    params = TrainParams(**kwargs)
    if threads > 0:
        params.threads = threads
    return params

"""fastText training options shared by ``classify train`` and ``recall``; defaults come from ``TrainParams``."""

from __future__ import annotations

from typing import Annotated

import typer

from classifiers.model import TrainParams

_D = TrainParams(threads=1)

Dim = Annotated[int, typer.Option(help=f"fastText embedding size (DeepSeekMath: {_D.dim}).")]
Lr = Annotated[float, typer.Option(help=f"fastText learning rate (DeepSeekMath: {_D.lr}).")]
WordNgrams = Annotated[int, typer.Option(help=f"fastText word n-grams (DeepSeekMath: {_D.word_ngrams}).")]
MinCount = Annotated[int, typer.Option(help=f"fastText minimum token count (DeepSeekMath: {_D.min_count}).")]
Epoch = Annotated[int, typer.Option(help=f"fastText epochs (DeepSeekMath: {_D.epoch}; more for small seed sets).")]
Bucket = Annotated[int, typer.Option(help="Hashed n-gram buckets (model size ~ bucket*dim*4 bytes).")]
Threads = Annotated[int, typer.Option(help="Training threads (0: cores-1; 1: reproducible).")]
Seed = Annotated[int, typer.Option(help="Random seed (shuffle, split, fastText).")]
TargetRecall = Annotated[float | None, typer.Option(help="Pick the threshold that reaches this validation recall.")]

DIM, LR, WORD_NGRAMS, MIN_COUNT, EPOCH, BUCKET, SEED = (
    _D.dim, _D.lr, _D.word_ngrams, _D.min_count, _D.epoch, _D.bucket, _D.seed)


def train_params(threads: int, **kwargs) -> TrainParams:
    """``TrainParams`` from CLI values; ``threads`` 0 keeps the default (cores - 1)."""
    params = TrainParams(**kwargs)
    if threads > 0:
        params.threads = threads
    return params

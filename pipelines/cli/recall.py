"""``mathcorpus recall``: iterative recall rounds with domain expansion (resumable)."""

from __future__ import annotations

import typer

from pipelines.cli._app import app, in_range
from pipelines.cli._train_options import (
    BUCKET,
    DIM,
    EPOCH,
    LR,
    MIN_COUNT,
    SEED,
    WORD_NGRAMS,
    Bucket,
    Dim,
    Epoch,
    Lr,
    MinCount,
    Seed,
    TargetRecall,
    Threads,
    WordNgrams,
    train_params,
)


@app.command()
def recall(
    pool: list[str] = typer.Option(..., "--pool", help="Documents with URLs to recall from (Parquet/JSONL)."),
    positives: list[str] = typer.Option(..., "--positives", "-p", help="Seed math documents (records with text)."),
    negatives: list[str] = typer.Option(..., "--negatives", "-n", help="Seed general documents."),
    output: str = typer.Option(..., "--output", "-o", help="Folder for round_NN/ results and recall.json."),
    rounds: int = typer.Option(4, min=1, help="Number of rounds (DeepSeekMath: 4)."),
    model: str = typer.Option(None, help="Use this model in round 1 instead of training one on the seeds."),
    threshold: float = typer.Option(None, min=0, max=1, help="Recall threshold (default: each round's model card)."),
    domain_threshold: float = typer.Option(0.10, callback=in_range(gt=0, lt=1),
                                          help="A domain with a larger recalled share is a math domain."),
    min_domain_docs: int = typer.Option(1, min=1, help="Ignore domains with fewer pool documents."),
    min_domain_recalled: int = typer.Option(2, min=1, help="Recalled documents a math domain needs."),
    domain_z: float = typer.Option(1.0, min=0, help="z of the Wilson lower bound of the recalled share that is "
                                   "compared with --domain-threshold (0: the plain share)."),
    prefix_depth: int = typer.Option(1, min=0, help="URL path segments in a math path prefix (0: whole domain)."),
    min_prefix_recalled: int = typer.Option(1, min=1, help="Recalled pages a prefix needs to count as a math path."),
    candidate_min_score: float = typer.Option(0.0, min=0, max=1, help="Candidates must score at least this."),
    max_candidates: int = typer.Option(None, min=1, help="At most this many new positives per round."),
    negative_ratio: float = typer.Option(1.0, min=0, help="Pool negatives sampled per candidate."),
    negative_max_score: float = typer.Option(0.1, min=0, max=1, help="Pool negatives must score below this."),
    dim: Dim = DIM,
    lr: Lr = LR,
    word_ngrams: WordNgrams = WORD_NGRAMS,
    min_count: MinCount = MIN_COUNT,
    epoch: Epoch = EPOCH,
    bucket: Bucket = BUCKET,
    threads: Threads = 0,
    target_recall: TargetRecall = None,
    seed: Seed = SEED,
) -> None:
    """Train, score the pool, find math domains and URL paths, add their unrecalled pages, retrain; repeat."""
    from classifiers.recall import RecallConfig, run_rounds
    from pipelines.outputs import claim_output

    claim_output(output, "recall", adopt=("recall.json", "round_01"))

    params = train_params(threads, dim=dim, lr=lr, word_ngrams=word_ngrams, min_count=min_count, epoch=epoch,
                          bucket=bucket, seed=seed, target_recall=target_recall)
    cfg = RecallConfig(rounds=rounds, domain_threshold=domain_threshold, min_domain_docs=min_domain_docs,
                       min_domain_recalled=min_domain_recalled, domain_z=domain_z,
                       prefix_depth=prefix_depth, min_prefix_recalled=min_prefix_recalled,
                       candidate_min_score=candidate_min_score, max_candidates=max_candidates,
                       negative_ratio=negative_ratio, negative_max_score=negative_max_score, threshold=threshold,
                       params=params)
    summary = run_rounds(output, pool, positives, negatives, cfg, initial_model=model,
                         progress=lambda s: typer.echo(s, err=True))
    for r in summary["rounds"]:
        v = r["validation"]
        typer.echo(f"round {r['round']}: recalled {r['recalled']}/{r['pool_documents']}, "
                   f"math domains {r['math_domains']} (+{len(r['new_domains'])}), candidates {r['candidates']}, "
                   f"validation precision {v.get('precision')}")
    typer.echo(f"report: {output}/recall.json")

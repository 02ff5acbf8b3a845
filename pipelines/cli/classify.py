"""``mathcorpus classify train|eval|score``: fastText math classifiers."""

from __future__ import annotations

import json

import typer

from classifiers.preprocess import MAX_CHARS, MAX_TOKENS
from pipelines.cli._app import app
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

classify_app = typer.Typer(help="fastText math classifiers: train, evaluate, score.", no_args_is_help=True,
                           pretty_exceptions_enable=False)
app.add_typer(classify_app, name="classify")

POS_HELP = "Math documents: JSONL/Parquet files, folders or globs of records with a 'text' field."
NEG_HELP = "General (non-math) documents, same formats."
PAGES_HELP = ("Labelled HTML page list (JSONL rows: file, label math|general, optional site/url/lang; e.g. "
              "../shared/data/web2/pages.jsonl); pages are extracted and split by site.")


def _target(precision: float | None, recall: float | None) -> None:
    if precision is not None and recall is not None:
        raise typer.BadParameter("give --target-precision or --target-recall, not both")


@classify_app.command()
def train(
    positives: list[str] = typer.Option(..., "--positives", "-p", help=POS_HELP),
    negatives: list[str] = typer.Option(..., "--negatives", "-n", help=NEG_HELP),
    output: str = typer.Option(..., "--output", "-o", help="Model folder to write (model.bin + model.json)."),
    pages: list[str] = typer.Option([], "--pages", help=PAGES_HELP + " Thresholds come from cross-validation by "
                                    "site over the train+validation sites, the model trains on them, the test "
                                    "sites report both operating points."),
    page_repeat: int = typer.Option(8, min=1, help="Times each train/validation-site page counts next to the "
                                    "seed texts."),
    cv_folds: int = typer.Option(5, min=2, help="With --pages: folds (by site) of the cross-validation that "
                                 "chooses the thresholds."),
    dim: Dim = DIM,
    lr: Lr = LR,
    word_ngrams: WordNgrams = WORD_NGRAMS,
    min_count: MinCount = MIN_COUNT,
    epoch: Epoch = EPOCH,
    bucket: Bucket = BUCKET,
    threads: Threads = 0,
    seed: Seed = SEED,
    valid_fraction: float = typer.Option(0.1, min=0, max=0.99, help="Share of the data held out for validation."),
    max_chars: int = typer.Option(MAX_CHARS, min=1,
                                   help="Characters of a document the classifier reads (train+score)."),
    max_tokens: int = typer.Option(MAX_TOKENS, min=1, help="Tokens of a document the classifier reads."),
    target_recall: TargetRecall = None,
    target_precision: float = typer.Option(None, min=0, max=1, help="... or this validation precision."),
    text_field: str = typer.Option("text", help="Record field holding the text."),
) -> None:
    """Train a math classifier; writes OUTPUT/model.bin and the model card OUTPUT/model.json."""
    from classifiers.model import train_from_files

    _target(target_precision, target_recall)
    _require_text_field([*positives, *negatives], text_field)
    params = train_params(threads, dim=dim, lr=lr, word_ngrams=word_ngrams, min_count=min_count, epoch=epoch,
                          bucket=bucket, seed=seed, valid_fraction=valid_fraction, max_chars=max_chars,
                          max_tokens=max_tokens, target_recall=target_recall, target_precision=target_precision,
                          page_repeat=page_repeat, cv_folds=cv_folds)
    if pages and (target_recall is not None or target_precision is not None):
        raise typer.BadParameter("with --pages the thresholds are chosen by cross-validation by site (best F1 "
                                 "and recall >= 0.995): drop --target-recall/--target-precision")
    rejects: list[str] = []
    card = train_from_files(output, positives, negatives, params, text_field=text_field, pages=pages,
                            rejects=rejects)
    for line in rejects:
        typer.echo(f"page not extracted (left out): {line}", err=True)
    v = card["validation"].get("at_threshold", {})
    typer.echo(f"model: {output}  train {card['counts']['train']}  validation {card['counts']['validation']}")
    if "operating_points" in card:
        typer.echo(f"site split: {card['site_split']['pages']} pages; {card['protocol']}")
        for name, pt in card["operating_points"].items():
            val, test = pt["cv"], pt["test"] or {}
            typer.echo(f"{name} @ {val['threshold']:.4f}: CV (train+validation sites) P={val['precision']:.4f} "
                       f"R={val['recall']:.4f} F1={val['f1']:.4f}; test sites P={test.get('precision', 0):.4f} "
                       f"R={test.get('recall', 0):.4f} F1={test.get('f1', 0):.4f}; general pages let through "
                       f"{val['general_pass']:.3f} / {_pass(test):.3f}")
            typer.echo("  test sites by language: " + ", ".join(map(_group, test.get("per_language", []))))
        typer.echo("  CV by language: " + ", ".join(map(_group, card["cv"]["per_language"])))
    elif v:
        typer.echo(f"validation @ {card['threshold']:.4f}: P={v['precision']:.4f} R={v['recall']:.4f} "
                   f"F1={v['f1']:.4f}  ({card['threshold_rule']})")


def _group(r: dict) -> str:
    if r["math"]:
        return f"{r['group']} F1={r['f1']:.3f} ({r['math']} math/{r['general']} general)"
    return f"{r['group']} {r['fp']}/{r['general']} general kept"


def _pass(m: dict) -> float:
    return m["fp"] / (m["fp"] + m["tn"]) if m and m.get("fp", 0) + m.get("tn", 0) else 0.0


@classify_app.command("eval")
def evaluate(
    model: str = typer.Argument(..., help="Model folder (or .bin file)."),
    positives: list[str] = typer.Option([], "--positives", "-p", help=POS_HELP + " Record fields 'lang' and "
                                        "'site'/'domain'/'url' group the report (language detected if absent)."),
    negatives: list[str] = typer.Option([], "--negatives", "-n", help=NEG_HELP),
    pages: list[str] = typer.Option([], "--pages", help=PAGES_HELP + " All of its pages are evaluated."),
    threshold: float = typer.Option(None, min=0, max=1, help="Threshold to report (default: the model card's)."),
    target_precision: float = typer.Option(None, min=0, max=1, help="Also find the threshold reaching this precision."),
    target_recall: float = typer.Option(None, min=0, max=1, help="Also find the threshold reaching this recall."),
    plot: str = typer.Option(None, "--plot", help="Write the PR curve to this PNG file."),
    output: str = typer.Option(None, "--output", "-o", help="Write the JSON report to this file."),
    text_field: str = typer.Option("text", help="Record field holding the text."),
) -> None:
    """Precision, recall, F1 and average precision of MODEL on labelled files; optional PR curve PNG."""
    from classifiers.data import MATH, OTHER
    from classifiers.metrics import evaluation_report, metrics_at, plot_pr_curve, threshold_for
    from classifiers.model import MathClassifier
    from classifiers.pages import page_report, read_pages, record_pages
    from corpus.io import write_json

    _target(target_precision, target_recall)
    _require_text_field([*positives, *negatives], text_field)
    if not (positives or negatives or pages):
        raise typer.BadParameter("give labelled data: --positives/--negatives record files and/or --pages")
    clf = MathClassifier(model, threshold=threshold)
    rejects: list[str] = []
    examples = record_pages(positives, MATH, text_field) + record_pages(negatives, OTHER, text_field)
    examples += read_pages(pages, rejects) if pages else []
    for line in rejects:
        typer.echo(f"page not extracted (left out): {line}", err=True)
    scores = clf.score([e.text for e in examples])
    y = [e.label == MATH for e in examples]
    groups = page_report(scores, examples, clf.threshold)
    report = {"model": model, **evaluation_report(scores, y, clf.threshold),
              "per_language": groups["per_language"], "per_site": groups["per_site"]}
    if target_precision is not None or target_recall is not None:
        t = threshold_for(scores, y, precision=target_precision, recall=target_recall)
        report["target"] = {"precision": target_precision, "recall": target_recall, "threshold": t,
                            "metrics": metrics_at(scores, y, t).to_dict() if t is not None else None}
    if plot:
        plot_pr_curve(scores, y, plot, mark=clf.threshold)
        report["plot"] = plot
    if output:
        write_json(report, output)
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "per_site"}, indent=2))
    typer.echo(f"per site at {clf.threshold:.4f} (worst first; all {len(report['per_site'])} in --output):")
    for r in report["per_site"][:15]:
        typer.echo(f"  {r['group']:40s} errors {r['errors']:3d}  math {r['math']:3d} (missed {r['fn']})  "
                   f"general {r['general']:3d} (kept {r['fp']})")


@classify_app.command()
def score(
    inputs: list[str] = typer.Argument(..., help="JSONL/Parquet record files, folders or globs, another command's "
                                       "output folder (its kept/) or a run folder (its corpus/)."),
    output: str = typer.Option(..., "--output", "-o", help="Folder: kept/ and removed/ shards, score.json."),
    model: list[str] = typer.Option(..., "--model", "-m",
                                    help="Model folder; SOURCE=PATH for a per-source model (web, book, code)."),
    threshold: float = typer.Option(None, min=0, max=1,
                                    help="Keep documents scoring at least this (default: model cards)."),
    keep_all: bool = typer.Option(False, "--keep-all", help="Keep every document (only write math_score)."),
    source: str = typer.Option(None, help="Source of the documents (web, book, code ...) when records lack one."),
    batch_size: int = typer.Option(1024, min=1, help="Documents per batched fastText call."),
) -> None:
    """Write math_score for every document; keep those at or above the threshold."""
    from classifiers.score import ModelSet, parse_model_specs, score_files
    from corpus.schema import check_source

    check_source(source)
    from pipelines.outputs import claim_output  # what the folder holds is exactly what this run reports

    claim_output(output, "classify score", clear=("kept", "removed", "rejects.jsonl", "score.json"))
    summary = score_files(ModelSet(parse_model_specs(model), threshold), inputs, output, keep_all=keep_all,
                          batch_size=batch_size, source=source)
    typer.echo(f"{summary['documents']} documents: {summary['kept']} kept, {summary['removed']} removed, "
               f"{summary['unscored']} unscored, {summary['rejected']} rejected -> {output}")


def _require_text_field(inputs: list[str], text_field: str) -> None:
    """The labelled files must hold ``--text-field`` before any training (one line naming the file)."""
    from corpus.io import require_columns, resolve_document_inputs

    require_columns(resolve_document_inputs(inputs), [text_field], "--text-field")

"""``mathcorpus decontam INPUT...``: remove eval-set contamination (13-gram + LCS, short items, reworded items) and
write the audit report."""

from __future__ import annotations

import typer

from decontam.config import DecontamConfig
from pipelines.cli._app import app

_C = DecontamConfig()  # option defaults: the library's


@app.command()
def decontam(
    inputs: list[str] = typer.Argument(..., help="JSONL/Parquet record files, folders or globs."),
    output: str = typer.Option(..., "--output", "-o", help="Output folder: kept/, removed/, report.{json,md,html}."),
    evalsets: str = typer.Option("pretrain", "--evalsets", help="Profile (pretrain, posttrain, all) or "
                                 "comma-separated set names from the registry."),
    evalsets_root: str = typer.Option(None, "--evalsets-root", envvar="MATHCORPUS_EVALSETS_ROOT",
                                      help="Folder holding the eval-set files (e.g. ../shared/data/evalsets)."),
    registry: str = typer.Option(None, "--registry", help="Eval-set registry YAML (default: "
                                 "manifests/evalsets.yaml)."),
    columns: str = typer.Option(None, "--columns", help="Check these comma-separated columns of Q&A records "
                                "(SFT/RL data, e.g. question,answer) instead of the text column; records are "
                                "kept as they are (JSONL)."),
    text_column: str = typer.Option("text", "--text-column", help="Column holding the document text."),
    ngram: int = typer.Option(_C.ngram, "--ngram", min=1, help="n of the n-gram candidate match."),
    lcs_ratio: float = typer.Option(_C.lcs_ratio, "--lcs-ratio", min=0, max=1,
                                    help="Minimum |LCS| / min(len(window), len(item))."),
    min_lcs: int = typer.Option(_C.min_lcs, "--min-lcs", min=0, help="Minimum |LCS| in tokens."),
    window_slack: float = typer.Option(_C.window_slack, "--window-slack", min=0,
                                       help="Window widening on each side, as a fraction of the item length."),
    min_short_tokens: int = typer.Option(_C.min_short_tokens, "--min-short-tokens", min=1,
                                         help="Question parts shorter than --ngram but at least this long must "
                                         "match exactly; shorter ones are not checked."),
    short_exact_answers: bool = typer.Option(_C.short_exact_answers, "--short-exact-answers",
                                             help="Also exact-match short answer parts (off: short final answers "
                                             "are too common to be evidence)."),
    normalize: str = typer.Option(",".join(_C.normalize), "--normalize", help="Spacing rules applied before "
                                  "tokenizing (spaced,cjk,tex,decimal; empty for none): spaced-out PDF/OCR text."),
    qa_pairs: bool = typer.Option(_C.qa_pairs, "--qa-pairs/--no-qa-pairs", help="Check a short question joined "
                                  "with each of its answers as one item."),
    min_line_tokens: int = typer.Option(_C.min_line_tokens, "--min-line-tokens", min=1,
                                        help="Shortest question matched "
                                        "as a whole line/paragraph or followed by its answer."),
    reworded: bool = typer.Option(_C.reworded, "--reworded/--no-reworded", help="The reworded-item tier (numeric "
                                  "fingerprint + content-word containment); on by default."),
    reword_similarity: float = typer.Option(_C.reword_similarity, "--reword-similarity", min=0, max=1,
                                            help="Content-word containment a reworded candidate needs."),
    reword_similarity_answer: float = typer.Option(_C.reword_similarity_answer, "--reword-similarity-answer",
                                                   min=0, max=1,
                                                   help="The same when the item's final answer is found too."),
    allow_hub: bool = typer.Option(False, "--allow-hub", help="Download a set from the hub when its local "
                                   "file is missing (needs network and `datasets`)."),
) -> None:
    """Check INPUT documents against eval sets; write kept/removed shards and report.json/.md/.html."""
    from corpus.io import require_columns, resolve_document_inputs
    from decontam.evalsets import load_sets
    from decontam.index import NGramIndex
    from decontam.run import decontaminate_files

    try:
        config = DecontamConfig(ngram=ngram, lcs_ratio=lcs_ratio, min_lcs=min_lcs, window_slack=window_slack,
                                min_short_tokens=min_short_tokens, short_exact_answers=short_exact_answers,
                                normalize=tuple(r.strip() for r in normalize.split(",") if r.strip()),
                                qa_pairs=qa_pairs, min_line_tokens=min_line_tokens, reworded=reworded,
                                reword_similarity=reword_similarity, reword_similarity_answer=reword_similarity_answer)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    files = resolve_document_inputs(inputs)  # document shards only; a run folder means its corpus/
    # A column the command was told to check must exist before any work (never an audit that checked nothing).
    require_columns(files, cols or [text_column], "--columns" if cols else "--text-column", each=not cols)
    sets = load_sets(evalsets, evalsets_root, registry, allow_hub=allow_hub)
    index = NGramIndex.build(sets, config)
    from pipelines.outputs import claim_output  # what the folder holds is exactly what this run reports

    claim_output(output.rstrip("/"), "decontam",
                 clear=("kept", "removed", "rejects.jsonl", "report.json", "report.md", "report.html"))
    report = decontaminate_files(files, sets, index, output.rstrip("/"), columns=cols, text_column=text_column,
                                 progress=lambda s: typer.echo(s, err=True))
    t = report["totals"]
    typer.echo(f"{t['documents']} documents, {t['removed']} removed, {t['kept']} kept, "
               f"{t.get('rejected', 0)} rejected; report: {output.rstrip('/')}/report.html")

"""``mathcorpus filter INPUT... --output DIR``: language gate, math-aware heuristics and quality tiers outside a
manifest run (in-process, the same step as the ``filter`` stage)."""

from __future__ import annotations

import typer

from pipelines.cli._app import app


@app.command("filter")
def filter_cmd(
    inputs: list[str] = typer.Argument(..., help="JSONL or Parquet files, folders or globs (records with text), "
                                       "another command's output folder (its kept/) or a run folder (its corpus/)."),
    output: str = typer.Option(..., "--output", "-o", help="Writes OUTPUT/kept/00000.parquet, "
                               "OUTPUT/removed/00000.parquet (with reason) and OUTPUT/filter_report.json."),
    config: str = typer.Option(None, "--config", "-c", help="YAML file with filter stage settings (thresholds, "
                               "tiers ...); the options below override it."),
    languages: str = typer.Option(None, "--languages", "-l",
                                  help="Comma-separated ISO 639-1 codes to keep (default en,zh; 'any' keeps all)."),
    min_tier: int = typer.Option(None, "--min-tier", min=0, max=5,
                                  help="Remove documents below this quality tier (0..5)."),
    strip_boilerplate: bool = typer.Option(False, "--strip-boilerplate",
                                           help="Remove boilerplate/navigation lines first (whole-page/WET text)."),
    lid_model: str = typer.Option(None, "--lid-model", help="Use this local fastText LID model instead of py3langid."),
    source: str = typer.Option("web", "--source", help="Source for records without a valid schema source."),
) -> None:
    """Filter documents: language, length, boilerplate, ratios, repetition; write quality tiers."""
    from collections import Counter

    import yaml

    from corpus.errors import MathcorpusError
    from corpus.io import Reject, write_json, write_jsonl
    from corpus.records import accept_rows, iter_record_rows
    from corpus.schema import row_to_document
    from pipelines.stages.filter import FilterSettings, build_step
    from pipelines.steps.io import DocSink

    raw = {}
    if config:
        try:
            with open(config, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as e:
            raise MathcorpusError(f"{config}: cannot read filter settings: {e}") from None
    if languages is not None:
        raw["languages"] = None if languages.strip().lower() == "any" else [x.strip() for x in languages.split(",")]
    if min_tier is not None:
        raw["min_tier"] = min_tier
    if lid_model:
        raw.update(lid_backend="fasttext", lid_model_path=lid_model)
    if strip_boilerplate:
        raw.setdefault("boilerplate", {})["strip_lines"] = True
    try:
        settings = FilterSettings.model_validate(raw)
    except Exception as e:  # pydantic ValidationError: one line naming the key
        err = e.errors()[0] if hasattr(e, "errors") else {"loc": (), "msg": str(e)}
        key = ".".join(str(p) for p in err["loc"]) or "(settings)"
        raise MathcorpusError(f"{config or '--options'}: {key}: {err['msg']}") from None

    rejects: list[Reject] = []

    def docs():
        for row in accept_rows(iter_record_rows(inputs, source), rejects, label="mathcorpus filter"):
            yield row_to_document(row)

    from pipelines.outputs import claim_output  # what the folder holds is exactly what this run reports

    claim_output(output, "filter", clear=("kept", "removed", "rejects.jsonl", "filter_report.json"))
    step = build_step(settings, removed_dir=f"{output}/removed")
    kept = DocSink(f"{output}/kept/00000.parquet", write_empty=True)
    tiers: Counter = Counter()
    try:
        for doc in step.run(docs(), rank=0, world_size=1):
            tiers[doc.metadata.get("quality_tier")] += 1
            kept.write_doc(doc)
    except BaseException:
        kept.abort()
        raise
    kept.close()
    if rejects:
        write_jsonl((r.to_json() for r in rejects), f"{output}/rejects.jsonl")
    removed = {k: int(v.total) for k, v in step.stats.stats.items() if "." in k}
    report = {"kept": kept.count, "removed": sum(removed.values()), "removed_by_reason": removed,
              "quality_tiers": {str(k): v for k, v in sorted(tiers.items())}, "rejected_records": len(rejects),
              "settings": settings.model_dump(mode="json")}
    write_json(report, f"{output}/filter_report.json")
    print(f"kept {kept.count}, removed {report['removed']} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(removed.items(), key=lambda kv: -kv[1])) or 'none'}), "
          f"rejected {len(rejects)} -> {output}")

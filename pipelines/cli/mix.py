"""``mathcorpus mix CONFIG``: mix Parquet shards into a corpus with ``manifest.json`` (in this process).

CONFIG is either a run manifest (its ``mix`` stage settings are used, reading the kept shards of the stage
before it in the run's output folder, and writing ``{output}/corpus``), or a standalone mix YAML::

    output_dir: build/mix            # where shards + manifest.json go
    input_paths: [build/run/stages/05_decontam/kept]   # default inputs of sources without input_paths
    seed: 0
    total_tokens: 1000000
    sources:
      web: {match: {source: web}, weight: 0.6}
      code: {input_paths: [code/*.parquet], weight: 0.4, max_epochs: 2}
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from pipelines.cli._app import app


def _resolve(value: str, base: Path) -> str:
    value = os.path.expanduser(os.path.expandvars(value))
    return value if "://" in value or os.path.isabs(value) else os.path.normpath(str(base / value))


def _from_run_manifest(path: Path, data: dict):
    """(MixConfig, default inputs, output dir, tokenizer) from a run manifest's ``mix`` stage."""
    from corpus.mix import MixError
    from pipelines.manifest import load_manifest

    manifest = load_manifest(path)
    names = [e.stage for e in manifest.stages]
    if "mix" not in names:
        raise MixError(f"{path}: stages: the manifest has no 'mix' stage")
    index = names.index("mix")
    settings = manifest.stages[index].settings
    default_inputs = None
    if index > 0:
        default_inputs = f"{manifest.output}/stages/{index - 1:02d}_{names[index - 1]}/kept"
    return settings.mix_config(), default_inputs, f"{manifest.output}/corpus", settings.tokenizer


def _from_mix_yaml(path: Path, data: dict):
    from pydantic import ValidationError

    from corpus.mix import MixConfig, MixError

    base = path.resolve().parent
    data = dict(data)
    output_dir = data.pop("output_dir", None)
    inputs = data.pop("input_paths", None)
    tokenizer = data.pop("tokenizer", "qwen2")
    if isinstance(inputs, str):
        inputs = [inputs]
    for name, src in (data.get("sources") or {}).items():
        if isinstance(src, dict) and isinstance(src.get("input_paths"), list):
            src["input_paths"] = [_resolve(p, base) for p in src["input_paths"]]
        elif isinstance(src, dict) and isinstance(src.get("input_paths"), str):
            src["input_paths"] = [_resolve(src["input_paths"], base)]
        data["sources"][name] = src
    try:
        cfg = MixConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise MixError(f"{path}: {loc}: {msg}") from None
    return (cfg, [_resolve(p, base) for p in inputs] if inputs else None,
            _resolve(output_dir, base) if output_dir else None, tokenizer)


@app.command()
def mix(
    config: Path = typer.Argument(..., help="A run manifest with a 'mix' stage, or a standalone mix YAML."),
    output: str = typer.Option(None, "--output", "-o", help="Output folder for the shards and manifest.json."),
    inputs: list[str] = typer.Option(None, "--input", "-i", help="Default input shards (files, dirs, globs)."),
    seed: int = typer.Option(None, "--seed", help="Override the seed."),
    work_dir: str = typer.Option(None, "--work-dir", help="Intermediate files (default: OUTPUT/.mix-work)."),
) -> None:
    """Mix Parquet shards by weight or token target into zstd shards plus a release manifest.json."""
    import yaml

    from corpus.mix import MixError, epochs_summary, run_mix

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MixError(f"{config}: no such file") from None
    except yaml.YAMLError as e:
        raise MixError(f"{config}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise MixError(f"{config}: expected a mapping at the top level")
    load = _from_run_manifest if "stages" in data else _from_mix_yaml
    cfg, default_inputs, out_dir, tokenizer = load(config, data)
    if inputs:
        default_inputs = list(inputs)
    out_dir = output or out_dir
    if not out_dir:
        raise MixError(f"{config}: no output_dir in the file and no --output")
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    from pipelines.outputs import claim_output

    claim_output(out_dir, "mix", adopt=("manifest.json", ".mix-work"))
    manifest = run_mix(cfg, out_dir, work_dir=work_dir, default_inputs=default_inputs, tokenizer=tokenizer,
                       progress=lambda s: typer.echo(s, err=True))
    for warning in manifest["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    unmatched = manifest["unmatched"] or {}
    if unmatched.get("documents"):
        typer.echo(f"{unmatched['documents']:,} input document(s) match no source (see manifest.json 'unmatched')",
                   err=True)
    typer.echo(epochs_summary(manifest))
    typer.echo(f"{manifest['documents']:,} documents, {manifest['tokens']:,} tokens in "
               f"{len(manifest['shards'])} shard(s): {out_dir}/manifest.json")

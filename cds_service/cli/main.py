"""`cds-service` command line: serve, and the tools later issues add (train, fire, check, …)."""
from __future__ import annotations

import argparse
import sys

from cds_service import create_app
from cds_service.cli import check as cli_check
from cds_service.cli import fire as cli_fire
from cds_service.cli import population as cli_population
from cds_service.cli import report as cli_report
from cds_service.errors import ConfigError
from cds_service.server.serve import serve as run_server
from hooks import ServiceFileError
from models.train import add_arguments as add_train_arguments
from models.train import run as run_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks service for ML models and clinical equations")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service: nginx in front of gunicorn (README, What faces the network)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", help="TOML settings file (also CDS_CONFIG)")
    serve.add_argument("--workers", type=int, default=None, help="gunicorn worker processes (default: the `workers` setting)")
    serve.add_argument("--threads", type=int, default=None, help="threads per worker (default: the `threads` setting)")
    serve.add_argument("--app", help=argparse.SUPPRESS)  # another WSGI target under the same server (bench/floor_app.py)

    check_cfg = sub.add_parser("validate", help="load the configuration and every service file, then exit")
    check_cfg.add_argument("--config")

    # Train a model into a verified artifact (models/train.py; training itself needs the `train` extra).
    add_train_arguments(sub.add_parser("train", help="train a model into models/artifacts/<id>/<version>/"))

    # Fire a hook, check conformance, report feedback and shadow mode (cli/fire.py, cli/check.py, cli/report.py).
    cli_fire.add_fire_parser(sub)
    cli_check.add_check_parser(sub)
    cli_report.add_report_parser(sub)

    # Population jobs over a FHIR Bulk Data export (cli/population.py; running them needs the `population` extra).
    cli_population.add_population_parser(sub)

    args = parser.parse_args(argv)
    if args.command in ("fire", "check", "feedback-report", "shadow-report"):
        return {"fire": cli_fire.run, "check": cli_check.run, "feedback-report": cli_report.run,
                "shadow-report": cli_report.run}[args.command](args)
    if args.command == "population":
        return cli_population.run(args)
    if args.command == "train":
        return run_train(args)
    if args.command == "serve":
        return run_server(args.host, args.port, args.config, args.workers, args.threads, args.app)
    if args.command == "validate":
        return _validate(args.config)
    return 2


def _validate(config: str | None) -> int:
    try:
        app = create_app(config_file=config)
    except (ConfigError, ServiceFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    services = app.extensions["cds"].all_services()
    for b in services:
        shadow = "  SHADOW MODE (no cards returned)" if b.definition.alerts.mode == "shadow" else ""
        print(f"{b.definition.id:28} {b.definition.hook:20} {b.model.info.id + ' ' + b.model.info.version if b.model else '-'}{shadow}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`cds-service` command line: serve, and the tools later issues add (train, fire, check, …)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description="CDS Hooks service for ML models and clinical equations")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", help="TOML settings file (also CDS_CONFIG)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default: from gunicorn.conf.py)")

    check_cfg = sub.add_parser("validate", help="load the configuration and every service file, then exit")
    check_cfg.add_argument("--config")

    args = parser.parse_args(argv)
    if args.command == "serve":
        from .server import serve as run

        return run(args.host, args.port, args.config, args.workers)
    if args.command == "validate":
        return _validate(args.config)
    return 2


def _validate(config: str | None) -> int:
    from hooks import ServiceFileError

    from . import create_app
    from .config import ConfigError

    try:
        app = create_app(config_file=config)
    except (ConfigError, ServiceFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    services = app.extensions["cds"].all_services()
    for b in services:
        print(f"{b.definition.id:28} {b.definition.hook:20} {b.model.info.id + ' ' + b.model.info.version if b.model else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

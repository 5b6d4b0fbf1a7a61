"""`cds-service feedback-report`: accept/override rates and override reasons per client, service and
model version (`--client` for one client's only), read from the service's database (the same query as
the `/analytics` page: `analytics.feedback_report`). Free-text override comments are counted, never printed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import Settings
from cds_service.errors import ConfigError
from cds_service.storage.analytics import feedback_report
from cds_service.storage.db import make_engine


def add_report_parser(sub) -> None:
    p = sub.add_parser("feedback-report", help="accept/override rates and override reasons per client, service and model version",
                       description="Summarise the feedback EHRs sent (FEEDBACK-2) against the cards the service issued.")
    p.add_argument("--config", help="TOML settings file (also CDS_CONFIG); its database_url is read")
    p.add_argument("--database-url", help="SQLAlchemy URL of the database (overrides the configuration)")
    p.add_argument("--since-days", type=float, help="only cards issued in the last N days")
    p.add_argument("--client", metavar="ISS", help="only the cards and feedback of this client (its JWT issuer; '' with "
                                                    "authentication off)")
    p.add_argument("--tenant", default="", help="with --client: only this tenant of it (default: no tenant)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout  # looked up per call (tests capture it)
    try:
        settings = Settings.load(args.config, overrides={"database_url": args.database_url} if args.database_url else None)
    except ConfigError as exc:
        print(f"cds-service feedback-report: {exc}", file=sys.stderr)
        return 2
    url = settings.database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:" and not Path(url.removeprefix("sqlite:///")).is_file():
        print(f"cds-service feedback-report: no database at {url.removeprefix('sqlite:///')} (has the service run?)", file=sys.stderr)
        return 2
    since = time.time() - args.since_days * 86400 if args.since_days is not None else None
    try:
        rows = feedback_report(make_engine(url), since=since,
                               client=(args.client, args.tenant) if args.client is not None else None)
    except SQLAlchemyError as exc:
        print(f"cds-service feedback-report: cannot read the database ({type(exc).__name__})", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"groups": rows}, out, indent=2)
        out.write("\n")
    else:
        out.write(format_report(rows))
    return 0


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _client(row: dict) -> str:
    return (row["iss"] or "(auth off)") + (f" [{row['tenant']}]" if row["tenant"] else "")


def format_report(rows: list[dict]) -> str:
    if not rows:
        return "No cards issued and no feedback received yet.\n"
    head = ("client", "service", "model", "version", "issued", "feedback", "accepted", "overridden")
    table = [head] + [(_client(r), r["service_id"], r["model"], r["model_version"], str(r["cards_issued"]), str(r["cards_with_feedback"]),
                       f"{r['accepted']} ({_pct(r['acceptance_rate'])})", f"{r['overridden']} ({_pct(r['override_rate'])})")
                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        if r["override_reasons"] or r["override_comments"]:
            lines += ["", f"Override reasons, {_client(r)}, {r['service_id']} ({r['model']} {r['model_version']}):"]
            for reason in r["override_reasons"]:
                lines.append(f"  {reason['cards']:5}  {reason['display'] or reason['code']}  ({reason['system']}|{reason['code']})")
            if r["override_comments"]:
                lines.append(f"  {r['override_comments']:5}  free-text comments (not shown: they may name a patient)")
    lines += ["", "Rates are over cards issued; cards without feedback were ignored by the clinician (FEEDBACK-3)."]
    return "\n".join(lines) + "\n"

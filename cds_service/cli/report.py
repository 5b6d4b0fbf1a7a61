"""Reports read from the service's database (the same queries as the `/analytics` page):

- `cds-service feedback-report`: accept/override rates and override reasons per client, service and
  model version (`analytics.feedback_report`). Free-text override comments are counted, never printed.
- `cds-service shadow-report`: what services in shadow mode would have shown, per client, and what later
  became of the same cards shown live (`shadow_report.shadow_report`, which says what it can compare).

`--client` (and `--tenant`) restrict either to one client.
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
from cds_service.storage.shadow_report import LATER, shadow_report


def add_report_parser(sub) -> None:
    p = sub.add_parser("feedback-report", help="accept/override rates and override reasons per client, service and model version",
                       description="Summarise the feedback EHRs sent (FEEDBACK-2) against the cards the service issued.")
    _common_arguments(p, "cards issued")
    p = sub.add_parser("shadow-report", help="what services in shadow mode would have shown, and what became of those cards live",
                       description="Per client and service in shadow mode ([alerts] mode = \"shadow\"): the cards it would have "
                                   "shown, and for each patient and card kind whether the same service later showed it live "
                                   "and what the EHR's feedback said (accepted, overridden, none).")
    _common_arguments(p, "shadow cards recorded")


def _common_arguments(p, what: str) -> None:
    p.add_argument("--config", help="TOML settings file (also CDS_CONFIG); its database_url is read")
    p.add_argument("--database-url", help="SQLAlchemy URL of the database (overrides the configuration)")
    p.add_argument("--since-days", type=float, help=f"only {what} in the last N days")
    p.add_argument("--client", metavar="ISS", help="only this client's rows (its JWT issuer; '' with authentication off)")
    p.add_argument("--tenant", default="", help="with --client: only this tenant of it (default: no tenant)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace, out=None) -> int:
    """`feedback-report` or `shadow-report` (args.command)."""
    out = out or sys.stdout  # looked up per call (tests capture it)
    command = getattr(args, "command", None) or "feedback-report"
    query, key, render = ((shadow_report, "services", format_shadow_report) if command == "shadow-report"
                          else (feedback_report, "groups", format_report))
    try:
        settings = Settings.load(args.config, overrides={"database_url": args.database_url} if args.database_url else None)
    except ConfigError as exc:
        print(f"cds-service {command}: {exc}", file=sys.stderr)
        return 2
    url = settings.database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:" and not Path(url.removeprefix("sqlite:///")).is_file():
        print(f"cds-service {command}: no database at {url.removeprefix('sqlite:///')} (has the service run?)", file=sys.stderr)
        return 2
    since = time.time() - args.since_days * 86400 if args.since_days is not None else None
    try:
        rows = query(make_engine(url), since=since, client=(args.client, args.tenant) if args.client is not None else None)
    except SQLAlchemyError as exc:
        print(f"cds-service {command}: cannot read the database ({type(exc).__name__})", file=sys.stderr)
        return 2
    if args.json:
        json.dump({key: rows}, out, indent=2)
        out.write("\n")
    else:
        out.write(render(rows))
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


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def format_shadow_report(rows: list[dict]) -> str:
    if not rows:
        return "No service has run in shadow mode (no shadow cards recorded).\n"
    lines = []
    for r in rows:
        indicators = ", ".join(f"{k} {v}" for k, v in sorted(r["by_indicator"].items())) or "none"
        held = ", ".join(f"{k} {v}" for k, v in sorted(r["held_back"].items())) or "none"
        lines += [f"{r['service_id']} — {_client(r)}, {_when(r['first_at'])} to {_when(r['last_at'])} UTC",
                  f"  would have shown {r['would_show']} card(s) ({indicators}) in {r['calls_with_cards']} call(s), "
                  f"for {r['patients']} patient(s); held back by [alerts]: {held}",
                  f"  model(s): {', '.join(r['models']) or '-'}"]
        for k in r["kinds"]:
            lines.append(f"  {k['cards']:5}  {k['kind']}  ({', '.join(f'{i} {n}' for i, n in sorted(k['by_indicator'].items()))})")
            lines += [f"           e.g. {s['summary']} (×{s['cards']})" for s in k["summaries"]]
        later = r["later_live"]
        lines.append(f"  Later, shown live for the same patient and card kind ({r['patient_kinds']} patient-kind pair(s)): "
                     + ", ".join(f"{name.replace('_', ' ')} {later.get(name, 0)}" for name in LATER))
        lines += [f"           overridden: {o['display']} ({o['system']}|{o['code']}) ×{o['patient_kinds']}" for o in r["override_reasons"]]
        lines.append("")
    lines.append("Compared with later live cards of the same service and their feedback only: orders or results outside "
                 "its cards, and feedback an EHR does not send, are not seen. Patients are matched by salted hash "
                 "(set audit_salt, or rows from before a restart match nothing).")
    return "\n".join(lines) + "\n"

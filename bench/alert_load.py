"""Alert load: how many cards a chart open shows, per service, on the simulator's demo patients.

Every demo patient's chart is opened twice (patient-view fires every patient-view service, with the
requests the simulator builds: `cds_service.ehr`, through the test suite's `cds_testing.chart_opens`),
through the app's test client; every other hook is fired once per patient with the simulator's default
context (order-select, then order-sign, of the default draft). Prints, per hook and service, the cards
per call; the second chart open falls within the repeat windows of the service files' `[alerts]`.

    python -m bench.alert_load                  # the service files as shipped
    python -m bench.alert_load --no-alerts      # the same files without their [alerts] tables (before)
    python -m bench.alert_load --summaries      # also each card shown: indicator, S = suggests an action, summary
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone

from hooks.catalog import HOOKS

from .servers import ROOT

sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper package, cds_testing
from cds_service.ehr.patients import DemoPatients  # noqa: E402
from cds_testing.apps import build_app  # noqa: E402
from cds_testing.chart_opens import open_every_chart  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-alerts", action="store_true", help="load the service files without their [alerts] tables")
    parser.add_argument("--summaries", action="store_true", help="list each card shown")
    args = parser.parse_args(argv)
    patients, now = DemoPatients(), datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp, alerts=not args.no_alerts, ui_enabled=False, log_level="ERROR", sqlite_synchronous="NORMAL")
        client = app.test_client()
        hooks = [h for h in HOOKS if any(b.definition.hook == h for b in app.extensions["cds"].all_services())]
        for hook in hooks:
            for n in range(2 if hook == "patient-view" else 1):
                calls = open_every_chart(client, app, patients, now, hook)
                total = sum(len(cs) for cards in calls.values() for cs in cards)
                label = f"{hook} (chart open {n + 1})" if hook == "patient-view" else hook
                print(f"{label}: {len(patients.ids)} patients, {total} cards, {total / len(patients.ids):.2f} per call")
                for sid, cards in sorted(calls.items()):
                    shown = [c for cs in cards for c in cs]
                    ind = ", ".join(f"{k} {v}" for k, v in sorted(Counter(c["indicator"] for c in shown).items()))
                    print(f"  {sid:24} {len(shown):3} cards  {len(shown) / len(cards):.2f} per call  ({ind or '-'})")
                    if args.summaries:
                        seen = Counter(f"{c['indicator']:8} {'S' if c.get('suggestions') else '-'} {c['summary'][:80]}" for c in shown)
                        print("\n".join(f"      {k} ×{v}" for k, v in seen.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Alert load: how many cards a chart open shows, per service, on the simulator's demo patients.

Every demo patient's chart is opened twice (patient-view fires every patient-view service, with the
requests the simulator builds: `cds_service.ehr`), through the app's test client with the default
service files; the other hooks are fired once each with the simulator's default context. Prints, per
hook and service, the cards per call of the first and of the second open (the second within the
suppression window). Usage: `python -m bench.alert_load [--json]` (from the repository root).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import datetime, timezone

from hooks.catalog import HOOKS

from cds_service import create_app
from cds_service.ehr.contexts import build_context
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients


def fire(client, runtime, hook: str, patients: DemoPatients, pid: str, now: datetime) -> dict[str, list[dict]]:
    """One hook for one patient, as the simulator sends it: {service id: cards}."""
    patient = patients.patient(pid)
    context = build_context(hook, patient, now=now)
    out = {}
    for bound in (b for b in runtime.all_services() if b.definition.hook == hook):
        call = build_call(bound, patient.resources, context)
        resp = client.post(f"/cds-services/{call.service_id}", json=call.body)
        if resp.status_code != 200:
            raise RuntimeError(f"{call.service_id} {hook} {pid}: HTTP {resp.status_code} {resp.get_data(as_text=True)[:200]}")
        out[call.service_id] = resp.get_json()["cards"]
    return out


def measure(app, *, hooks=tuple(HOOKS), opens: int = 2) -> dict:
    """{hook: {"calls": n patients, "opens": [{service: {"cards": n, "indicators": {...}, "summaries": [...]}}]}}"""
    runtime = app.extensions["cds"]
    patients = DemoPatients()
    client = app.test_client()
    now = datetime.now(timezone.utc)
    result = {}
    for hook in hooks:
        if not any(b.definition.hook == hook for b in runtime.all_services()):
            continue
        rounds = []
        for _ in range(opens if hook == "patient-view" else 1):
            per_service: dict[str, dict] = defaultdict(lambda: {"cards": 0, "indicators": Counter(), "summaries": Counter()})
            for pid in patients.ids:
                for sid, cards in fire(client, runtime, hook, patients, pid, now).items():
                    entry = per_service[sid]
                    entry["cards"] += len(cards)
                    entry["indicators"].update(c["indicator"] for c in cards)
                    entry["summaries"].update(f"{c['indicator']:8} {'S' if c.get('suggestions') else '-'} {c['summary'][:70]}"
                                              for c in cards)
            rounds.append(per_service)
        result[hook] = {"calls": len(patients.ids), "opens": rounds}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--summaries", action="store_true", help="also list the cards shown: indicator, S when it suggests an action, summary")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"auth_required": False, "database_url": f"sqlite:///{tmp}/cds.sqlite3", "ui_enabled": False,
                          "sqlite_synchronous": "NORMAL", "log_level": "ERROR"}, env={})
        result = measure(app)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=dict)
        print()
        return 0
    for hook, r in result.items():
        n = r["calls"]
        for i, per_service in enumerate(r["opens"]):
            label = f"{hook} (open {i + 1})" if len(r["opens"]) > 1 else hook
            total = sum(e["cards"] for e in per_service.values())
            print(f"{label}: {n} patients, {total} cards, {total / n:.2f} per call")
            for sid, e in sorted(per_service.items()):
                ind = ", ".join(f"{k} {v}" for k, v in sorted(e["indicators"].items()))
                print(f"  {sid:28} {e['cards']:3} cards  {e['cards'] / n:.2f}/call  ({ind or '-'})")
                if args.summaries:
                    for s, c in e["summaries"].most_common():
                        print(f"      {c:3} × {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

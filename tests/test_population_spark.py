"""Population jobs on Spark in local mode (the session-wide `spark` fixture of conftest.py), a population of
a few dozen patients (the simulator's 30 demo patients and 24 carebundle patients, seed 42).

Parity (item 6): for every bundled patient-view service, `population score` and a patient-view call of
the service's endpoint with the same data at the same time give identical scores, bands and features.
"""
from __future__ import annotations

import csv
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from cds_testing.optional import require_module
from cds_testing.paths import ROOT

require_module("pyspark", "pip install -e '.[population]'", allow_module_level=True)

import pyarrow.parquet as pa_parquet  # noqa: E402

from cds_service.config import Settings  # noqa: E402
from cds_service.ehr.hook_calls import local_prefetch  # noqa: E402
from cds_service.ehr.patients import DemoPatients  # noqa: E402
from cds_service.http import views  # noqa: E402
from cds_service.population import spark as sp  # noqa: E402
from cds_service.population.jobs import Job, load_bound  # noqa: E402
from cds_service.population.outcomes import as_known_at, load_outcome  # noqa: E402
from cds_service.population.patient import hook_context  # noqa: E402
from cds_service.population.synthetic import write_export  # noqa: E402
from cds_service.runtime import build_services  # noqa: E402
from hooks.catalog import INDICATORS  # noqa: E402

pytestmark = pytest.mark.timeout(300)
NOW = datetime(2026, 1, 1, 23, 59, 59, tzinfo=timezone.utc)  # the synthetic patients were seen that morning
SETTINGS = Settings.from_mapping({})
OUTCOME = ROOT / "config" / "outcomes" / "mi-or-death-1y.toml"
PATIENT_VIEW = sorted(b.definition.id for b in (g[0] for g in build_services(SETTINGS).values())
                      if b.definition.hook == "patient-view")
DISCHARGE = sorted(b.definition.id for b in (g[0] for g in build_services(SETTINGS).values())
                   if b.definition.hook == "encounter-discharge")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """The demo patients (one NDJSON file per type, dated as if seen half an hour before NOW) and 24
    carebundle patients (two gzipped files per type, MI events in the following year). Returns
    (directory, {patient id: resources})."""
    root = tmp_path_factory.mktemp("export")
    write_export(root / "synthetic", patients=24, seed=42, files=2, compress=True)
    demo = DemoPatients(clock=lambda: NOW)
    records: dict[str, list[dict]] = {pid: demo.resources(pid) for pid in demo.ids}
    by_type: dict[str, list[str]] = {}
    for resources in records.values():
        for r in resources:
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    # Lines that key no patient: not JSON, blank, a Patient whose id is not a FHIR id, a Group's Observation.
    by_type["Patient"] += ["{not json", "", json.dumps({"resourceType": "Patient", "id": "=HYPERLINK(1) x"})]
    by_type["Observation"].append(json.dumps({"resourceType": "Observation", "id": "g", "subject": {"reference": "Group/1"}}))
    for rtype, lines in by_type.items():
        (root / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import gzip

    for path in (root / "synthetic").glob("*.ndjson.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                pid = r["id"] if r["resourceType"] == "Patient" else (r.get("subject") or r.get("patient") or {}).get("reference", "")
                records.setdefault(pid.removeprefix("Patient/"), []).append(r)
    records = {k: v for k, v in records.items() if k.startswith(("demo-", "pt"))}
    return root, records


def _score(spark, tmp_path, service_id, export_dir, **kwargs):
    out = str(tmp_path / f"{service_id}.parquet")
    job = Job(service_id, SETTINGS.hooks_dir, SETTINGS.model_dir, kwargs.pop("outcome", None), kwargs.pop("flat", False))
    sp.write(sp.run(spark, job, str(export_dir), **kwargs), out)
    return {r["patient_id"]: r for r in pa_parquet.read_table(out).to_pylist()}


def _hook(client, service_id, patient_id, resources, monkeypatch):
    """The service's endpoint called at NOW with the prefetch an EHR would send from the record known then."""
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    monkeypatch.setattr(views, "datetime", Frozen)
    bound = load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, service_id)
    known = as_known_at(resources, NOW)
    context = hook_context(bound.definition.hook, patient_id, known, NOW)
    if context is None:
        return None  # no stay to discharge: an EHR fires no encounter-discharge hook
    prefetch, left_out = local_prefetch({k: s.query for k, s in bound.definition.prefetch.items()}, context, known)
    assert not left_out
    body = {"hook": bound.definition.hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch}
    resp = client.post(f"/cds-services/{service_id}", json=body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["cards"]


def test_bundled_services_include_patient_view():
    assert PATIENT_VIEW == ["ascvd-10y-risk", "diabetes-detection"] and DISCHARGE == ["post-mi-mortality"]


@pytest.mark.parametrize("service_id", PATIENT_VIEW + DISCHARGE)
def test_parity_population_score_equals_the_hook(spark, export, tmp_path, client, monkeypatch, service_id):
    """Item 6: same data, same time → identical score, band and features (value, unit, date, sources);
    patient-view services, and the encounter-discharge one at each patient's latest stay."""
    export_dir, records = export
    rows = _score(spark, tmp_path, service_id, export_dir, as_of=NOW)
    assert set(rows) == set(records)  # every patient of both parts, grouped across files and gzip
    assert all(r["error"] is None or r["error"].startswith("no encounter") for r in rows.values())
    carded = [pid for pid, r in rows.items() if r["indicator"] is not None]
    assert len(carded) >= (1 if service_id in DISCHARGE else 3), "the sample must include patients with a card"
    if load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, service_id).model is not None:
        assert any(r["score"] is not None for r in rows.values()), "the sample must include scored patients"
    if load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, service_id).definition.population:
        assert any(r["applicability"] == "not-applicable" for r in rows.values())
    compared = 0
    for pid in sorted(records):
        row, cards = rows[pid], _hook(client, service_id, pid, records[pid], monkeypatch)
        assert row["as_of"] == NOW
        if cards is None:
            assert row["error"] == "no encounter by the index date: nothing to discharge", pid
            continue
        if not cards:  # no advice (outside the population, or nothing to say): no band, no score
            assert row["indicator"] is None and row["score"] is None, pid
            continue
        card = max(cards, key=lambda c: INDICATORS.index(c["indicator"]))  # the row's band: the most urgent card
        assert row["indicator"] == card["indicator"] and row["summary"] == card["summary"], pid
        ext = (card.get("extension") or {}).get("org.cdsml.prediction", {})
        if row["score"] is None:
            assert "score" not in ext, pid
        else:
            assert round(row["score"], 6) == ext["score"] and (row["model_id"], row["model_version"]) == (ext["model"], ext["version"]), pid
        features = {f["name"]: f for f in row["features"]}
        for name, item in ext.get("features", {}).items():
            f = features[name]
            assert (f["value"] if f["value"] is not None else "missing") == item.get("value", "missing"), (pid, name)
            assert (f["unit"], f["date"], f["sources"] or None) == (item.get("unit"), item.get("date"), item.get("evidence")), (pid, name)
            compared += 1
    assert compared >= len(carded), "the cards' features must be compared"


def test_validate_labels_outcomes_after_the_index_date_only(spark, export, tmp_path):
    """The MI events written after NOW are labels, never features: the synthetic patients with an
    event are still in the ASCVD population (`as_known_at`), and their outcome is 1."""
    export_dir, records = export
    outcome = load_outcome(OUTCOME)
    rows = _score(spark, tmp_path, "ascvd-10y-risk", export_dir / "synthetic", as_of=NOW, outcome=outcome)
    with_event = {pid for pid, rs in records.items() for r in rs
                  if r["resourceType"] == "Condition" and r.get("id", "").startswith("mi-")}
    assert with_event, "the synthetic population must contain outcome events"
    for pid, row in rows.items():
        assert row["outcome"] == (1 if pid in with_event else 0), pid
        assert "Known ASCVD = 1" not in " ".join(row["applicability_reasons"]) or pid not in with_event
    from cds_service.population.report import VALIDATION_COLUMNS, write_report

    table = sp.collect(spark, str(tmp_path / "ascvd-10y-risk.parquet"), VALIDATION_COLUMNS)
    path = write_report(tmp_path / "report", table, service="ascvd-10y-risk", outcome=outcome,
                        bound=load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, "ascvd-10y-risk"))
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    flow = metrics["flow"]
    assert flow["patients"] == 24 and flow["evaluated"] == sum(1 for r in rows.values() if r["score"] is not None)
    assert metrics["overall"]["events"] == sum(1 for r in rows.values() if r["score"] is not None and r["outcome"])
    assert path.read_text().count("<svg") == 3


def test_dataset_is_one_flat_row_per_patient_with_the_scored_features(spark, export, tmp_path):
    export_dir, _ = export
    flat = _score(spark, tmp_path, "ascvd-10y-risk", export_dir, as_of=NOW, outcome=load_outcome(OUTCOME), flat=True)
    scored = _score(spark, tmp_path / "s", "ascvd-10y-risk", export_dir, as_of=NOW)
    bound = load_bound(SETTINGS.hooks_dir, SETTINGS.model_dir, "ascvd-10y-risk")
    names = [f.name for f in bound.definition.features]
    assert set(names) <= set(next(iter(flat.values())))
    for pid, row in flat.items():
        assert {n: row[n] for n in names} == {f["name"]: f["value"] for f in scored[pid]["features"]}, pid
        assert row["outcome"] in (0, 1) and row["applicability"] == scored[pid]["applicability"]


def test_per_patient_index_dates(spark, export, tmp_path):
    """Index dates from a CSV: only the listed patients, each at their own date (a date = end of that day)."""
    export_dir, _ = export
    dates = tmp_path / "index.csv"
    with dates.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "index_date"])
        w.writerow(["demo-19", NOW.date().isoformat()])
        w.writerow(["demo-30", (NOW - timedelta(days=3650)).isoformat()])
    rows = _score(spark, tmp_path, "ascvd-10y-risk", export_dir, index_dates=str(dates))
    assert set(rows) == {"demo-19", "demo-30"}
    assert rows["demo-19"]["as_of"] == NOW and rows["demo-19"]["indicator"] == "warning"
    # Ten years earlier demo-30 was 21 (outside 40-79), and nothing recorded later is known.
    assert rows["demo-30"]["as_of"] == NOW - timedelta(days=3650)
    assert rows["demo-30"]["applicability"] == "not-applicable"
    assert all(f["date"] is None or f["date"] <= "2016-01-04" for f in rows["demo-30"]["features"])

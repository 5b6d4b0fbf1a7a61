"""Parse-cost benchmark: a 5,000-Observation patient turned into features, per
resource, against `json.loads` of the same record, measured in one run. Target: within 3x.

The record: one carebundle patient (US Core, seed 42: CMP, CBC, lipids, HbA1c, urine albumin, BP
panel with components, vitals) whose 34 Observations are repeated over ten years, with fresh ids,
dates and jittered values, to 5,000 Observations in one searchset Bundle (about 7 MB of JSON, the
shape an EHR sends). Every feature reads the whole record (the worst case: one prefetch key). The
"features" path is what an invocation does with the bytes: json.loads, split the Bundle
(`split_value`, which also finds OperationOutcomes), then `extract` 15 features of 9 kinds.

    .venv/bin/python bench/parse_cost.py [--observations 5000] [--repeats 15]

Prints a table and writes bench/results/parse_cost.json.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_adapters.features import ExtractionContext, FeatureDef, extract  # noqa: E402
from fhir_adapters.resources import split_value  # noqa: E402

AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
L = "http://loinc.org|"


def _f(name, kind, unit=None, **params):
    return FeatureDef(name=name, kind=kind, source=("record",), label=name, unit=unit, params=MappingProxyType(params))


FEATURES = [
    _f("age", "age", "a"), _f("female", "sex", equals="female"), _f("black", "race", code="2054-5"),
    _f("total_cholesterol", "latest_quantity", "mg/dL", codes=[L + "2093-3"], lookback_days=1825, plausible=(50, 600), analyte="cholesterol"),
    _f("hdl", "latest_quantity", "mg/dL", codes=[L + "2085-9"], lookback_days=1825, plausible=(10, 200), analyte="cholesterol"),
    _f("sbp", "latest_quantity", "mm[Hg]", codes=[L + "8480-6"], lookback_days=730, plausible=(60, 300)),
    _f("smoker", "latest_coded", codes=[L + "72166-2"], answers=["http://snomed.info/sct|449868002"]),
    _f("diabetes", "condition", codes=["http://hl7.org/fhir/sid/icd-10-cm|E11.*"]),
    _f("on_statin", "medication", codes=["http://www.nlm.nih.gov/research/umls/rxnorm|83367"], ingredients=["atorvastatin"]),
    _f("a1c_mean_1y", "mean", "%", codes=[L + "4548-4"], lookback_days=365, plausible=(3, 20)),
    _f("egfr_slope", "trend", "mL/min/{1.73_m2}", codes=[L + "98979-8"], lookback_days=1095),
    _f("bmi", "bmi", "kg/m2", lookback_days=365),
    _f("low_glucose_count", "count", "mg/dL", codes=[L + "2345-7"], max_value=69.9, lookback_days=365, analyte="glucose"),
    _f("sbp_max_1y", "max", "mm[Hg]", codes=[L + "8480-6"], lookback_days=365, plausible=(60, 300)),
    _f("creatinine_min", "min", "mg/dL", codes=[L + "2160-0"], lookback_days=730, analyte="creatinine"),
]


def build_record(n_obs: int, seed: int = 42) -> dict:
    """A searchset Bundle: the Patient and `n_obs` Observations (carebundle shapes, ten years of visits)."""
    import carebundle

    source = json.loads(carebundle.to_json(carebundle.generate_bundle(profile="type2_diabetes", seed=seed, sex="F",
                                                                      age_range=(55, 65)), indent=0))
    patient = next(e["resource"] for e in source["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["id"] = "p1"
    templates = [e["resource"] for e in source["entry"] if e["resource"]["resourceType"] == "Observation"]
    rng = random.Random(seed)
    visits = -(-n_obs // len(templates))
    entries = [{"resource": patient, "search": {"mode": "match"}}]
    for i in range(n_obs):
        obs = json.loads(json.dumps(templates[i % len(templates)]))
        obs["id"] = f"obs-{i}"
        obs["subject"] = {"reference": "Patient/p1"}
        when = AS_OF - timedelta(days=3650 * (i // len(templates)) / visits)
        obs["effectiveDateTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        for place in [obs] + obs.get("component", []):
            q = place.get("valueQuantity")
            if q:
                q["value"] = round(q["value"] * rng.uniform(0.9, 1.1), 2)
        entries.append({"fullUrl": f"https://ehr.example.org/fhir/Observation/obs-{i}", "resource": obs,
                        "search": {"mode": "match"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def to_features(raw: bytes):
    value = json.loads(raw)
    resources, outcomes = split_value(value)
    assert not outcomes
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    ctx = ExtractionContext(as_of=AS_OF, patient=patient, all_resources=tuple(resources))
    return extract(FEATURES, {"record": resources}, ctx)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    raw = json.dumps(build_record(args.observations)).encode()
    n = args.observations + 1
    features = to_features(raw)  # warm-up (pint's registry, caches) and a sanity check
    missing = [f.name for f in features.features if f.missing]
    t_loads, t_features = 0.0, 0.0
    for _ in range(3):  # alternate the two measurements, so machine load hits both alike
        t_loads += _median_time(lambda: json.loads(raw), args.repeats)
        t_features += _median_time(lambda: to_features(raw), args.repeats)
    t_loads, t_features = t_loads / 3, t_features / 3
    result = {
        "observations": args.observations, "bytes": len(raw), "features": len(FEATURES), "repeats": args.repeats * 3,
        "json_loads_ms": round(t_loads * 1000, 2), "to_features_ms": round(t_features * 1000, 2),
        "json_loads_us_per_resource": round(t_loads / n * 1e6, 3),
        "to_features_us_per_resource": round(t_features / n * 1e6, 3),
        "ratio": round(t_features / t_loads, 3), "extraction_only_ratio": round((t_features - t_loads) / t_loads, 3),
        "target": 3.0, "missing_features": missing,
    }
    print(f"record: {args.observations} Observations + Patient, {len(raw) / 1e6:.1f} MB, {len(FEATURES)} features")
    print(f"{'path':<40}{'ms':>10}{'us/resource':>14}")
    print(f"{'json.loads':<40}{result['json_loads_ms']:>10.1f}{result['json_loads_us_per_resource']:>14.2f}")
    print(f"{'json.loads + split + extract features':<40}{result['to_features_ms']:>10.1f}{result['to_features_us_per_resource']:>14.2f}")
    print(f"ratio per resource: {result['ratio']:.2f}x json.loads (target <= 3); extraction alone {result['extraction_only_ratio']:.2f}x")
    out = ROOT / "bench" / "results" / "parse_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

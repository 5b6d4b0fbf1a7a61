"""Population scoring at scale: synthetic $export NDJSON of 10³, 10⁴ (10⁵) patients
scored by `ascvd-10y-risk` on Spark local[1] and local[2], in one run.

    .venv/bin/python bench/population.py [--sizes 1000,10000] [--service ascvd-10y-risk] [--keep DIR]

For each size: the export is written once (carebundle pool of 200 patients and varied copies,
`cds_service/population/synthetic.py`; 10⁴ and more gzipped, 4 files per type), then for each master a
fresh SparkSession scores it to parquet. Reported: wall time of the job (the session is started
before the clock), patients per second per core, the ratio local[2] / local[1], shuffle bytes written
per patient (Spark's stage metrics), and the same per-patient function in a plain Python loop on one
core (the reference: what Spark adds). The projected cost of 10⁷ patients uses the measured rate per
core and an assumed price per vCPU-hour (`--vcpu-hour-usd`). Writes bench/results/population-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.config import Settings  # noqa: E402
from cds_service.population import spark as sp  # noqa: E402
from cds_service.population.jobs import Job, parse_index_date, process  # noqa: E402
from cds_service.population.synthetic import write_export  # noqa: E402

AS_OF = "2026-01-01"


def event_log_figures(directory: Path) -> dict:
    """Shuffle bytes written and each stage's duration, from the Spark event log of one session."""
    shuffle, stages = 0, []
    for path in directory.rglob("events_*"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerTaskEnd":
                shuffle += ((event.get("Task Metrics") or {}).get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
            elif event["Event"] == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                stages.append({"stage": info["Stage ID"], "tasks": info["Number of Tasks"],
                               "seconds": round((info["Completion Time"] - info["Submission Time"]) / 1000, 2)})
    return {"shuffle_bytes": shuffle, "stages": sorted(stages, key=lambda s: s["stage"])}


def plain_loop(export: Path, service: str, limit: int = 1000) -> float:
    """Seconds per patient of `process` in one Python loop (no Spark), over `limit` of the varied copies."""
    wanted = {f"pt{n:07d}" for n in range(200, 200 + limit)}  # past the carebundle pool: varied copies
    by_patient: dict[str, list[str]] = {p: [] for p in wanted}
    for path in sorted(export.glob("*.ndjson*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                ref = r["id"] if r["resourceType"] == "Patient" else (r.get("subject") or r.get("patient") or {}).get("reference", "")
                if ref.removeprefix("Patient/") in wanted:
                    by_patient[ref.removeprefix("Patient/")].append(line)
    settings = Settings.from_mapping({})
    job = Job(service, settings.hooks_dir, settings.model_dir)
    patients = [p for p in sorted(by_patient) if by_patient[p]]
    when = parse_index_date(AS_OF)
    process(job, patients[0], by_patient[patients[0]], when)  # load the service first
    start = time.perf_counter()
    for p in patients:
        process(job, p, by_patient[p], when)
    return (time.perf_counter() - start) / len(patients)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--service", default="ascvd-10y-risk")
    ap.add_argument("--masters", default="local[1],local[2]")
    ap.add_argument("--vcpu-hour-usd", type=float, default=0.05, help="assumed on-demand price of one vCPU-hour")
    ap.add_argument("--keep", help="keep the exports and outputs here")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cds-population-bench-"))
    settings = Settings.from_mapping({})
    results = {"started": datetime.now(timezone.utc).isoformat(), "service": args.service, "as_of": AS_OF,
               "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
               "runs": []}
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            export = work / f"export-{n}"
            started = time.perf_counter()
            big = n >= 10_000
            if not any(export.glob("Patient*.ndjson*")):  # with --keep, an export written before is reused
                write_export(export, patients=n, files=4 if big else 1, compress=big, reference=date(2026, 1, 1))
            size = sum(p.stat().st_size for p in export.iterdir())
            print(f"{n} patients: export ready in {time.perf_counter() - started:.0f} s, {size / 1e6:.0f} MB", flush=True)
            plain = plain_loop(export, args.service)
            for master in args.masters.split(","):
                cores = int(master[6:-1])
                events = work / f"events-{n}-{cores}"
                events.mkdir(exist_ok=True)
                spark = sp.session(master, app_name="population-bench",
                                   conf={"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                                         "spark.eventLog.compress": "false"})
                try:
                    out = work / f"scored-{n}-{cores}.parquet"
                    job = Job(args.service, settings.hooks_dir, settings.model_dir)
                    start = time.perf_counter()
                    sp.write(sp.run(spark, job, str(export), as_of=parse_index_date(AS_OF)), str(out), overwrite=True)
                    wall = time.perf_counter() - start
                finally:
                    spark.stop()
                figures = event_log_figures(events)
                shuffled = figures["shuffle_bytes"]
                run = {"patients": n, "master": master, "cores": cores, "export_bytes": size, "wall_s": round(wall, 2),
                       "patients_per_s_per_core": round(n / wall / cores, 1), "shuffle_bytes_per_patient": round(shuffled / n),
                       "plain_python_ms_per_patient": round(plain * 1000, 3), "stages": figures["stages"],
                       "load": os.getloadavg()}
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    by = {(r["patients"], r["cores"]): r for r in results["runs"]}
    largest = max(r["patients"] for r in results["runs"])
    best = by.get((largest, 2)) or by[(largest, 1)]
    rate = best["patients_per_s_per_core"]
    core_hours = 1e7 / rate / 3600
    results["projection_1e7"] = {"rate_per_core": rate, "core_hours": round(core_hours, 1),
                                 "usd_at_assumed_price": round(core_hours * args.vcpu_hour_usd, 2),
                                 "assumed_vcpu_hour_usd": args.vcpu_hour_usd,
                                 "wall_hours_on_64_cores": round(core_hours / 64, 2)}
    for n in sorted({r["patients"] for r in results["runs"]}):
        if (n, 1) in by and (n, 2) in by:
            results.setdefault("speedup_2_over_1", {})[n] = round(by[(n, 1)]["wall_s"] / by[(n, 2)]["wall_s"], 2)
    results["load_after"] = os.getloadavg()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"population-{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H%M')}.json"
    path.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: results[k] for k in ("projection_1e7", "speedup_2_over_1") if k in results}, indent=1))
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: sustained S1 load on the production server; reports memory growth per worker and errors.

    .venv/bin/python bench/soak.py --minutes 10 [--workers 2] [--connections 8] [--interval 30]

Load runs in `--interval`-second slices (wrk, 8 connections); after each slice every worker's RSS
is read from /proc. Growth is measured from the end of the first slice (warm caches, loaded
models) to the end, per worker, with a least-squares slope per minute, so a one-off allocation
does not read as a leak. A worker that restarts is reported (its pid disappears).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import s1_patient_view as s1  # noqa: E402
from bench.loadgen import run_wrk  # noqa: E402
from bench.servers import Service, rss_kib  # noqa: E402


def _slope_per_min(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (KiB) over time, in KiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 60


def soak(minutes: float, workers: int, connections: int, interval: float) -> dict:
    resources = s1.synthetic_patient()
    log_dir = Path(tempfile.mkdtemp(prefix="cds-soak-logs-"))  # one JSON line per call: not for the repository
    with Service(workers=workers, log_path=log_dir / "soak.log") as srv:
        reqs = s1.requests_for(srv.url, resources)
        s1.check_answers(srv.url, reqs)
        start_pids = srv.worker_pids()
        series: dict[int, list[tuple[float, int]]] = {pid: [] for pid in start_pids}
        slices, t0 = [], time.monotonic()
        end = t0 + minutes * 60
        while time.monotonic() < end:
            res = run_wrk(srv.url, reqs, connections=connections, seconds=min(interval, max(1, end - time.monotonic())))
            now = time.monotonic() - t0
            for pid in srv.worker_pids():
                rss = rss_kib(pid)
                if rss is not None:
                    series.setdefault(pid, []).append((now, rss))
            slices.append({"t_s": round(now, 1), "rps": round(res.rps, 1), "p99_ms": round(res.p99_ms, 1),
                           "errors": res.errors, "non_2xx": res.non_2xx, "requests": res.requests})
            print(f"[soak] {now:7.0f} s  {res.rps:7.1f} req/s  p99 {res.p99_ms:7.1f} ms  errors {res.errors + res.non_2xx}  "
                  f"rss MiB {[round(v[-1][1] / 1024) for v in series.values() if v]}", file=sys.stderr, flush=True)
        end_pids = srv.worker_pids()
    per_worker = {}
    for pid, pts in series.items():
        if not pts:
            continue
        steady = pts[1:] if len(pts) > 2 else pts
        per_worker[pid] = {"rss_first_mib": round(steady[0][1] / 1024, 1), "rss_last_mib": round(steady[-1][1] / 1024, 1),
                           "growth_mib": round((steady[-1][1] - steady[0][1]) / 1024, 1),
                           "slope_kib_per_min": round(_slope_per_min(steady), 1), "samples": len(pts)}
    total = sum(s["requests"] for s in slices)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "minutes": minutes, "workers": workers,
        "connections": connections, "requests": total,
        "errors": sum(s["errors"] for s in slices), "non_2xx": sum(s["non_2xx"] for s in slices),
        "workers_restarted": sorted(set(start_pids) - set(end_pids)), "per_worker": per_worker, "slices": slices,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--interval", type=float, default=30, help="seconds between memory samples")
    args = ap.parse_args(argv)
    report = soak(args.minutes, args.workers, args.connections, args.interval)
    out = ROOT / "bench" / "results" / f"soak-{datetime.now().strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['requests']} requests in {args.minutes:g} min, errors {report['errors']}, non-2xx {report['non_2xx']}, "
          f"workers restarted {len(report['workers_restarted'])}")
    for pid, w in report["per_worker"].items():
        print(f"worker {pid}: RSS {w['rss_first_mib']} → {w['rss_last_mib']} MiB ({w['growth_mib']:+} MiB, "
              f"{w['slope_kib_per_min']:+.0f} KiB/min)")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if report["errors"] == 0 and report["non_2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Before/after on this shared machine: S1 on two versions of the code, measured in alternation.

    .venv/bin/python bench/ab.py --rev HEAD~5                  # that commit (a temporary worktree) against this tree
    .venv/bin/python bench/ab.py --tree old=/path/to/checkout  # another checkout against this tree
    .venv/bin/python bench/ab.py --rev main --in-process 5     # bench/profile_s1.py of each, 5 alternations

Server mode (the default): each version runs as the production server (`cds-service serve`, nginx in front of
one gunicorn worker, `bench/servers.Service` with the version's code first on PYTHONPATH); wrk sends S1's body
in alternating slices (A B A B …) and the worker's CPU per request is read from /proc. In-process mode runs
`bench/profile_s1.py --calls 1000` of each version in turn and prints every run's CPU per call, sorted.

Why alternation: on this machine the CPU time of one call moves by a third between runs minutes apart (the
same code, even the no-work floor), so a before/after figure is only worth something when both were
measured side by side. Both versions must have `bench/profile_s1.py` for the in-process mode, and every
dependency both need must be in this venv.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import s1_patient_view as s1  # noqa: E402
from bench.loadgen import interleave  # noqa: E402
from bench.servers import Service, cpu_seconds  # noqa: E402


def _worktree(stack: ExitStack, rev: str) -> Path:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cds-ab-")))
    path = tmp / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    stack.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
    return path


def server_mode(trees: dict[str, Path], rounds: int, slice_s: float) -> None:
    resources = s1.synthetic_patient()
    with ExitStack() as stack:
        targets, cpu_of = {}, {}
        for name, root in trees.items():
            srv = stack.enter_context(Service(workers=1, env={"PYTHONPATH": str(root)}))
            reqs = s1.requests_for(srv.url, resources, only=s1.S1_SERVICE)
            s1.check_answers(srv.url, reqs)
            targets[name] = (srv.url, reqs)
            cpu_of[name] = (lambda s: lambda: sum(cpu_seconds(p) for p in s.worker_pids()))(srv)
        interleave(targets, rounds=1, slice_s=2.0)  # warm-up
        out = interleave(targets, rounds=rounds, slice_s=slice_s, cpu_of=cpu_of)
    for name, r in out.items():
        print(f"{name:>10}: {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
              f"worker CPU {r['server_cpu_ms_per_request']:.3f} ms/request")


def in_process_mode(trees: dict[str, Path], rounds: int) -> None:
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, root in trees.items():
            proc = subprocess.run([sys.executable, str(root / "bench" / "profile_s1.py"), "--calls", "1000"],
                                  capture_output=True, text=True, cwd=root)
            found = re.search(r"CPU ([0-9.]+) ms/call", proc.stdout)
            if not found:
                raise SystemExit(f"{name}: profile_s1 gave no figure: {(proc.stdout + proc.stderr)[-500:]}")
            runs[name].append(float(found.group(1)))
    for name, values in runs.items():
        values.sort()
        print(f"{name:>10}: CPU ms/call {' '.join(f'{v:.3f}' for v in values)} (median {values[len(values) // 2]:.3f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", action="append", default=[], help="a git revision to compare (a temporary worktree)")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=PATH", help="another checkout to compare")
    ap.add_argument("--rounds", type=int, default=6, help="alternations (server mode)")
    ap.add_argument("--slice", type=float, default=3.0, help="seconds per wrk slice (server mode)")
    ap.add_argument("--in-process", type=int, metavar="N", help="N alternations of bench/profile_s1.py instead")
    args = ap.parse_args(argv)
    with ExitStack() as stack:
        trees: dict[str, Path] = {}
        for rev in args.rev:
            trees[rev] = _worktree(stack, rev)
        for item in args.tree:
            name, _, path = item.partition("=")
            trees[name] = Path(path).resolve()
        trees["this tree"] = ROOT
        if len(trees) < 2:
            ap.error("give at least one --rev or --tree to compare with this tree")
        if args.in_process:
            in_process_mode(trees, args.in_process)
        else:
            server_mode(trees, args.rounds, args.slice)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load generator: `wrk` (Debian package, C, event loop) driven by a generated Lua script.

`run_wrk` returns throughput, latency percentiles, errors and wrk's own CPU time, so every
measurement can show that the load generator was not the bottleneck (its CPU share is printed
next to each result, and `capacity()` measures it against a trivial WSGI app).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_LUA = r"""
local reqs = {}
local n = 0
init = function(args)
  for i, r in ipairs(REQUESTS) do
    reqs[i] = wrk.format(r[1], r[2], {["Content-Type"] = "application/json"}, r[3])
  end
  n = #reqs
end
local i = 0
local c = 0
local tag = tostring(math.random(1, 1000000000))
-- A hook fires with a new hookInstance every time (IDEM-1): bodies carrying the placeholder get a fresh
-- one per request, or every call would write the same rows and contend on the same database keys.
request = function()
  i = (i % n) + 1
  local r = REQUESTS[i]
  if string.find(r[3], "__HOOK_INSTANCE__", 1, true) then
    c = c + 1
    local body = string.gsub(r[3], "__HOOK_INSTANCE__", tag .. "-" .. c)
    return wrk.format(r[1], r[2], {["Content-Type"] = "application/json"}, body)
  end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("WRK_JSON " .. string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean) .. "\n")
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int          # socket errors + timeouts
    non_2xx: int
    loadgen_cpu_s: float  # wrk's own user+system CPU during the run
    loadgen_cpu_share: float  # loadgen CPU / (wall seconds x cores): its share of the machine

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def ensure_wrk() -> str:
    """Return the wrk binary, installing Debian's package when it is missing (we run as root here)."""
    found = shutil.which("wrk")
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def _lua_string(s: str) -> str:
    level = 0
    while f"]{'=' * level}]" in s:
        level += 1
    return f"[{'=' * level}[{s}]{'=' * level}]"


def write_script(requests: list[tuple[str, str, str]], directory: Path) -> Path:
    """A Lua script cycling through (method, path, body) requests, pre-formatted once per thread."""
    rows = ",\n".join(f"  {{{_lua_string(m)}, {_lua_string(p)}, {_lua_string(b)}}}" for m, p, b in requests)
    path = directory / "requests.lua"
    path.write_text(f"REQUESTS = {{\n{rows}\n}}\n{_LUA}", encoding="utf-8")
    return path


def run_wrk(url: str, requests: list[tuple[str, str, str]], *, connections: int = 8, seconds: float = 10,
            threads: int = 1, timeout_s: float = 10) -> LoadResult:
    """Closed-loop load: `connections` keep-alive connections, each sending its next request on reply."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="cds-wrk-") as tmp:
        script = write_script(requests, Path(tmp))
        cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
               "--timeout", f"{timeout_s}s", "-s", str(script), url]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = proc.stdout.read()
        proc.stdout.close()
        # wait4 (not Popen.wait) to get wrk's own CPU time, and nobody else's.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
    err = out
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip()[:500]}")
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out[-500:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    cpu = usage.ru_utime + usage.ru_stime
    secs = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"], seconds=secs, rps=data["requests"] / secs if secs else 0.0,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        non_2xx=data["status"], loadgen_cpu_s=cpu, loadgen_cpu_share=cpu / (wall * (os.cpu_count() or 1)),
    )


def interleave(targets: dict, *, rounds: int, slice_s: float, connections: int = 8, cpu_of=None) -> dict[str, dict]:
    """Measure several servers in alternating slices (A B C A B C …) so that every one of them meets
    the same background load on average: on a shared machine, sequential runs minutes apart compare
    the neighbours' activity as much as the servers.

    `targets`: name → (url, requests). `cpu_of`: name → callable returning the server's CPU seconds
    (optional), for CPU time per request. Throughput is total requests / total time; latency
    percentiles are the median over the slices (and the worst slice's p99 is kept).
    """
    slices: dict[str, list[LoadResult]] = {name: [] for name in targets}
    cpu: dict[str, float] = {name: 0.0 for name in targets}
    for _ in range(rounds):
        for name, (url, reqs) in targets.items():
            before = cpu_of[name]() if cpu_of else 0.0
            slices[name].append(run_wrk(url, reqs, connections=connections, seconds=slice_s))
            if cpu_of:
                cpu[name] += cpu_of[name]() - before
    out = {}
    for name, runs in slices.items():
        total = sum(r.requests for r in runs)
        secs = sum(r.seconds for r in runs)
        out[name] = {
            "requests": total, "seconds": round(secs, 3), "rps": round(total / secs, 3) if secs else 0.0,
            "p50_ms": round(_median([r.p50_ms for r in runs]), 3), "p99_ms": round(_median([r.p99_ms for r in runs]), 3),
            "p99_worst_slice_ms": round(max(r.p99_ms for r in runs), 3),
            "errors": sum(r.errors for r in runs), "non_2xx": sum(r.non_2xx for r in runs),
            "loadgen_cpu_share": round(_median([r.loadgen_cpu_share for r in runs]), 4),
            "slices": len(runs),
        }
        if cpu_of:
            out[name]["server_cpu_ms_per_request"] = round(cpu[name] * 1000 / max(1, total), 3)
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2

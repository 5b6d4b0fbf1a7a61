"""Candidate (c) of bench/slow_clients.py: the service under granian (Rust HTTP server, WSGI), preloaded.

`python bench/granian_serve.py PORT|unix:PATH WORKERS THREADS`: the app is built once here, then granian
forks its workers (Linux, Python 3.11: multiprocessing's `fork`), which find it in sys.modules already.
With `unix:PATH` it listens on a unix socket (the `nginx+granian` candidate).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cds_service import create_app  # noqa: E402

app = create_app()

if __name__ == "__main__":
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    sys.modules["granian_preloaded"] = sys.modules[__name__]
    where, workers, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bind = {"uds": Path(where.removeprefix("unix:"))} if where.startswith("unix:") else {"port": int(where)}
    Server("granian_preloaded:app", address="127.0.0.1", **bind, interface=Interfaces.WSGI, workers=workers,
           blocking_threads=threads, backlog=2048, http1_settings=HTTP1Settings(header_read_timeout=10_000, keep_alive=False),
           log_access=False, workers_kill_timeout=10, respawn_failed_workers=True).serve()

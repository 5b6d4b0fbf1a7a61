"""gunicorn settings for `cds-service serve` and for `gunicorn -c cds_service/server/gunicorn_conf.py`.

Chosen by measurement (bench/README.md, "Worker class"): `gthread`, so that a worker's threads keep
working while one waits on the EHR's FHIR server (a `sync` worker idles through every round trip);
torch runs one thread per worker. Each connection serves one request (`keepalive = 0`) and a
worker holds at most `threads` connections: a worker then takes a new call only when it has a free
thread, and the kernel hands it to a worker that can start it. With keep-alive, the connections a
worker happened to accept stayed with it: 63-77% of the calls went to one of two workers.
"""
import gc
import os
from pathlib import Path

from cds_service.config import Settings

# The same settings the app reads (TOML from CDS_CONFIG, then CDS_* variables): `workers`, `threads`.
_settings = Settings.load()

wsgi_app = "cds_service:create_app()"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
worker_connections = threads  # gthread: no accepting while every thread is busy (balance across workers)
timeout = 30
graceful_timeout = 10  # SIGTERM: calls in flight get this long to finish (tests/integration/test_scale_out.py)
keepalive = 0  # one request per connection; put a reverse proxy in front for TLS and client keep-alive
accesslog = None  # our own JSON call log replaces the access log (no query strings with ids)
# gunicorn believes X-Forwarded-Proto from loopback unless told otherwise: only configured proxies are.
forwarded_allow_ips = ",".join(_settings.forwarded_allow_ips)
preload_app = True
# gunicorn 27's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), shared by
# every server that user runs; nothing here uses it.
control_socket_disable = True


# Python's cyclic garbage collector (bench/profile_s1.py, measured): a 53 KB prefetch body decodes into
# thousands of containers, so every call triggered several collections, and the older generations walked
# every object of the loaded app (models, pydantic schemas): about a fifth of a call's CPU. The app's
# objects are frozen out of collection once loaded (before the fork, which also keeps their pages shared
# with the master), and the young generation is collected every GC_THRESHOLD[0] allocations instead of
# 700. Reference counting still frees everything that is not a cycle at once.
GC_THRESHOLD = (20000, 20, 20)


def pre_fork(server, worker):
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    gc.set_threshold(*GC_THRESHOLD)
    try:
        import torch  # lazy: an install that serves only equations may have no torch

        torch.set_num_threads(_settings.torch_threads)
    except ImportError:
        pass


# Prometheus multiprocess mode (cds_service/http/metrics.py): each worker writes its values to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics sums them. Stale files from an earlier run would add old
# counts, so the directory is emptied when the server starts; an exited worker's live values go.
def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # lazy: see cds_service/http/metrics.py (Metrics)

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """A worker that stops (SIGTERM, max requests, reload) first commits the call rows it has queued
    (storage/call_writes.py, after-answer); a worker killed with SIGKILL cannot, see the README."""
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", None) or {}
    if "cds_call_writes" in extensions:
        extensions["cds_call_writes"].settle()

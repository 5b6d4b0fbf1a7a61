"""gunicorn settings for `cds-service serve` and for `gunicorn -c cds_service/gunicorn_conf.py`.

Threads keep a worker busy while it waits on the EHR's FHIR server; torch runs one thread per worker.
"""
import os
from pathlib import Path

from cds_service.config import Settings

# The same settings the app reads (TOML from CDS_CONFIG, then CDS_* variables): `workers`, `threads`.
_settings = Settings.load()

wsgi_app = "cds_service:create_app()"
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # our own JSON call log replaces the access log (no query strings with ids)
preload_app = True


def post_fork(server, worker):
    try:
        import torch

        torch.set_num_threads(_settings.torch_threads)
    except ImportError:
        pass


# Prometheus multiprocess mode (cds_service/metrics.py): each worker writes its values to files in
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
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

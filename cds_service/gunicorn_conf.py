"""gunicorn settings for `cds-service serve` and for `gunicorn -c cds_service/gunicorn_conf.py`.

Threads keep a worker busy while it waits on the EHR's FHIR server; torch runs one thread per worker.
"""
import os

wsgi_app = "cds_service:create_app()"
workers = int(os.environ.get("CDS_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("CDS_THREADS", "4"))
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # our own JSON call log replaces the access log (no query strings with ids)
preload_app = True


def post_fork(server, worker):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

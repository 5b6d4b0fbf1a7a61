# CDS Hooks service for ML models and clinical equations: production image.
#   docker build -t cds-hooks-ml .
#   docker run -p 8080:8080 -v "$PWD/my-config.toml:/config/cds.toml:ro" -e CDS_CONFIG=/config/cds.toml cds-hooks-ml
# Settings come from the TOML file in CDS_CONFIG and CDS_* variables (README, "Configuration").
# Without a configuration, authentication is on and no client is trusted: every call gets 401.
#
# Topology inside the container (README, "What faces the network"): port 8080 is nginx, which reads every
# request whole (header deadline, body idle timeout, size limit) before gunicorn's workers see it, over a
# unix socket in a private directory. `cds-service serve` (PID 1) starts and supervises both; SIGTERM
# drains nginx, then gunicorn. TLS terminates in front of the container (a load balancer or ingress).

# ---- build: a wheel of this project (sources and tests stay out of the final image)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY fhir_adapters ./fhir_adapters
COPY models ./models
COPY hooks ./hooks
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# nginx, the front of `cds-service serve`: Debian's package, updated with the base image (not pinned, so
# a rebuild takes the distribution's security fixes). Its system service is never started.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

# torch first, pinned to the CPU wheel: an unpinned torch from PyPI pulls the CUDA build (several GB).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

# A non-root user owning only what the service writes: the SQLite database and the metrics files.
RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cds \
    && mkdir -p /app/var /tmp/cds-metrics \
    && chown 10001:10001 /app/var /tmp/cds-metrics
WORKDIR /app
USER 10001:10001

# SQLite by default (mount /app/var to keep it); PostgreSQL: CDS_DATABASE_URL=postgresql+psycopg://…
# (install the [postgres] extra). Several gunicorn workers share /metrics through these files.
ENV CDS_DATABASE_URL=sqlite:////app/var/cds-service.sqlite3 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/cds-metrics
VOLUME ["/app/var"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]

# nginx on 0.0.0.0:8080 in front of gunicorn with the one checked-in configuration
# (cds_service/server/gunicorn_conf.py: gthread workers, models loaded once before forking, our JSON call
# log instead of the access log). `docker stop` sends SIGTERM: allow it 25 s (`--time 25`) so that nginx
# and then gunicorn can finish the calls in flight; `docker run --init` reaps any orphaned process.
CMD ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8080"]

"""JSON log lines. Only whitelisted, PHI-free fields are written (habit 13)."""
from __future__ import annotations

import logging
import time

import orjson

# Fields a log call may attach with `extra=`; anything else (a token, a body) never reaches the line.
ALLOWED_FIELDS = ("event", "service", "hook", "hookInstance", "status", "latency_ms", "error", "path", "method",
                  "iss", "tenant", "jti", "outcome", "timings", "cards", "fhir_calls", "reason", "setting")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": round(time.time(), 3), "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
                "pid": record.process}  # which gunicorn worker: ties a crash or a leak to the calls it served
        for key in ALLOWED_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str) -> None:
    """Attach one JSON handler to the service's loggers (idempotent across app instances)."""
    for name in ("cds_service", "fhir_adapters", "models"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(getattr(h, "_cds_json", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            handler._cds_json = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.propagate = True

"""Settings: embedded defaults, then a TOML file (`--config`), then `CDS_*` environment variables,
then explicit overrides (tests). Validated once, frozen, and handed to everything that needs it.

Nested TOML tables flatten with an underscore: `[auth] required = false` is `auth_required`,
and so is `CDS_AUTH_REQUIRED=false`. Environment values are JSON-decoded when they parse
(`CDS_CORS_ORIGINS='["https://sandbox.cds-hooks.org"]'`), else taken as strings.

A mistake names where the setting was given, as it was written there: the file, line and key
(`cds.toml:7: [auth] requird`) or the environment variable (`CDS_AUTH_REQUIRD`), with the known setting a
misspelt one was probably meant to be.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import hooks
from cds_service.builders.links import DEFAULT_KINDS
from cds_service.errors import ConfigError
from cds_service.security.algorithms import SUPPORTED_ALGORITHMS
from cds_service.security.trusted_clients import parse_clients
from hooks.toml_text import did_you_mean, key_lines

__all__ = ["ConfigError", "Settings"]

DEFAULT_DB = Path.cwd() / "var" / "cds-service.sqlite3"


@dataclass(frozen=True)
class Settings:
    # Public URL of this service as callers see it (the JWT `aud` check and card links use it). Required
    # when authentication is on; without it (development) links follow the request's Host header.
    public_base_url: str | None = None
    # Peers whose X-Forwarded-Proto (and the other forwarded headers gunicorn reads) are believed: the
    # reverse proxy in front of us, as IPs or networks. Empty: no peer is, not even loopback.
    forwarded_allow_ips: tuple[str, ...] = ()
    # SEC-2: every call must carry a valid JWT unless this is explicitly false (development only).
    auth_required: bool = True
    # Trusted EHR clients: iss, jwks_url / jwks / jwks_file, jku, fhir_servers, tenants.
    clients: tuple = ()
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS384")
    jwt_leeway_s: int = 60
    jwt_max_lifetime_s: int = 3600
    # JWK Sets fetched from allow-listed URLs (SEC-7): timeout per request, at most one refresh per URL
    # per `jwks_refresh_min_s` (unknown kid), and re-fetched when older than `jwks_max_age_s`.
    jwks_timeout_s: float = 3.0
    jwks_refresh_min_s: int = 60
    jwks_max_age_s: int = 3600
    # SQLAlchemy URL: SQLite by default (embedded), PostgreSQL with postgresql+psycopg://…
    database_url: str = f"sqlite:///{DEFAULT_DB}"
    # SQLite only: FULL fsyncs each commit (survives power loss); NORMAL survives process crashes only,
    # and is several times faster with many workers (bench/README.md).
    sqlite_synchronous: str = "FULL"
    # When a call's rows (audit, issued cards, explanation) are committed (storage/call_writes.py):
    # "after-answer" (default) by the writer thread after the answer has left, from a bounded queue of at
    # most `call_writes_queue_max` calls (a full queue refuses calls with 500); "before-answer" waits for
    # the commit, and a failed write turns the answer into a 500. README, "Durability of call records".
    call_writes: str = "after-answer"
    call_writes_queue_max: int = 10000
    # CORS-1: browser origins allowed to call us (never "*").
    cors_origins: tuple[str, ...] = ()
    # Answer Chrome's Private Network Access preflight (a public page such as the CDS Hooks Sandbox calling a
    # service on a private or loopback address) for those origins; `[cors] allow_private_network`.
    cors_allow_private_network: bool = False
    hooks_dir: str = str(hooks.SERVICES_DIR)
    model_dir: str = str(Path(__file__).resolve().parent.parent / "models" / "artifacts")
    # Outbound FHIR: (connect, read) timeouts, page cap, per-invocation deadline.
    fhir_timeout: tuple[float, float] = (1.0, 2.0)
    fhir_max_pages: int = 5
    fhir_max_workers: int = 6
    # GETs answered 429/502/503/504 are retried this many times (urllib3 Retry, exponential backoff), never past the deadline.
    fhir_retries: int = 2
    fhir_retry_backoff_s: float = 0.05
    deadline_s: float = 1.5
    # FHIR servers we may call when authentication is off (development); with auth on, each client's list applies.
    fhir_servers: tuple[str, ...] = ()
    # Plain-http FHIR servers may receive a bearer token only when this says so (REQ-3).
    fhir_allow_http: bool = False
    max_body_bytes: int = 5 * 1024 * 1024
    max_json_depth: int = 64
    torch_threads: int = 1
    # Production server (cds_service/server/gunicorn_conf.py): worker processes and threads per worker.
    workers: int = 2
    threads: int = 4
    # The front of the production server (nginx, cds_service/server/proxy.py): a request's headers must
    # arrive within header_timeout_s of its first byte; its body may pause at most body_timeout_s between
    # two reads; at most max_connections client and upstream connections are open at once.
    header_timeout_s: int = 10
    body_timeout_s: int = 10
    max_connections: int = 4096
    # Redis: when set, the JWT replay cache lives there (shared by every worker and host).
    redis_url: str = ""
    # Seconds a FHIR search result is cached in Redis per server, token and query; 0 = off.
    fhir_cache_ttl_s: int = 0
    log_level: str = "INFO"
    # Salt for hashing patient ids in audit records (set it in production; random per process otherwise).
    audit_salt: str = ""
    # Serve the explanation and feedback-analytics pages; `[ui] enabled`.
    ui_enabled: bool = True
    # Serve the EHR simulator (`[ui] simulator`): it signs requests with a demo key whose private half is
    # public in this repository, so it is off unless a demo configuration turns it on.
    ui_simulator: bool = False
    # The care-management worklist `/population` (`[ui] population`): a parquet file written by
    # `cds-service population score`. Empty = no page. It lists patients with their risks, so it is served
    # only to the operator login of /analytics: it needs `analytics_token`.
    ui_population: str = ""
    # How long an explanation page's record is kept after the call that produced it (seconds); the page
    # states it. A card's link opens the page for the shorter of this and `ui_explain_link_ttl_s`.
    ui_explain_ttl_s: int = 86400
    # Explanation links are capability URLs (security/capability.py): HMAC-signed with this secret (at least
    # 32 characters; required when the pages are on, except the demo configuration, which makes one per
    # process) and valid for `ui_explain_link_ttl_s` (a shift, 8 h, by default; never past the record's TTL).
    ui_link_secret: str = field(default="", repr=False)
    ui_explain_link_ttl_s: int = 28800
    # `/analytics` (feedback rates and override reasons per client): off unless an operator token is set.
    # Sent as `Authorization: Bearer <token>`, or as the password of HTTP Basic login `analytics_user`.
    analytics_token: str = field(default="", repr=False)
    analytics_user: str = "operator"
    # Which links to the explanation page each ML/equation card carries (`[ui] explain_links`, LINK-1):
    # "smart" (launched by the EHR, the card's context in `appContext`) and/or "absolute" (opens as is;
    # the fallback for EHRs that cannot pass appContext, e.g. Oracle Health).
    ui_explain_links: tuple[str, ...] = DEFAULT_KINDS
    # SMART App Launch of the explanation page (`[smart]`). Per EHR, `smart_client_id` and
    # `smart_auth_origins` go in its [[clients]] entry; these two apply to `fhir_servers` (auth off).
    smart_client_id: str = ""
    smart_auth_origins: tuple[str, ...] = ()
    # Scopes asked for: the page reads nothing from the FHIR server, it only needs the launch context.
    smart_scope: str = "launch"
    # (connect, read) timeouts of the discovery and token requests; how long a started launch may take.
    smart_timeout: tuple[float, float] = (2.0, 5.0)
    smart_launch_ttl_s: int = 600
    # An EHR's SMART configuration is read once per `smart_discovery_ttl_s` (a failed read is retried after
    # `smart_discovery_failure_ttl_s`), and each process starts at most `smart_launches_per_minute` launches
    # per EHR: anonymous hits on /smart/launch cost neither the EHR nor our database more than that.
    smart_discovery_ttl_s: int = 300
    smart_discovery_failure_ttl_s: int = 30
    smart_launches_per_minute: int = 60
    # How long the alert controls remember the cards built (shown or held back, live or shadow) and the
    # shadow report can look back, in days; a service's repeat window may not be longer.
    alert_history_days: int = 90
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, config_file: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> "Settings":
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        env = os.environ if env is None else env
        config_file = config_file or env.get("CDS_CONFIG")
        if config_file:
            path = Path(config_file)
            try:
                text = path.read_text(encoding="utf-8")
                data = tomllib.loads(text)
            except FileNotFoundError:
                raise ConfigError(f"config file not found: {path}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from None
            lines = key_lines(text)
            for name, (value, written) in _flatten(data).items():
                values[name] = value
                origins[name] = Origin("file", written, str(path), lines)
        for key, raw in env.items():
            if key.startswith("CDS_") and key != "CDS_CONFIG":
                values[key[4:].lower()] = _decode(raw)
                origins[key[4:].lower()] = Origin("env", (key,))
        for key, value in (overrides or {}).items():
            values[key.lower()] = value
            origins.pop(key.lower(), None)
        return cls.from_mapping(values, origins)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], origins: Mapping[str, "Origin"] | None = None) -> "Settings":
        """Settings from flat names; `origins` says where each was given (its errors then name that place)."""
        origins = origins or {}
        try:
            return cls._from_mapping(values, origins)
        except ConfigError as exc:
            raise _located(exc, origins) from None

    @classmethod
    def _from_mapping(cls, values: Mapping[str, Any], origins: Mapping[str, "Origin"]) -> "Settings":
        known = {f.name: f for f in fields(cls)}
        unknown = [name for name in values if name not in known]
        if unknown:
            raise ConfigError("\n".join(_unknown(name, origins.get(name), known) for name in unknown))
        clean: dict[str, Any] = {}
        for name, value in values.items():
            default = known[name].default
            if isinstance(default, bool):
                if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                    value = value.lower() in ("true", "1", "yes")
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} must be true or false")
            elif isinstance(default, tuple):
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{name} must be a list")
                value = tuple(value)
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{name} must be a number") from None
            clean[name] = value
        if "clients" in clean:  # frozen TrustedClient entries, checked here (ConfigError names the field)
            clean["clients"] = parse_clients(clean["clients"])
        settings = cls(**clean)
        settings.validate()
        return settings

    def validate(self) -> None:
        if "*" in self.cors_origins:
            raise ConfigError("cors_origins must list origins; '*' is not allowed (CORS-1)")
        if self.public_base_url and not self.public_base_url.startswith(("http://", "https://")):
            raise ConfigError("public_base_url must be an absolute URL")
        bad = [a for a in self.jwt_algorithms if a.upper().startswith("HS") or a.lower() == "none"]
        if bad:
            raise ConfigError(f"jwt_algorithms may not include {', '.join(bad)} (SEC-6)")
        unsupported = [a for a in self.jwt_algorithms if a not in SUPPORTED_ALGORITHMS]
        if unsupported:
            raise ConfigError(f"jwt_algorithms: unsupported {', '.join(unsupported)} "
                              f"(choose from {', '.join(SUPPORTED_ALGORITHMS)})")
        if self.jwt_leeway_s < 0 or self.jwt_max_lifetime_s <= 0:
            raise ConfigError("jwt_leeway_s must be >= 0 and jwt_max_lifetime_s > 0")
        for entry in self.forwarded_allow_ips:
            try:
                if entry != "*":
                    ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"forwarded_allow_ips: '{entry}' is not an IP address, a network or *") from None
        if min(self.workers, self.threads, self.header_timeout_s, self.body_timeout_s, self.max_connections) < 1:
            raise ConfigError("workers, threads, header_timeout_s, body_timeout_s and max_connections must be at least 1")
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError("sqlite_synchronous must be FULL or NORMAL")
        if self.call_writes not in ("after-answer", "before-answer"):
            raise ConfigError("call_writes must be after-answer or before-answer")
        if self.call_writes_queue_max < 1:
            raise ConfigError("call_writes_queue_max must be at least 1")
        if len(self.fhir_timeout) != 2:
            raise ConfigError("fhir_timeout must be [connect, read] seconds")
        if len(self.smart_timeout) != 2 or not all(isinstance(t, (int, float)) and t > 0 for t in self.smart_timeout):
            raise ConfigError("smart_timeout must be [connect, read] seconds")
        unknown_links = [k for k in self.ui_explain_links if k not in ("smart", "absolute")]
        if unknown_links:
            raise ConfigError(f"ui_explain_links: unknown link type(s) {', '.join(map(str, unknown_links))} "
                              "(choose from smart, absolute; LINK-1)")
        if self.ui_explain_link_ttl_s <= 0 or self.ui_explain_ttl_s <= 0:
            raise ConfigError("ui_explain_link_ttl_s and ui_explain_ttl_s must be > 0")
        if self.alert_history_days <= 0:
            raise ConfigError("alert_history_days must be > 0")
        if self.analytics_token and len(self.analytics_token) < 16:
            raise ConfigError("analytics_token must be at least 16 characters")
        if self.ui_population and not self.analytics_token:
            raise ConfigError("ui_population needs analytics_token: the worklist lists patients and is served "
                              "to the operator login only")
        if "launch" not in self.smart_scope.split():
            raise ConfigError("smart_scope must include 'launch' (the EHR launch context carries the card's appContext)")


@dataclass(frozen=True)
class Origin:
    """Where a setting was given: a TOML file (its key path as written, and the file's key lines) or an
    environment variable (`path` is its name)."""

    kind: str  # "file" or "env"
    path: tuple[str | int, ...]
    file: str = ""
    lines: Mapping[tuple, int] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        if self.kind == "env":
            return f"environment variable {self.path[0]}"
        line = self.lines.get(self.path)
        return f"{self.file}:{line}: {self.written}" if line else f"{self.file}: {self.written}"

    @property
    def written(self) -> str:
        """`[auth] required` or `public_base_url`, as the file writes it."""
        keys = [str(k) for k in self.path]
        return f"[{'.'.join(keys[:-1])}] {keys[-1]}" if len(keys) > 1 else keys[0]

    def spelling(self, name: str) -> str:
        """How the setting `name` is written where this one was: `CDS_AUTH_REQUIRED`, `[auth] required`, `auth_required`."""
        if self.kind == "env":
            return f"CDS_{name.upper()}"
        table = "_".join(str(k) for k in self.path[:-1]).lower()
        if table and name.startswith(table + "_"):
            return f"[{'.'.join(str(k) for k in self.path[:-1])}] {name[len(table) + 1:]}"
        head, _, rest = name.partition("_")
        return f"[{head}] {rest}" if table and rest else name  # written in a table: suggest a table too

    def line(self, path: tuple) -> int | None:
        """The line of `path` (this setting's path, or one inside it), or of the nearest part of it in the file."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path) if path else None


def _unknown(name: str, origin: Origin | None, known: Mapping[str, Any]) -> str:
    close = did_you_mean(name, known)
    if origin is None:
        return f"unknown setting '{name}'" + (f" (did you mean '{close}'?)" if close else "")
    return f"{origin}: unknown setting" + (f" (did you mean '{origin.spelling(close)}'?)" if close else "")


_SETTING = re.compile(r"^([a-z][a-z0-9_]*)((?:\[\d+\]|\.[a-z][a-z0-9_]*| \([^)]*\))*)")
_PART = re.compile(r"\[(\d+)\]|\.([a-z][a-z0-9_]*)")


def _located(exc: ConfigError, origins: Mapping[str, Origin]) -> ConfigError:
    """`exc`, said at the place its setting was given. A message starting with a setting's name
    (`auth_required must …`, `clients[1] (iss).jku[0]: …`) gets that setting's environment variable, or its
    file and the line of the part it names, in front; a plain name is replaced by the key as written."""
    text = str(exc)
    m = _SETTING.match(text)
    origin = origins.get(m.group(1)) if m else None
    if m is None or origin is None:
        return exc
    if m.group(2):  # a part of the setting: keep the message's own path, point at that part's line
        inner = tuple(int(index) if index else key for index, key in _PART.findall(m.group(2)))
        line = origin.line(origin.path + inner) if origin.kind == "file" else None
        place = f"{origin.file}:{line}" if line else (origin.file if origin.kind == "file" else str(origin))
        return ConfigError(f"{place}: {text}")
    return ConfigError(f"{origin}: {text[m.end():].strip()}")


def _flatten(data: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """Flat setting name → (value, the key path as written in the file)."""
    out: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for key, value in data.items():
        name = "_".join(path + (key,)).lower()
        if isinstance(value, dict) and name not in ("extra",):
            out.update(_flatten(value, path + (key,)))
        else:
            out[name] = (value, path + (key,))
    return out


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw

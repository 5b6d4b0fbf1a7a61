"""Trusted EHR clients from the configuration (SEC-7): who may call us, with which keys,
and to which FHIR servers they may send us.

One `[[clients]]` table per client:

    [[clients]]
    iss = "https://sandbox.cds-hooks.org"                                # exact `iss` claim
    jwks_url = "https://sandbox.cds-hooks.org/.well-known/jwks.json"   # and/or jwks = {keys=[…]} / jwks_file = "…"
    jku = ["https://sandbox.cds-hooks.org/.well-known/jwks.json"]      # `jku` header values allowed
    fhir_servers = ["https://fhir.example.org/r4"]                     # where this client may send us
    tenants = ["…"]                                                    # optional: allowed `tenant` claims
    smart_client_id = "…"        # optional: our client id at this EHR's authorization server (SMART launch
                                 # of the explanation page from its fhir_servers)
    smart_auth_origins = ["https://authorization.example.org"]  # optional: where its OAuth endpoints may live
                                 # besides the origins of its fhir_servers

Everything is checked once at start; a mistake is a `ConfigError` naming the field, and the
service refuses to start. Key material from `jwks` / `jwks_file` is loaded here, so a broken
file stops the start rather than the first call.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import jwt

from cds_service.errors import ConfigError
from hooks.toml_text import did_you_mean

# Relative `jwks_file` paths: first the working directory, then the directory holding the
# `cds_service` package (so `cds_service/demo/jwks.json` works from a checkout and when installed).
PACKAGE_PARENT = Path(__file__).resolve().parents[2]

_FIELDS = ("iss", "jwks_url", "jwks", "jwks_file", "jku", "fhir_servers", "tenants", "smart_client_id",
           "smart_auth_origins")
# JWK members that only a private key has: never kept, the service only verifies.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True)
class TrustedClient:
    iss: str
    jwks_url: str | None = None
    # Keys configured out of band (`jwks` inline or `jwks_file`): public JWKs, looked up by `kid` first.
    static_keys: tuple[Mapping[str, Any], ...] = ()
    jku: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    smart_client_id: str = ""
    smart_auth_origins: tuple[str, ...] = ()

    @property
    def key_urls(self) -> frozenset[str]:
        """Every URL we may fetch this client's JWK Set from (SEC-7: never a URL outside this set)."""
        return frozenset(self.jku) | ({self.jwks_url} if self.jwks_url else set())


def parse_clients(value: Any) -> tuple[TrustedClient, ...]:
    """Turn the `clients` setting (a list of tables, or already-parsed clients) into TrustedClients."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError("clients must be a list of [[clients]] tables")
    clients: list[TrustedClient] = []
    for i, entry in enumerate(value):
        client = entry if isinstance(entry, TrustedClient) else _parse_one(i, entry)
        if any(c.iss == client.iss for c in clients):
            raise ConfigError(f"clients[{i}].iss: '{client.iss}' is configured twice")
        clients.append(client)
    return tuple(clients)


def _parse_one(i: int, entry: Any) -> TrustedClient:
    where = f"clients[{i}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table with at least 'iss'")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        close = did_you_mean(unknown[0], _FIELDS)
        hint = f"did you mean '{close}'?" if close else f"allowed: {', '.join(_FIELDS)}"
        raise ConfigError(f"{where}.{unknown[0]}: unknown field ({hint})")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss.strip():
        raise ConfigError(f"{where}.iss is required (the exact `iss` claim of the client's tokens)")
    where = f"{where} ({iss})"
    jwks_url = entry.get("jwks_url")
    if jwks_url is not None:
        jwks_url = _key_url(jwks_url, f"{where}.jwks_url")
    jku = tuple(_key_url(u, f"{where}.jku[{j}]") for j, u in enumerate(_str_list(entry.get("jku"), f"{where}.jku")))
    if "jwks" in entry and "jwks_file" in entry:
        raise ConfigError(f"{where}: give either jwks or jwks_file, not both")
    static: tuple[Mapping[str, Any], ...] = ()
    if "jwks" in entry:
        static = parse_jwks(entry["jwks"], f"{where}.jwks")
    elif "jwks_file" in entry:
        static = _load_jwks_file(entry["jwks_file"], f"{where}.jwks_file")
    if not (jwks_url or jku or static):
        raise ConfigError(f"{where}: needs keys: jwks_url, jku, jwks or jwks_file")
    fhir_servers = _str_list(entry.get("fhir_servers"), f"{where}.fhir_servers")
    for j, url in enumerate(fhir_servers):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}.fhir_servers[{j}]: '{url}' is not an absolute http(s) URL")
    tenants = _str_list(entry.get("tenants"), f"{where}.tenants")
    smart_client_id = entry.get("smart_client_id", "")
    if not isinstance(smart_client_id, str):
        raise ConfigError(f"{where}.smart_client_id must be a string")
    if smart_client_id.strip() and not fhir_servers:
        raise ConfigError(f"{where}.smart_client_id needs fhir_servers: the SMART launch `iss` must be one of them")
    smart_auth_origins = tuple(_origin(u, f"{where}.smart_auth_origins[{j}]") for j, u in
                               enumerate(_str_list(entry.get("smart_auth_origins"), f"{where}.smart_auth_origins")))
    return TrustedClient(iss=iss, jwks_url=jwks_url, static_keys=static, jku=jku, fhir_servers=fhir_servers,
                         tenants=tenants, smart_client_id=smart_client_id.strip(), smart_auth_origins=smart_auth_origins)


def _origin(url: str, where: str) -> str:
    """scheme://host[:port] of an https URL (plain http only for a loopback host)."""
    checked = _key_url(url, where)
    parts = urlsplit(checked)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{where}: '{url}' must be an origin (scheme://host[:port]), without a path")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _key_url(url: Any, where: str) -> str:
    """A JWK Set URL (or OAuth origin): https, or plain http to a loopback host only (a local EHR simulator)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where} must be a URL")
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return url.strip()
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url.strip()
    raise ConfigError(f"{where}: '{url}' must be an https URL (plain http only for 127.0.0.1/localhost), "
                        "since what travels over plain http could be read or swapped in transit")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_jwks_file(value: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a path")
    path = Path(value)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, PACKAGE_PARENT / path]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise ConfigError(f"{where}: file not found: {value}")
    try:
        data = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {found} is not a readable JSON file ({type(exc).__name__})") from None
    return parse_jwks(data, where)


def parse_jwks(data: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    """Check a configured JWK Set: asymmetric signing keys with a `kid`; private members dropped."""
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise ConfigError(f"{where} must be a JWK Set: {{\"keys\": [ … ]}} with at least one key")
    keys = []
    for k, jwk in enumerate(data["keys"]):
        at = f"{where}.keys[{k}]"
        if not isinstance(jwk, Mapping):
            raise ConfigError(f"{at} must be an object")
        if jwk.get("kty") not in ("RSA", "EC"):
            # SEC-6: symmetric ("oct") keys would mean HMAC tokens; never.
            raise ConfigError(f"{at}.kty must be RSA or EC (asymmetric keys only, SEC-6)")
        if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            raise ConfigError(f"{at}.kid is required (tokens select their key by kid, SEC-3)")
        if jwk.get("use") not in (None, "sig"):
            raise ConfigError(f"{at}.use must be 'sig'")
        public = {name: v for name, v in jwk.items() if name not in _PRIVATE_MEMBERS}
        try:
            jwt.PyJWK(dict(public), public.get("alg"))
        except Exception as exc:  # pyjwt raises KeyError/ValueError as well as PyJWTError on bad members
            raise ConfigError(f"{at}: not a usable public key ({exc.__class__.__name__})") from None
        keys.append(MappingProxyType(public))
    return tuple(keys)

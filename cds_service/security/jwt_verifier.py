"""Verify the EHR's signed JWT (CDS Hooks 2.0 §Trusting CDS Clients; checklist SEC-3..10).

`Verifier.verify(token, audiences)` returns the caller's `ClientIdentity` or raises `AuthError`
(→ bare 401, SEC-10). The order follows SEC-8, with the cheap, key-free checks first:

1. header: `alg` on the asymmetric allow-list (checked BEFORE any key is chosen, so `none` and
   HS* never reach a key), `typ` JWT, `kid` present, no `crit` (SEC-3, SEC-6);
2. `iss` names a configured client; a `jku` header must be on that client's list, otherwise it is
   refused without a single request to it (SEC-7);
3. key by `kid`: the client's configured keys first, then its allow-listed JWK Set URL (cached,
   refreshed at most once per `jwks_refresh_min_s` when an unknown `kid` appears);
4. signature with `algorithms=[that one alg]`, `aud` equal to the endpoint URL (string or array),
   the required claims iss/aud/exp/iat/jti (SEC-4, SEC-5);
5. time: `exp`, `nbf`, `iat` with `jwt_leeway_s` skew, `iat` not in the future, `exp - iat` at
   most `jwt_max_lifetime_s` (SEC-9); then `tenant` when the client restricts tenants;
6. `jti` never accepted twice within its lifetime, in a store all workers share (SEC-8).

The token itself is never logged; a rejection logs its reason with `iss` and `jti` only (SEC-10).

The parts it uses: `algorithms` (allowed algs and their key kinds), `trusted_clients` (who may
call, with which keys), `jwks` (JWK Sets fetched and cached), `replay` (the jti stores).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, TypeGuard
from urllib.parse import urlsplit

import jwt
import requests
from sqlalchemy.engine import Engine

from cds_service.errors import AuthError
from cds_service.security.algorithms import KEY_KIND
from cds_service.security.identity import ClientIdentity
from cds_service.security.jwks import JwksCache
from cds_service.security.replay import ReplayStore, make_replay_store, replay_key
from cds_service.security.trusted_clients import TrustedClient

log = logging.getLogger("cds_service.security.auth")

MAX_TOKEN_CHARS = 16_384  # far above any real CDS Hooks JWT; bounds the work an attacker can cause
_REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")  # SEC-4


class TokenRejected(Exception):
    """Internal: why a token failed. Becomes an `AuthError` whose message is the PHI-free reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Verifier:
    def __init__(self, clients: tuple[TrustedClient, ...], *, algorithms: tuple[str, ...], leeway_s: float,
                 max_lifetime_s: float, replay_store: ReplayStore, jwks: JwksCache,
                 clock: Callable[[], float] = time.time):
        # SEC-6: never none or HS*, whatever the settings say (they refuse it too).
        self._algorithms = frozenset(a for a in algorithms if a in KEY_KIND)
        self._clients = {c.iss: c for c in clients}
        self._leeway = leeway_s
        self._max_lifetime = max_lifetime_s
        self._replay = replay_store
        self._jwks = jwks
        self._clock = clock

    @classmethod
    def from_settings(cls, settings, engine: Engine, *, clock: Callable[[], float] = time.time,
                      session: requests.Session | None = None) -> "Verifier":
        if not settings.clients:
            log.warning("authentication is required but no [[clients]] are configured: every call will get 401",
                        extra={"event": "no_trusted_clients", "setting": "clients"})
        base = urlsplit(settings.public_base_url or "")
        if base.scheme == "http" and base.hostname not in ("127.0.0.1", "localhost", "::1"):
            log.warning("public_base_url is plain http: EHRs must call this service over TLS (SEC-1)",
                        extra={"event": "no_tls", "setting": "public_base_url"})
        cache = JwksCache(timeout=(settings.jwks_timeout_s, settings.jwks_timeout_s),
                          min_refresh_s=settings.jwks_refresh_min_s, max_age_s=settings.jwks_max_age_s,
                          clock=clock, session=session)
        return cls(settings.clients, algorithms=settings.jwt_algorithms, leeway_s=settings.jwt_leeway_s,
                   max_lifetime_s=settings.jwt_max_lifetime_s, replay_store=make_replay_store(settings, engine, clock=clock),
                   jwks=cache, clock=clock)

    def verify(self, token: str, audiences: list[str]) -> ClientIdentity:
        claimed: dict[str, Any] = {}
        try:
            return self._verify(token, audiences, claimed)
        except TokenRejected as exc:
            # SEC-10: the reason stays in our log (INFO), never in the response; iss/jti only.
            log.info("JWT rejected", extra={"event": "auth_failed", "reason": exc.reason,
                                            "iss": _short(claimed.get("iss")), "jti": _short(claimed.get("jti"))})
            raise AuthError(exc.reason) from None

    def _verify(self, token: str, audiences: list[str], claimed: dict[str, Any]) -> ClientIdentity:
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise TokenRejected("malformed")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise TokenRejected("malformed") from None
        claimed.update(iss=unverified.get("iss"), jti=unverified.get("jti"))

        # 1. Header. alg first: `none` and HS* are refused before any key is looked at (SEC-6).
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise TokenRejected("alg")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise TokenRejected("typ")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("kid missing")
        if "crit" in header:  # RFC 7515 §4.1.11: we understand no extensions, so we must refuse
            raise TokenRejected("crit")

        # 2. Issuer and jku allow-lists (SEC-7, SEC-8).
        iss = unverified.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise TokenRejected("iss not trusted" if iss else "iss missing")
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in client.key_urls):
            raise TokenRejected("jku not allowed")  # no request is made to it

        # 3. Key by kid, of the kind the (allowed) alg needs.
        key = self._key(client, kid, alg, jku)
        if key is None:
            raise TokenRejected("kid unknown")

        # 4. Signature, aud and the required claims, with exactly one algorithm (RFC 8725 §2.1).
        try:
            claims = jwt.decode(
                token, key=key, algorithms=[alg], audience=list(audiences), issuer=client.iss,
                options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_aud": True, "verify_iss": True,
                         "enforce_minimum_key_length": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"{exc.claim} missing") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("aud") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature") from None
        except jwt.InvalidKeyError:  # e.g. an RSA key under 2048 bits (enforce_minimum_key_length)
            raise TokenRejected("key too weak") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise TokenRejected("invalid") from None

        # 5. Time (SEC-9), checked here with our clock so skew handling is explicit and testable.
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
        if not (_is_number(exp) and _is_number(iat) and _is_number(nbf)):
            raise TokenRejected("time claims not numbers")
        now = self._clock()
        if exp <= now - self._leeway:
            raise TokenRejected("expired")
        if iat > now + self._leeway:
            raise TokenRejected("iat in the future")
        if nbf > now + self._leeway:
            raise TokenRejected("not yet valid")
        if exp <= iat or exp - iat > self._max_lifetime:
            raise TokenRejected("lifetime")
        jti, sub, tenant = claims.get("jti"), claims.get("sub"), claims.get("tenant")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise TokenRejected("jti")
        if sub is not None and not isinstance(sub, str):
            raise TokenRejected("sub")
        if tenant is not None and not isinstance(tenant, str):
            raise TokenRejected("tenant")
        if client.tenants and tenant not in client.tenants:
            raise TokenRejected("tenant not allowed")

        # 6. Replay, last: only a fully valid token may use up its jti (SEC-8).
        if self._replay.seen_before(replay_key(client.iss, jti), exp + self._leeway):
            raise TokenRejected("jti replayed")
        return ClientIdentity(iss=client.iss, sub=sub, tenant=tenant, jti=jti, fhir_servers=client.fhir_servers,
                              authenticated=True)

    def _key(self, client: TrustedClient, kid: str, alg: str, jku: str | None) -> jwt.PyJWK | None:
        candidates = [k for k in client.static_keys if k.get("kid") == kid]
        if not candidates:
            url = jku or client.jwks_url
            if url is None:
                return None
            candidates = self._jwks.keys_for(url, kid)
        kty, crv = KEY_KIND[alg]
        for jwk in candidates:
            if jwk.get("kty") != kty or (crv and jwk.get("crv") != crv) or jwk.get("alg") not in (None, alg):
                continue
            try:
                return jwt.PyJWK(dict(jwk), algorithm=alg)
            except Exception:  # a malformed published key is simply not a match
                continue
        return None


def _is_number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (NaN would slip through every comparison; Python's json accepts it)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any) -> str | None:
    """An unverified claim for the log: strings only, bounded (it comes from an untrusted token)."""
    return value[:200] if isinstance(value, str) else None

"""Why a service answered 401, said so that the caller knows what to fix.

A CDS service gives a bare 401 (SEC-10: it must not tell a forger which check failed), so the reason is
found here, on the caller's side: what the service did say (`WWW-Authenticate`, RFC 6750 §3), and, when
the token was made here, the token itself — its clock against the service's (`Date`), and, given the
service's configuration (`--config`), every check the service makes (`cds_service.security.jwt_verifier`,
run here with the same settings), or else whether the JWK Set its `jku` names holds the public half of the key.
"""
from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import jwt
import requests

from cds_service.cli.auth import Auth
from cds_service.config import Settings
from cds_service.ehr.signing import Signer
from cds_service.errors import AuthError, ConfigError
from cds_service.security.jwks import JwksCache
from cds_service.security.jwt_verifier import Verifier

_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')
JWKS_TIMEOUT = (3.0, 5.0)


def explain_unauthorized(headers: Mapping[str, str], auth: Auth, url: str, *, config: str | None = None,
                         now: Callable[[], float] = time.time, session: requests.Session | None = None) -> list[str]:
    """Lines saying why `url` answered 401 (with these response `headers`) and what to change."""
    said = www_authenticate(headers.get("WWW-Authenticate", ""))
    if said.get("error") or said.get("error_description"):
        lines = [f"the service says: {': '.join(v for v in (said.get('error'), said.get('error_description')) if v)}"]
    else:
        lines = ["the service gives no reason (a bare 401, as CDS Hooks advises: SEC-10)"]
    if not auth.configured:
        return lines + ["no token was sent: the service requires a signed JWT — give --token-key FILE --token-iss ISS "
                        "(--token-key demo signs as the EHR simulator, which config/demo.toml trusts)"]
    token = auth.static_token or (auth.sign(url) if auth.sign else "")  # configured: one of the two
    try:
        header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return lines + ["the token sent (--token) is not a JWT"]
    lines.append("token: " + ", ".join(f"{k} {v}" for k, v in (("iss", claims.get("iss")), ("aud", claims.get("aud")),
                                                               ("alg", header.get("alg")), ("kid", header.get("kid")),
                                                               ("jku", header.get("jku"))) if v))
    lines += _clock(headers, claims, now())
    if config:
        return lines + _against_configuration(token, claims, header, url, config, session)
    signer = auth.signer
    if signer is not None and header.get("jku"):
        lines += _jku_holds_the_key(header, signer, session)
    return lines + ["to check the token against the clients the service trusts, its audience and its clock rules, "
                    "give the service's configuration: --config FILE (e.g. config/demo.toml)"]


def www_authenticate(value: str) -> dict[str, str]:
    """The parameters of a `Bearer` challenge (RFC 6750 §3): realm, error, error_description, scope."""
    return {m[0] or m[2]: m[1] or m[3] for m in _PARAM.findall(value)}


def _clock(headers: Mapping[str, str], claims: dict, now: float) -> list[str]:
    out = []
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if isinstance(exp, (int, float)) and exp <= now:
        out.append(f"the token expired {now - exp:.0f} s ago (exp): --token sends it as is; make a fresh one, or use --token-key")
    try:
        server = parsedate_to_datetime(headers.get("Date", "")).timestamp()
    except (TypeError, ValueError):
        return out
    skew = now - server
    if abs(skew) > 30:  # the service allows jwt_leeway_s (60 s by default) either way
        side = "ahead of" if skew > 0 else "behind"
        out.append(f"your clock is {abs(skew):.0f} s {side} the service's (its Date header): it sees the token's "
                   f"iat/nbf {'in the future' if skew > 0 else 'too old'} beyond its leeway; set the clock (NTP)")
    if isinstance(iat, (int, float)) and isinstance(exp, (int, float)) and exp - iat > 3600:
        out.append(f"the token lives {exp - iat:.0f} s (exp - iat): the service's default limit is 3600 s (jwt_max_lifetime_s)")
    if isinstance(nbf, (int, float)) and nbf > server + 60:
        out.append("the token is not valid yet at the service's time (nbf)")
    return out


def _against_configuration(token: str, claims: dict, header: dict, url: str, config: str,
                           session: requests.Session | None) -> list[str]:
    """Run the service's own verifier, with the service's settings, on this token."""
    try:
        settings = Settings.load(config)
    except ConfigError as exc:
        return [f"--config {config}: {exc}"]
    base = (settings.public_base_url or f"{urlsplit(url).scheme}://{urlsplit(url).netloc}").rstrip("/")
    expected = base + urlsplit(url).path
    verifier = Verifier(settings.clients, algorithms=settings.jwt_algorithms, leeway_s=settings.jwt_leeway_s,
                        max_lifetime_s=settings.jwt_max_lifetime_s, replay_store=_NothingSeen(),
                        jwks=JwksCache(timeout=(settings.jwks_timeout_s,) * 2, min_refresh_s=0, max_age_s=0, session=session))
    try:
        verifier.verify(token, [expected])
    except AuthError as exc:
        return [f"{Path(config).name} refuses it: {exc.message} — {_fix(exc.message, claims, header, settings, expected)}"]
    return [f"the token passes every check of {Path(config).name} here: the service runs with another configuration "
            f"(public_base_url, [[clients]]) or another clock, or it has seen this token's jti before"]


def _fix(reason: str, claims: dict, header: dict, settings: Settings, expected: str) -> str:
    """What to change for each refusal reason of the verifier."""
    client = next((c for c in settings.clients if c.iss == claims.get("iss")), None)
    trusted = ", ".join(c.iss for c in settings.clients) or "none"
    # The client's lists, for the reasons that can only come from a client found by its iss.
    key_urls = ", ".join(sorted(client.key_urls)) if client else ""
    static_kids = ", ".join(str(k.get("kid")) for k in client.static_keys) if client else ""
    tenants = ", ".join(client.tenants) if client else ""
    fixes: dict[str, Any] = {
        "iss not trusted": lambda: f"no [[clients]] entry has iss '{claims.get('iss')}' (trusted: {trusted}); sign with "
                                   f"one of these as --token-iss, or add the client"
                                   + ("; the demo key signs as iss <--url>/simulator, so --url must be the service's "
                                      "public_base_url" if str(claims.get("iss", "")).endswith("/simulator") else ""),
        "jku not allowed": lambda: f"jku '{header.get('jku')}' is not on the client's list "
                                   f"({key_urls or 'none'}): fix --token-jku or the client's jku",
        "kid unknown": lambda: f"no key with kid '{header.get('kid')}' of the right type among the client's keys "
                               f"(configured: {static_kids or 'none'}; JWK Set: {key_urls or 'none'}): publish the public half of "
                               f"--token-key there, or fix --token-kid / --token-alg",
        "signature": lambda: f"the client's key with kid '{header.get('kid')}' does not verify the signature: --token-key "
                             "is not the private half of that key",
        "aud": lambda: f"the service expects aud '{expected}' (its public_base_url {settings.public_base_url or '(not set)'}): "
                       f"call it at that URL (--url)",
        "alg": lambda: f"alg {header.get('alg')} is not in its jwt_algorithms ({', '.join(settings.jwt_algorithms)}): use --token-alg",
        "expired": lambda: "the token is past its exp: make a fresh one",
        "iat in the future": lambda: "your clock is ahead of the service's: set the clock (NTP)",
        "not yet valid": lambda: "nbf is in the future: check the clock and the nbf claim",
        "lifetime": lambda: f"exp - iat must be at most {settings.jwt_max_lifetime_s} s (jwt_max_lifetime_s)",
        "tenant not allowed": lambda: f"tenant '{claims.get('tenant')}' is not one of the client's tenants "
                                      f"({tenants}): use --token-tenant",
        "key too weak": lambda: "an RSA key needs at least 2048 bits",
    }
    fix = fixes.get(reason)
    return fix() if fix else "see README, 'What is checked, in order'"


def _jku_holds_the_key(header: dict, signer: Signer, session: requests.Session | None) -> list[str]:
    """Without the configuration: does the JWK Set at the token's `jku` hold the public half of our key?"""
    jku, kid = header["jku"], header.get("kid")
    keys = JwksCache(timeout=JWKS_TIMEOUT, min_refresh_s=0, max_age_s=0, session=session)
    published = keys.keys_for(jku, kid) if isinstance(kid, str) else []  # a set's keys all have a kid
    if not published:
        return [f"the JWK Set at jku {jku} has no key with kid '{kid}' (or could not be read): the service, if it "
                "reads keys there, cannot verify the token"]
    ours = signer.key.private.public_key().public_numbers()
    for jwk in published:
        try:
            if jwt.PyJWK(dict(jwk), algorithm=header.get("alg")).key.public_numbers() == ours:
                return [f"the JWK Set at jku {jku} holds the public half of the key (kid '{kid}')"]
        except (jwt.PyJWTError, AttributeError, ValueError):
            continue
    return [f"the key with kid '{kid}' at jku {jku} is not the public half of --token-key: the signature cannot verify"]


class _NothingSeen:
    """A replay store that has seen nothing: the local check never uses up a jti."""

    def seen_before(self, key: str, expires_at: float) -> bool:
        return False

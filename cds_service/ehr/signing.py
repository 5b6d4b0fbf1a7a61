"""The simulator signs its requests like an EHR (SEC-3/4): ES384, its own `kid`, a `jku` to its own JWK Set.

DEMO ONLY. The private key ships in `cds_service/demo/keys/` and is therefore public: only a demo
configuration (config/demo.toml) lists the simulator as a trusted client.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

KEYS_DIR = Path(__file__).resolve().parent.parent / "demo" / "keys"
PRIVATE_KEY = KEYS_DIR / "simulator-demo-private-key.pem"
PUBLIC_JWKS = KEYS_DIR / "simulator-jwks.json"
LIFETIME_S = 300  # as the CDS Hooks Sandbox does: exp = iat + 300


def issuer(base_url: str) -> str:
    """The simulator's `iss`: its own URL under the service's public base URL."""
    return f"{base_url.rstrip('/')}/simulator"


def jwks_url(base_url: str) -> str:
    return f"{issuer(base_url)}/.well-known/jwks.json"


class DemoSigner:
    def __init__(self, private_key: Path = PRIVATE_KEY, jwks: Path = PUBLIC_JWKS):
        self._key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
        self.jwks = json.loads(jwks.read_text(encoding="utf-8"))
        self.kid = self.jwks["keys"][0]["kid"]
        self._public = jwt.PyJWK(self.jwks["keys"][0], "ES384").key

    def sign(self, audience: str, base_url: str, now: float | None = None) -> str:
        """A fresh token for one call to `audience` (the endpoint URL, SEC-5); a new `jti` each time (SEC-8)."""
        iat = int(now if now is not None else time.time())
        claims = {"iss": issuer(base_url), "aud": audience, "iat": iat, "exp": iat + LIFETIME_S, "jti": str(uuid.uuid4())}
        headers = {"kid": self.kid, "jku": jwks_url(base_url), "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm="ES384", headers=headers)

    def seal(self, claims: dict) -> str:
        """A signed token of the simulator's own (its demo SMART launch ids and codes, demo_smart)."""
        return jwt.encode(claims, self._key, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"})

    def unseal(self, token: str, audience: str) -> dict:
        """The claims of a token `seal` made for `audience`; jwt.PyJWTError when it is not one (or expired)."""
        return jwt.decode(token, self._public, algorithms=["ES384"], audience=audience, options={"require": ["exp", "aud"]})

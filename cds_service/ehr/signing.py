"""JWTs signed as an EHR signs its CDS Hooks calls (SEC-3/4): `kid`, `typ` JWT and an optional `jku`
header; iss, aud = the endpoint called (SEC-5), iat, exp = iat + 5 min and a random jti, so that a
replay cache (SEC-8) accepts every call.

The key is a given file (`load_key`: a private JWK, a JWK Set holding one, or an unencrypted PEM) or
the simulator's bundled demo key (`DemoKey`). DEMO ONLY: that private key ships in
`cds_service/demo/keys/` and is therefore public; only a demo configuration (config/demo.toml) lists
the simulator as a trusted client.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cds_service.ehr.errors import EhrInputError

KEYS_DIR = Path(__file__).resolve().parent.parent / "demo" / "keys"
PRIVATE_KEY = KEYS_DIR / "simulator-demo-private-key.pem"
PUBLIC_JWKS = KEYS_DIR / "simulator-jwks.json"
LIFETIME_S = 300  # as the CDS Hooks Sandbox does: exp = iat + 300
_ALG_BY_JWK_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_ALG_BY_PEM_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True)
class SigningKey:
    private: Any = field(repr=False)  # a cryptography private key object
    alg: str
    kid: str


@dataclass(frozen=True)
class Signer:
    """Signs one fresh token per call: `signer(aud)`."""

    key: SigningKey
    iss: str
    jku: str | None = None
    sub: str | None = None
    tenant: str | None = None
    lifetime_s: int = LIFETIME_S

    def __call__(self, aud: str, now: float | None = None) -> str:
        iat = int(now if now is not None else time.time())
        claims = {"iss": self.iss, "aud": aud, "iat": iat, "exp": iat + self.lifetime_s, "jti": str(uuid.uuid4())}
        claims.update({k: v for k, v in (("sub", self.sub), ("tenant", self.tenant)) if v})
        headers = {"typ": "JWT", "kid": self.key.kid, **({"jku": self.jku} if self.jku else {})}
        return jwt.encode(claims, self.key.private, algorithm=self.key.alg, headers=headers)


def load_key(path: Path, *, alg: str | None = None, kid: str | None = None) -> SigningKey:
    """A signing key from a file. `alg` defaults to the JWK's, else by curve (ES256/ES384/ES512), RS384
    for RSA; `kid` to the JWK's. Symmetric and `none` algorithms are refused (SEC-6)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EhrInputError(f"cannot read the key file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        jwk = _private_jwk(path, text)
        alg = _asymmetric(alg or jwk.get("alg") or _ALG_BY_JWK_CURVE.get(jwk.get("crv", ""), "RS384"))
        try:
            private = jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError as exc:
            raise EhrInputError(f"{path}: not a usable private JWK: {exc}") from None
        kid = kid or jwk.get("kid")
    else:
        try:
            private = load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise EhrInputError(f"{path}: not a JWK and not an unencrypted PEM private key ({exc})") from None
        curve = getattr(getattr(private, "curve", None), "name", "")
        alg = _asymmetric(alg or _ALG_BY_PEM_CURVE.get(curve, "RS384"))
    if not kid:
        raise EhrInputError(f"{path}: no kid: the key file names none and none was given")
    return SigningKey(private, alg, kid)


def _asymmetric(alg: str) -> str:
    if alg.upper().startswith("HS") or alg.lower() == "none":
        raise EhrInputError("symmetric and 'none' algorithms are not allowed (SEC-6)")
    return alg


def _private_jwk(path: Path, text: str) -> dict:
    try:
        jwk = json.loads(text)
    except ValueError:
        raise EhrInputError(f"{path}: not valid JSON") from None
    if isinstance(jwk, dict) and "keys" in jwk:
        private = [k for k in jwk["keys"] if isinstance(k, dict) and "d" in k]
        if len(private) != 1:
            raise EhrInputError(f"{path}: a JWK Set must hold exactly one private key to sign with")
        jwk = private[0]
    if not isinstance(jwk, dict) or "d" not in jwk:
        raise EhrInputError(f"{path}: this JWK has no private part ('d'); signing needs the private key")
    return jwk


def issuer(base_url: str) -> str:
    """The simulator's `iss`: its own URL under the service's public base URL."""
    return f"{base_url.rstrip('/')}/simulator"


def jwks_url(base_url: str) -> str:
    return f"{issuer(base_url)}/.well-known/jwks.json"


class DemoKey:
    """The simulator's bundled ES384 key pair: it signs calls as the simulator of the service at a base
    URL, and seals the simulator's own short-lived tokens (its demo SMART launch ids and codes)."""

    def __init__(self, private_key: Path = PRIVATE_KEY, jwks: Path = PUBLIC_JWKS):
        self.jwks = json.loads(jwks.read_text(encoding="utf-8"))
        public = self.jwks["keys"][0]
        self.key = SigningKey(load_pem_private_key(private_key.read_bytes(), password=None), "ES384", public["kid"])
        self._public = jwt.PyJWK(public, "ES384").key

    def signer(self, base_url: str) -> Signer:
        """Signs as the simulator of the service at `base_url`: iss {base_url}/simulator, jku its JWK Set."""
        return Signer(self.key, issuer(base_url), jwks_url(base_url))

    def seal(self, claims: dict) -> str:
        return jwt.encode(claims, self.key.private, algorithm=self.key.alg, headers={"kid": self.key.kid, "typ": "JWT"})

    def unseal(self, token: str, audience: str) -> dict:
        """The claims of a token `seal` made for `audience`; jwt.PyJWTError when it is not one (or expired)."""
        return jwt.decode(token, self._public, algorithms=[self.key.alg], audience=audience,
                          options={"require": ["exp", "aud"]})

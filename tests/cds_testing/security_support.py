"""Keys, JWK Sets and tokens for the security tests. Keys are generated at run time:
no private key is stored on disk.

Two trusted clients are modelled on real ones (checklist §13):
- SANDBOX: the CDS Hooks Sandbox — ES384, `jku` = its JWKS URL, kid 44823f3d-…, exp = iat + 300, no sub.
- EPIC: an Epic-style client — RS384, `jku` on the org's host, `sub` = client id, nbf = iat - 300,
  exp = iat + 900.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_testing.apps import BASE_URL, app_settings

BASE = BASE_URL
SERVICE_ID = "ascvd-10y-risk"
DISCOVERY_AUD = f"{BASE}/cds-services"
SERVICE_AUD = f"{BASE}/cds-services/{SERVICE_ID}"
FEEDBACK_AUD = f"{BASE}/cds-services/{SERVICE_ID}/feedback"

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"

EPIC_ISS = "https://fhir.epic-hospital.example/interconnect-fhir/api/FHIR/R4"
EPIC_JKU = "https://fhir.epic-hospital.example/interconnect-fhir/api/epic/2019/Security/Open/PublicKeys/530013/530013"
EPIC_KID = "bXlQdWJsaWNLZXlUaHVtYnByaW50MTIzNDU2Nzg5MA"
EPIC_CLIENT_ID = "d45049c3-3441-40ef-ab4d-b9cd86a17225"
EPIC_FHIR = "https://fhir.epic-hospital.example/interconnect-fhir/api/FHIR/R4"

SANDBOX_FHIR = "https://launch.smarthealthit.org/v/r4/fhir"


@dataclass(frozen=True)
class Key:
    private: object
    kid: str
    alg: str

    @property
    def public_jwk(self) -> dict:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.private.public_key()))
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        return jwk

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


@lru_cache(maxsize=None)
def ec_key(kid: str, alg: str = "ES384", curve_name: str = "P-384") -> Key:
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[curve_name]
    return Key(ec.generate_private_key(curve), kid, alg)


@lru_cache(maxsize=None)
def rsa_key(kid: str, alg: str = "RS384", bits: int = 2048) -> Key:
    return Key(rsa.generate_private_key(public_exponent=65537, key_size=bits), kid, alg)


def sandbox_key() -> Key:
    return ec_key(SANDBOX_KID, "ES384", "P-384")


def epic_key() -> Key:
    return rsa_key(EPIC_KID, "RS384")


def jwks(*keys: Key) -> dict:
    return {"keys": [k.public_jwk for k in keys]}


def sandbox_claims(aud: str, /, now: float | None = None, **changes) -> dict:
    """Claims exactly as the Sandbox's jwt-generator.js builds them (checklist §13)."""
    iat = int(now if now is not None else time.time())
    claims = {"iss": SANDBOX_ISS, "aud": aud, "exp": iat + 300, "iat": iat, "jti": str(uuid.uuid4())}
    return _apply(claims, changes)


def epic_claims(aud: str, /, now: float | None = None, **changes) -> dict:
    """Claims as Epic's CDS Hooks tutorial shows them: sub = client id, nbf = iat - 300, exp = iat + 900."""
    iat = int(now if now is not None else time.time())
    claims = {"iss": EPIC_ISS, "sub": EPIC_CLIENT_ID, "aud": aud, "jti": str(uuid.uuid4()), "nbf": iat - 300,
              "iat": iat, "exp": iat + 900}
    return _apply(claims, changes)


_DROP = object()


def _apply(claims: dict, changes: dict) -> dict:
    for name, value in changes.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def drop():
    """Marker: `sandbox_claims(aud, jti=drop())` leaves the claim out."""
    return _DROP


def sign(claims: dict, key: Key, *, alg: str | None = None, **header) -> str:
    """Sign with pyjwt; `header` adds/overrides members (jku, typ, kid=None to remove…)."""
    headers = {"typ": "JWT", "kid": key.kid}
    headers.update(header)
    headers = {k: v for k, v in headers.items() if v is not None or k == "typ"}  # pyjwt drops a None typ itself
    return jwt.encode(claims, key.private, algorithm=alg or key.alg, headers=headers)


def sandbox_token(aud: str, /, **changes) -> str:
    return sign(sandbox_claims(aud, **changes), sandbox_key(), jku=SANDBOX_JKU)


def epic_token(aud: str, /, **changes) -> str:
    return sign(epic_claims(aud, **changes), epic_key(), jku=EPIC_JKU)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict, claims: dict, signature: bytes = b"") -> str:
    """Assemble a token by hand (for forgeries pyjwt refuses to produce)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def hmac_token(header: dict, claims: dict, secret: bytes, digest=hashlib.sha256) -> str:
    """The classic key-confusion forgery: HS* with the server's *public* key as the HMAC secret."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64(sig)}"


def tamper(token: str, **changes) -> str:
    """Change claims of a signed token but keep its signature."""
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


def client_config(*, sandbox_tenants=None, epic=True) -> list[dict]:
    """The [[clients]] tables of the README example: the Sandbox (jku only) and an Epic site."""
    clients = [{"iss": SANDBOX_ISS, "jku": [SANDBOX_JKU], "fhir_servers": [SANDBOX_FHIR]}]
    if sandbox_tenants:
        clients[0]["tenants"] = list(sandbox_tenants)
    if epic:
        clients.append({"iss": EPIC_ISS, "jwks_url": EPIC_JKU, "jku": [EPIC_JKU], "fhir_servers": [EPIC_FHIR]})
    return copy.deepcopy(clients)


def auth_settings(tmp_path, **overrides) -> dict:
    """Auth on with the two trusted clients, serving only the ASCVD service the security tests call (so
    they do not depend on every other service file of the repository)."""
    return app_settings(tmp_path, [SERVICE_ID], **{"auth_required": True, "clients": client_config(), **overrides})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def issue_card(app, *card_uuids: str, iss: str = "", tenant: str = "", service_id: str = SERVICE_ID) -> None:
    """Record cards as issued to a client (iss '' and tenant '': what an app with authentication off
    records): feedback is accepted only for cards issued to the client that reports on them."""
    from cds_service.storage import db

    db.insert_ignoring_duplicates(app.extensions["cds"].engine, db.cards_issued, [
        {"iss": iss, "tenant": tenant, "card_uuid": card_uuid, "service_id": service_id, "hook_instance": "h",
         "indicator": "info", "issued_at": 0.0} for card_uuid in card_uuids])

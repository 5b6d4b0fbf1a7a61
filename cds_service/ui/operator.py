"""Operator access to the pages that hold more than one patient's data: `/analytics` and `/population`.

Off unless `analytics_token` is configured (both answer 404 then), and served only to a request that
presents it, as `Authorization: Bearer <token>` or as the password of the HTTP Basic login
`analytics_user` (so a browser asks for it). Digests are compared in constant time.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from flask import Response, abort, request

REALM = "cds-hooks-ml operator"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def operator_allowed(settings, header: str) -> bool:
    """Does this Authorization header carry the operator's token (Bearer, or Basic user:token)?"""
    scheme, _, value = header.partition(" ")
    presented = None
    if scheme.lower() == "bearer":
        presented = value.strip()
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if hmac.compare_digest(_digest(user), _digest(settings.analytics_user)):
            presented = password
    return presented is not None and hmac.compare_digest(_digest(presented), _digest(settings.analytics_token))


def operator_refusal(settings) -> Response | None:
    """None when the request is the operator's; otherwise the answer: 404 when no operator token is
    configured (the pages do not exist), 401 with a Basic challenge when the login is missing or wrong."""
    if not settings.analytics_token:
        abort(404)
    if operator_allowed(settings, request.headers.get("Authorization", "")):
        return None
    return Response("Operator login required.\n", status=401, mimetype="text/plain",
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"', "Cache-Control": "no-store"})

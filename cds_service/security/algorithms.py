"""The JWT signature algorithms we accept (SEC-6: asymmetric only, never `none` or HS*).

Each maps to the key type (and EC curve) it needs, so that a token's `alg` header can never make
us use a key of another kind (RFC 8725 §3.1). The settings check `jwt_algorithms` against this list.
"""
from __future__ import annotations

KEY_KIND = {"RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None), "PS256": ("RSA", None),
            "PS384": ("RSA", None), "PS512": ("RSA", None), "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"),
            "ES512": ("EC", "P-521")}
SUPPORTED_ALGORITHMS = tuple(KEY_KIND)

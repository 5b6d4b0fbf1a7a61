"""How `fire` and `check` authenticate their calls (SEC-2..4): nothing, a fixed bearer token, or a
JWT signed per call with a key file or the EHR simulator's demo key (`cds_service.ehr.signing`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cds_service.cli.errors import CliError
from cds_service.ehr.signing import DemoKey, Signer, load_key


@dataclass
class Auth:
    static_token: str | None = None
    sign: Callable[[str], str] | None = None  # audience (the endpoint URL) -> a fresh JWT

    @property
    def configured(self) -> bool:
        return bool(self.static_token or self.sign)

    @property
    def signer(self) -> Signer | None:
        """The local signing key's signer (a key file or the demo key), when the token is made here."""
        return self.sign if isinstance(self.sign, Signer) else None

    def headers(self, url: str) -> dict[str, str]:
        token = self.static_token or (self.sign(url) if self.sign else None)
        return {"Authorization": f"Bearer {token}"} if token else {}


def add_auth_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("authentication (SEC-2..4)")
    g.add_argument("--token", help="a fixed bearer token sent as is (a replay cache refuses it after the first call)")
    g.add_argument("--token-key", metavar="FILE|demo",
                   help="sign a fresh JWT per call with this private key: a JWK or JWK Set (JSON, with 'd') or a PEM "
                        "file; 'demo' uses the EHR simulator's demo key (iss {url}/simulator, trusted by config/demo.toml)")
    g.add_argument("--token-iss", metavar="URL", help="the JWT 'iss' (an issuer the service trusts)")
    g.add_argument("--token-kid", help="the JWT 'kid' header (default: the JWK's kid)")
    g.add_argument("--token-alg", help="signing algorithm (default: the JWK's alg, else ES256/ES384/ES512 by curve, RS384 for RSA)")
    g.add_argument("--token-jku", metavar="URL", help="the JWT 'jku' header (the JWK Set URL), if the service expects one")
    g.add_argument("--token-sub", help="the JWT 'sub' claim (optional)")
    g.add_argument("--token-tenant", help="the JWT 'tenant' claim (optional)")
    g.add_argument("--config", metavar="FILE",
                   help="the service's configuration (as given to `serve`): when it answers 401, the token is checked here "
                        "against the clients it trusts, its audience and its clock rules, to say what to fix")


def auth_from_args(args: argparse.Namespace, base_url: str) -> Auth:
    if args.token and args.token_key:
        raise CliError("give --token or --token-key, not both")
    if args.token:
        return Auth(static_token=args.token)
    if not args.token_key:
        return Auth()
    if args.token_key == "demo":
        try:
            return Auth(sign=DemoKey().signer(base_url))
        except OSError as exc:
            raise CliError(f"--token-key demo: the simulator's demo key is not installed ({exc})") from None
    key = load_key(Path(args.token_key), alg=args.token_alg, kid=args.token_kid)
    if not args.token_iss:
        raise CliError("--token-key needs --token-iss (an issuer the service trusts)")
    return Auth(sign=Signer(key, args.token_iss, args.token_jku, args.token_sub, args.token_tenant))

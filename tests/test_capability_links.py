"""An explanation page opens only through the capability link of the card that
produced it: a token signed with `ui_link_secret`, bound to client, service and hookInstance, and
expiring after `ui_explain_link_ttl_s`. Anything else, including the URL that used to be derivable
from the hookInstance in the call log, is the same 404. Pages are never cached or referred.
"""
from __future__ import annotations

import base64
import json
import logging

import pytest
import responses

from cds_service import create_app
from cds_service.errors import ConfigError
from cds_service.security.capability import LinkSigner
from cds_testing import security_support as s
from cds_testing.apps import LINK_SECRET
from cds_testing.fhir_factory import ascvd_prefetch, hook_request

SERVICE = f"/cds-services/{s.SERVICE_ID}"
HOOK_INSTANCE = hook_request()["hookInstance"]


@pytest.fixture
def app(make_app, tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(s.SANDBOX_JKU, json=s.jwks(s.sandbox_key()))
        yield make_app(**s.auth_settings(tmp_path, ui_explain_link_ttl_s=3600))


@pytest.fixture
def link(app) -> str:
    """The path of the `absolute` link on the card answered to the Sandbox client."""
    resp = app.test_client().post(SERVICE, json=hook_request(prefetch=ascvd_prefetch()),
                                  headers=s.bearer(s.sandbox_token(s.SERVICE_AUD)))
    (card,) = resp.get_json()["cards"]
    return next(x["url"] for x in card["links"] if x["type"] == "absolute").removeprefix(s.BASE)


def _tamper_payload(token: str) -> str:
    """Another hookInstance written into the payload, the MAC kept."""
    payload, mac = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields[4] = "another-hook-instance"
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=").decode() + "." + mac


def _signed(*, client=(s.SANDBOX_ISS, ""), service=s.SERVICE_ID, hook_instance=HOOK_INSTANCE, secret=LINK_SECRET,
            now=None):
    return lambda _token: LinkSigner(secret, 3600).token(client, service, hook_instance, now=now)


FORGERIES = {
    "payload altered": _tamper_payload,
    "mac altered": lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    "mac dropped": lambda t: t.split(".")[0],
    "signed with another secret": _signed(secret="another-secret-0123456789abcdef0123456789"),
    "expired": _signed(now=0),
    "another client": _signed(client=(s.EPIC_ISS, "")),
    "another tenant": _signed(client=(s.SANDBOX_ISS, "tenant-b")),
    "another service": _signed(service="renal-dosing"),
    "another hookInstance": _signed(hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2eb"),
    "too long": lambda t: t + "A" * 3000,
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_only_the_cards_own_link_opens_its_explanation(app, link, forgery):
    client = app.test_client()
    token = link.removeprefix("/explain/")
    genuine = client.get(link)
    assert genuine.status_code == 200 and '<svg role="img"' in genuine.get_data(as_text=True)
    assert HOOK_INSTANCE not in link  # nothing in the URL comes from the call log
    # The URL of the old scheme, derivable from the hookInstance in the call log and the audit table.
    assert client.get(f"/explain/{s.SERVICE_ID}/{HOOK_INSTANCE}").status_code == 404
    refused = client.get(f"/explain/{FORGERIES[forgery](token)}")
    assert refused.status_code == 404
    assert refused.get_data() == client.get("/explain/x").get_data()  # one answer for all: it names nothing
    for resp in (genuine, refused):
        assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"


def test_a_link_stops_opening_when_its_lifetime_ends(app, link, monkeypatch):
    import time

    client = app.test_client()
    assert client.get(link).status_code == 200
    later = time.time() + 3601  # ui_explain_link_ttl_s = 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(link).status_code == 404


def _production(tmp_path, **overrides) -> dict:
    """The security tests' production-like settings (auth on, public_base_url) without ui_link_secret."""
    settings = s.auth_settings(tmp_path)
    del settings["ui_link_secret"]
    return {**settings, **overrides}


def test_a_production_configuration_without_ui_link_secret_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match=r"ui_link_secret is required when the explanation pages are on"):
        create_app(_production(tmp_path), env={})
    with pytest.raises(ConfigError, match="ui_link_secret must be at least 32 characters"):
        create_app(_production(tmp_path, ui_link_secret="short-secret"), env={})
    create_app(_production(tmp_path, ui_enabled=False), env={})  # no pages, no links: nothing to sign


@pytest.mark.parametrize("overrides", [{"auth_required": False}, {"ui_simulator": True}])
def test_development_and_the_demo_sign_with_a_random_secret_and_say_so(tmp_path, caplog, overrides):
    caplog.set_level(logging.WARNING)
    first = create_app(_production(tmp_path, **overrides), env={}).extensions["cds"].link_signer
    second = create_app(_production(tmp_path, **overrides), env={}).extensions["cds"].link_signer
    assert any(getattr(r, "event", None) == "link_secret_random" for r in caplog.records)
    token = first.token(("", ""), s.SERVICE_ID, HOOK_INSTANCE)
    assert first.verify(token) is not None and second.verify(token) is None  # a restart invalidates the links

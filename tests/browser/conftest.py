"""Browser tests (issue #7): the service under gunicorn with the demo configuration, driven by headless
Debian Chromium through Playwright (the pip package only; no `playwright install`, no downloaded browser).

Requests are really signed: the demo config's `[[clients]]` are used as they are, with only the base URL
(`http://127.0.0.1:8080`) replaced by the test server's, since the port is a free one.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from cds_testing.servers import ROOT, cds_service

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """(base URL, database path) of `cds-service serve --config config/demo.toml` on a free port, 2 workers."""
    tmp = tmp_path_factory.mktemp("browser")
    database = tmp / "cds.sqlite3"
    demo = tomllib.loads((ROOT / "config" / "demo.toml").read_text(encoding="utf-8"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The base URL is known only once the port is; the context manager picks it, so pre-pick it here.
    from cds_testing.servers import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clients = json.loads(json.dumps(demo["clients"]).replace("http://127.0.0.1:8080", base))
    env = {"CDS_PUBLIC_BASE_URL": base, "CDS_CLIENTS": json.dumps(clients), "CDS_DATABASE_URL": f"sqlite:///{database}",
           "CDS_CORS_ORIGINS": json.dumps([base])}
    with cds_service(env, config="config/demo.toml", workers=2, port=port, log_path=ARTIFACTS / "server.log") as url:
        assert url == base
        yield base, database


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run tests/setup.d/30-chromium.sh (scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    # Nothing may be fetched from outside the service (no CDN): fail any request to another origin.
    outside: list[str] = []
    pg.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
             if not route.request.url.startswith("http://127.0.0.1:") else route.continue_())
    yield pg
    context.close()
    assert not outside, f"the page tried to fetch from outside the service: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    # The patient list is sticky on screen; unstick it so that a full-page picture shows it once, at the top.
    page.add_style_tag(content=".patients { position: static; height: auto; }")
    page.screenshot(path=str(path), full_page=True)
    return path

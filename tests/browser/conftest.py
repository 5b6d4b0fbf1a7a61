"""Browser tests: the service under gunicorn with the demo configuration, driven by headless
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


def _scored_population(path: Path) -> Path:
    """The ASCVD service scored over the 30 demo patients, as `cds-service population score` writes it:
    the file the demo configuration's worklist shows (`[ui] population`)."""
    from datetime import datetime, timezone

    import pyarrow.parquet as pq

    from cds_service.config import Settings
    from cds_service.ehr.patients import DemoPatients
    from cds_service.population.jobs import Job, load_bound, schema, to_table
    from cds_service.population.patient import score_patient

    settings = Settings.from_mapping({})
    bound = load_bound(settings.hooks_dir, settings.model_dir, "ascvd-10y-risk")
    demo, now = DemoPatients(), datetime.now(timezone.utc)
    rows = [score_patient(bound, pid, demo.resources(pid), now) for pid in demo.ids]
    pq.write_table(to_table(rows, schema(Job("ascvd-10y-risk", settings.hooks_dir, settings.model_dir))), path)
    return path


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """(base URL, database path) of `cds-service serve --config config/demo.toml` on a free port, 2 workers,
    with the worklist showing the demo patients scored by the ASCVD service."""
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
           "CDS_CORS_ORIGINS": json.dumps([base]), "CDS_UI_POPULATION": str(_scored_population(tmp / "scored.parquet"))}
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


@pytest.fixture(scope="session")
def screenshots(request, tmp_path_factory) -> Path:
    """Where the responsive tests save their screenshots: $BROWSER_SCREENSHOTS, or a fresh temporary
    directory; the path is printed in the session summary."""
    import os

    chosen = os.environ.get("BROWSER_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots", numbered=True)
    path.mkdir(parents=True, exist_ok=True)
    request.config.stash[SCREENSHOTS] = path
    return path


SCREENSHOTS = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = config.stash.get(SCREENSHOTS, None)
    if path is not None:
        terminalreporter.write_line(f"browser screenshots (400 px and 1280 px): {path}")

"""The one way the suite builds the app under test: `build_app(workdir, services=…, **settings)`
(the `make_app` fixture of conftest.py is this function bound to the test's `tmp_path`).

`services` chooses the service files the app loads, so that no other service of the repository can
mask, or break, what a test checks:
- `None`: every file of `hooks/`, as shipped;
- a list of service ids: only their files, copied from `hooks/` (`<id>.toml`, and every `<id>.<hook>.toml`
  of a service declaring one id for several hooks, DISC-5);
- a mapping `{file stem: TOML text}`: files written with that text (an edited copy of a real file,
  or a new one), e.g. `{"ascvd-10y-risk": text}` → `ascvd-10y-risk.toml`.

`alerts` (False by default) keeps each file's `[alerts]` table (repeat windows, silent info cards,
snoozes, shadow mode). Without it the app returns every card its builders make, every time: what most
tests check, and what a module firing the same patient again and again needs to stay independent of
test order. The alert controls, with the product's files as shipped, are tested with `alerts=True`
(tests/test_alert_controls.py).
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from hooks import SERVICES_DIR

BASE_URL = "https://cds.example.org"
LINK_SECRET = "test-link-secret-0123456789abcdef0123456789"  # signs the explanation links of test apps

Services = Iterable[str] | Mapping[str, str] | None


def service_file(stem: str) -> str:
    """The text of `hooks/<stem>.toml` (to edit before passing it as `services={stem: text}`)."""
    return (Path(SERVICES_DIR) / f"{stem}.toml").read_text(encoding="utf-8")


_ALERTS_TABLE = re.compile(r"^\[alerts\][ \t]*\n(?:(?!\[).*\n?)*", re.M)


def without_alerts(text: str) -> str:
    """A service file's text without its `[alerts]` table (the table runs to the next table or the end)."""
    out = _ALERTS_TABLE.sub("", text)
    try:
        parsed = tomllib.loads(out)
    except tomllib.TOMLDecodeError:
        return out  # a test of invalid TOML: the app's loader reports it
    assert "alerts" not in parsed, "the [alerts] table must be a plain table, not inline or dotted"
    return out


def services_dir(workdir: str | Path, services: Iterable[str] | Mapping[str, str] | None, *, alerts: bool = True) -> str:
    """A new folder under `workdir` holding only the chosen service files (None: all of them), without their
    `[alerts]` tables unless `alerts`; returns its path."""
    n = 0
    while (target := Path(workdir) / f"services-{n}").exists():
        n += 1
    target.mkdir(parents=True)
    if isinstance(services, Mapping):
        texts = {stem: text for stem, text in services.items()}
    else:
        paths = sorted(Path(SERVICES_DIR).glob("*.toml"))
        texts = {p.stem: p.read_text(encoding="utf-8") for p in paths}
        if services is not None:
            # `<id>.toml`, or `<id>.<hook>.toml` when one service answers several hooks
            for service_id in services:
                if not any(stem.split(".")[0] == service_id for stem in texts):
                    raise ValueError(f"no service file for {service_id!r} in {SERVICES_DIR}")
            texts = {stem: text for stem, text in texts.items() if stem.split(".")[0] in services}
    for stem, text in texts.items():
        (target / f"{stem}.toml").write_text(text if alerts else without_alerts(text), encoding="utf-8")
    return str(target)


def app_settings(workdir: str | Path, services: Services = None, *, alerts: bool = False, **overrides) -> dict:
    """Settings of a test app: its own SQLite file under `workdir`, auth off unless overridden; the service
    files as chosen (see the module's docstring)."""
    settings = {"auth_required": False, "database_url": f"sqlite:///{workdir}/cds.sqlite3", "public_base_url": BASE_URL,
                "ui_link_secret": LINK_SECRET}
    if services is not None or not alerts:
        settings["hooks_dir"] = services_dir(workdir, services, alerts=alerts)
    settings.update(overrides)
    return settings


def build_app(workdir: str | Path, services: Services = None, *, alerts: bool = False, **overrides):
    from cds_service import create_app

    return create_app(app_settings(workdir, services, alerts=alerts, **overrides), env={})


def written_engine(app):
    """The app's database engine, once the rows of the calls it has answered are committed (by default
    they are committed after the answer: cds_service/storage/call_writes.py)."""
    from cds_service.storage.call_writes import committer

    assert committer(app).settle(), "call rows not committed in time"
    return app.extensions["cds"].engine

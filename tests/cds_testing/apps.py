"""The one way the suite builds the app under test: `build_app(workdir, services=…, **settings)`
(the `make_app` fixture of conftest.py is this function bound to the test's `tmp_path`).

`services` chooses the service files the app loads, so that no other service of the repository can
mask, or break, what a test checks:
- `None`: every file of `hooks/`, as the product serves them;
- a list of service ids: only their files, copied from `hooks/` (`<id>.toml`, and every `<id>.<hook>.toml`
  of a service declaring one id for several hooks, DISC-5);
- a mapping `{file stem: TOML text}`: files written with that text (an edited copy of a real file,
  or a new one), e.g. `{"ascvd-10y-risk": text}` → `ascvd-10y-risk.toml`.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from hooks import SERVICES_DIR

BASE_URL = "https://cds.example.org"
LINK_SECRET = "test-link-secret-0123456789abcdef0123456789"  # signs the explanation links of test apps

Services = Iterable[str] | Mapping[str, str] | None


def service_file(stem: str) -> str:
    """The text of `hooks/<stem>.toml` (to edit before passing it as `services={stem: text}`)."""
    return (Path(SERVICES_DIR) / f"{stem}.toml").read_text(encoding="utf-8")


def services_dir(workdir: str | Path, services: Iterable[str] | Mapping[str, str]) -> str:
    """A new folder under `workdir` holding only the chosen service files; returns its path."""
    n = 0
    while (target := Path(workdir) / f"services-{n}").exists():
        n += 1
    target.mkdir(parents=True)
    if isinstance(services, Mapping):
        for stem, text in services.items():
            (target / f"{stem}.toml").write_text(text, encoding="utf-8")
        return str(target)
    for service_id in services:
        # `<id>.toml`, or `<id>.<hook>.toml` when one service answers several hooks
        files = [p for p in Path(SERVICES_DIR).glob("*.toml") if p.stem.split(".")[0] == service_id]
        if not files:
            raise ValueError(f"no service file for {service_id!r} in {SERVICES_DIR}")
        for path in files:
            shutil.copy(path, target)
    return str(target)


def app_settings(workdir: str | Path, services: Services = None, **overrides) -> dict:
    """Settings of a test app: its own SQLite file under `workdir`, auth off unless overridden."""
    settings = {"auth_required": False, "database_url": f"sqlite:///{workdir}/cds.sqlite3", "public_base_url": BASE_URL,
                "ui_link_secret": LINK_SECRET}
    if services is not None:
        settings["hooks_dir"] = services_dir(workdir, services)
    settings.update(overrides)
    return settings


def build_app(workdir: str | Path, services: Services = None, **overrides):
    from cds_service import create_app

    return create_app(app_settings(workdir, services, **overrides), env={})

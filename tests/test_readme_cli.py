"""The README's command-line examples do what the README says.

Every `cds-service …` command of the README's `sh` code blocks and of its services table is run here and its
output checked against what the README announces after `→`: a quoted fragment ("…" or '…') must appear in the
output, on one line, `…` inside it standing for any text; a fragment after `info`, `warning` or `critical`
must start a card line (`[WARNING] …`). The commands run as written, against servers this module starts as
the README does (`scripts/serve`'s demo configuration, and a service with authentication off on "8081"), on
free ports; only their URLs and files (`my-bundle.json`, `/tmp/artifacts`, `var/population`) are replaced, and
two take a quick option (`train --cv-repeats 1`, `population synthetic --patients 100`). What is not run says
why (`NOT_RUN`): a placeholder host, a server this module starts itself, or work covered elsewhere.

The configurations of "Connecting the CDS Hooks Sandbox and an Epic-style EHR" and the error messages the README
quotes are checked too.
"""
from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import responses

from cds_service import create_app
from cds_service.cli.auth import Auth
from cds_service.cli.main import main
from cds_service.cli.unauthorized import explain_unauthorized
from cds_service.config import ConfigError, Settings
from cds_service.ehr.patients import DemoPatients
from cds_service.ehr.signing import DemoKey
from cds_service.security.identity import ClientIdentity
from cds_service.security.outbound import fhir_server_allowed
from cds_testing import security_support as s
from cds_testing.apps import service_file, services_dir
from cds_testing.paths import ROOT
from cds_testing.servers import cds_service, free_port
from hooks import ServiceFileError

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "cds-service")

README = (ROOT / "README.md").read_text(encoding="utf-8")
_CLI = re.compile(r"(?:^|\s)(?:\.venv/bin/)?cds-service\s+(\w[\w-]*)")
_FRAGMENT = re.compile(r"""(?:\b(info|warning|critical)\s+)?(?:"([^"]+)"|'([^']+)')""")


@dataclass(frozen=True)
class Example:
    line: int
    command: str
    expect: str | None
    source: str  # "sh" (a code block) or "table" (the services table)

    @property
    def subcommand(self) -> str:
        return _CLI.search(self.command).group(1)


def readme_examples(text: str = README) -> list[Example]:
    """The `cds-service` commands of the `sh` blocks (with a `# → …` comment on their line or the next) and
    of the tables whose header names an example (`` `cds-service …` → … ``); a command named in another table
    (a figure's provenance) is no example."""
    found: list[Example] = []
    block, pending, start, example_table = None, "", 0, False
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if line.startswith("|") and not (n > 1 and lines[n - 2].startswith("|")):
            example_table = "example" in line.lower()  # the header row of a table
        if line.startswith("```"):
            block = None if block is not None else (line[3:].strip() or "text")
            continue
        if block == "sh":
            if not pending:
                start = n
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command, _, comment = (pending + line).partition(" #") if not line.lstrip().startswith("#") else ("", "", "")
            pending = ""
            if command and _CLI.search(command):
                expect = comment.strip() if comment.strip().startswith("→") else None
                follow = lines[n] if n < len(lines) else ""
                if expect is None and follow.lstrip().startswith("# →"):
                    expect = follow.lstrip()[1:].strip()
                found.append(Example(start, command.strip(), expect[1:].strip() if expect else None, "sh"))
        elif block is None and line.startswith("|") and example_table:
            for m in re.finditer(r"`((?:\.venv/bin/)?cds-service [^`]+)`(?:\s*→\s*([^|]+))?", line):
                found.append(Example(n, m.group(1), m.group(2).strip() if m.group(2) else None, "table"))
    return found


EXAMPLES = readme_examples()

# What is not run, and why (each reason names what covers the example instead).
NOT_RUN = {
    "example.org": "a placeholder host (RFC 2606): it needs your EHR's or FHIR server's URL",
    "serve": "starts a server: this module starts the same ones (the demo configuration, and auth off on a free port)",
    "train identical": "rebuilds a shipped artifact byte for byte (17 s each): tests/test_training.py::"
                       "test_cli_reproduces_every_shipped_artifact_byte_for_byte runs exactly this; here the artifact is checked to exist",
    "training through the features": "from-dataset → population dataset → train --data (a Spark job and the full 5 x 5 "
                                     "training, about 45 s when idle): tests/test_training_from_fhir.py::"
                                     "test_the_shipped_artifact_is_what_training_through_the_service_features_builds runs these three steps",
    "population validate": "a second Spark job over the export (a minute on the shared 2 cores): tests/test_population_spark.py::"
                           "test_validate_labels_outcomes_after_the_index_date_only runs the validate job",
    "population dataset": "a third Spark job over the export: tests/test_population_spark.py::"
                          "test_dataset_is_one_flat_row_per_patient_with_the_scored_features runs the dataset job",
}


def not_run(example: Example) -> str | None:
    if "example.org" in example.command:
        return NOT_RUN["example.org"]
    if example.subcommand == "serve":
        return NOT_RUN["serve"]
    if "var/whas500" in example.command:
        return NOT_RUN["training through the features"]
    if example.subcommand == "train" and "--out" not in example.command:
        return NOT_RUN["train identical"]
    for job in ("population validate", "population dataset"):
        if f"cds-service {job} " in example.command:
            return NOT_RUN[job]
    return None


def test_the_readme_has_its_examples_and_every_run_example_announces_its_output():
    """A parser that finds nothing would make the tests below vacuous; an example without `→` checks nothing."""
    subcommands = {e.subcommand for e in EXAMPLES}
    assert {"fire", "check", "feedback-report", "validate", "train", "serve"} <= subcommands, subcommands
    assert len([e for e in EXAMPLES if e.source == "table"]) >= 6
    silent = [f"README.md:{e.line}: {e.command}" for e in EXAMPLES if not_run(e) is None and not e.expect]
    assert not silent, "examples that do not say what they print:\n" + "\n".join(silent)
    unparsable = [f"README.md:{e.line}: {e.expect}" for e in EXAMPLES if e.expect and not _FRAGMENT.search(e.expect)]
    assert not unparsable, "expectations without a quoted fragment:\n" + "\n".join(unparsable)


def test_the_expectations_of_the_examples_not_run_hold_where_they_can():
    for e in EXAMPLES:
        if not_run(e) == NOT_RUN["train identical"]:
            model = e.command.split()[2]
            (version,) = re.findall(rf"{model}/([\d.]+)", e.expect or "")
            assert (ROOT / "models" / "artifacts" / model / version / "manifest.json").is_file(), e
    for reason in NOT_RUN.values():  # every test named as covering an example exists
        for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", reason):
            assert f"def {name}(" in (ROOT / path).read_text(), (path, name)


# ---- running them -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """`scripts/serve` (config/demo.toml, its 127.0.0.1:8080 moved to a free port) and the README's
    `CDS_AUTH_REQUIRED=false CDS_UI_SIMULATOR=false cds-service serve --port 8081`, on a free port."""
    tmp = tmp_path_factory.mktemp("readme")
    port = free_port()
    demo = tmp / "demo.toml"
    demo.write_text((ROOT / "config" / "demo.toml").read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    demo_db = f"sqlite:///{tmp}/demo.sqlite3"
    bundle = tmp / "my-bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": r} for r in DemoPatients().resources("demo-03")]}))
    # The service files as shipped, [alerts] included (a user's scripts/serve): examples fire distinct patients.
    with cds_service({"CDS_DATABASE_URL": demo_db}, config=str(demo), workers=1, port=port, alerts=True) as a, \
            cds_service({"CDS_AUTH_REQUIRED": "false", "CDS_UI_SIMULATOR": "false",
                         "CDS_DATABASE_URL": f"sqlite:///{tmp}/dev.sqlite3"}, workers=1, alerts=True) as b:
        yield {"demo": a, "dev": b, "demo_db": demo_db, "bundle": str(bundle), "tmp": tmp}


def argv_for(example: Example, servers: dict) -> list[str]:
    """The command as a user types it, with this module's URLs and files."""
    words = shlex.split(example.command)
    words = words[next(i for i, w in enumerate(words) if w.endswith("cds-service")) + 1:]
    url = {"http://127.0.0.1:8080": servers["demo"], "http://127.0.0.1:8081": servers["dev"]}
    words = [substitute(url.get(w, w), servers).replace("my-bundle.json", servers["bundle"]) for w in words]
    if words[0] == "fire" and "--url" not in words:
        words += ["--url", servers["demo"]]  # the default URL is scripts/serve's
    if example.source == "table" and "--token-key" not in words:
        words += ["--token-key", "demo"]  # as the README says under the table: scripts/serve requires signed calls
    if words[0] == "train":
        words += ["--cv-repeats", "1"]  # the README's quick option: the same code path, a fraction of the time
    if words[:2] == ["population", "synthetic"]:
        words[words.index("--patients") + 1] = "100"  # a tenth of the README's export: the same job, less waiting
    return words


def substitute(text: str, servers: dict) -> str:
    """The files a command writes, in this module's directory instead of /tmp or the clone's var/."""
    return (text.replace("/tmp/artifacts", str(servers["tmp"] / "artifacts"))
            .replace("var/population", str(servers["tmp"] / "population")))


def matches(fragment: str, indicator: str | None, output: str) -> bool:
    parts = [re.escape(p.strip()) for p in fragment.split("…")]
    pattern = r".*?".join(p for p in parts if p)
    if indicator:
        pattern = rf"^\[{indicator.upper()}\] " + pattern
    return re.search(pattern, output, re.M) is not None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("example", [e for e in EXAMPLES if not_run(e) is None], ids=lambda e: f"README:{e.line}")
def test_readme_example_prints_what_the_readme_says(example, servers, monkeypatch):
    """Run in README order: feedback-report reports the feedback that check's probe sent."""
    for key in [k for k in os.environ if k.startswith("CDS_")]:
        monkeypatch.delenv(key)  # the user's shell: nothing but what the example sets…
    monkeypatch.chdir(ROOT)
    # …and the database: the demo server's (feedback-report reads what check's probe sent there), never ./var
    monkeypatch.setenv("CDS_DATABASE_URL", servers["demo_db"])
    argv = argv_for(example, servers)
    if example.subcommand == "population":  # Spark: its JVM in a process of its own, as a user runs it
        done = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=280, cwd=ROOT,
                              env={k: v for k, v in os.environ.items() if not k.startswith("CDS_")})
        code, output, errors = done.returncode, done.stdout, done.stderr
    else:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv)
        output, errors = out.getvalue(), err.getvalue()
    assert code == 0, f"README.md:{example.line}: exit {code}\n{errors[-3000:]}\n{output}"
    for indicator, double, single in _FRAGMENT.findall(example.expect):
        expected = substitute(double or single, servers)
        assert matches(expected, indicator or None, output), f"README.md:{example.line}: {indicator} {expected!r} not in:\n{output}"


# ---- the error messages the README quotes -------------------------------------------------------------------

def quoted_block(after: str, lang: str = "text") -> str:
    """The first ```lang block after the line containing `after`."""
    start = README.index(after)
    block = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    return block.group(1)


def test_the_service_file_errors_quoted_are_the_loaders(tmp_path):
    quoted = quoted_block("was probably meant to be (`hooks/schema.py`").splitlines()
    ascvd = service_file("ascvd-10y-risk")
    got = []
    for old, new in (("min_score = 0.05", "min_scor = 0.05"), ("min_score = 0.20", "min_score = 20")):
        with pytest.raises(ServiceFileError) as err:
            create_app({"hooks_dir": services_dir(tmp_path, {"ascvd-10y-risk": ascvd.replace(old, new, 1)}),
                        "auth_required": False, "database_url": f"sqlite:///{tmp_path}/x.sqlite3"}, env={})
        got.append(str(err.value))
    assert got == quoted


def test_the_settings_errors_quoted_are_the_settings(tmp_path, monkeypatch):
    quoted = quoted_block("with the setting it was probably meant to be:").splitlines()
    monkeypatch.chdir(tmp_path)
    cases = [('public_base_url = "https://cds.example.org"\n\n[auth]\nrequird = false\n', {}),
             (None, {"CDS_AUTH_REQUIRD": "false"}),
             ('public_base_url = "https://cds.example.org"\n\n[auth]\nrequired = false\n\n[[clients]]\niss = "https://a.example"\n'
              'jwks_url = "https://a.example/jwks"\n\n[[clients]]\niss = "https://b.example"\njwks_ulr = "https://b.example/jwks"\n', {}),
             ('[cors]\norigins = ["*"]\n', {})]
    got = []
    for text, env in cases:
        if text is not None:
            (tmp_path / "cds.toml").write_text(text)
        with pytest.raises(ConfigError) as err:
            Settings.load("cds.toml" if text is not None else None, env=env)
        got.append(str(err.value))
    assert got == quoted


def test_the_401_explanation_quoted_is_the_clis():
    quoted = quoted_block("the refusal this\nverifier gives the token").splitlines()
    auth = Auth(sign=DemoKey().signer("http://localhost:8080"))
    lines = explain_unauthorized({}, auth, "http://localhost:8080/cds-services", config=str(ROOT / "config" / "demo.toml"))
    assert quoted == ["cds-service fire: http://localhost:8080/cds-services answered 401 (unauthorized):"] + [f"  {x}" for x in lines]


# ---- connecting the CDS Hooks Sandbox and an Epic-style EHR --------------------------------------------------

def production_rest(tmp_path) -> dict:
    """What the README's client sections leave to the rest of a production configuration ("Production topology"):
    the link secret; and this test's database and service file."""
    return {"ui_link_secret": "l" * 32, "database_url": f"sqlite:///{tmp_path}/cds.sqlite3",
            "hooks_dir": services_dir(tmp_path, ["ascvd-10y-risk"])}


def section_toml(heading: str) -> str:
    return quoted_block(heading, "toml")


def test_the_sandbox_configuration_of_the_readme_is_the_demo_one_and_works(tmp_path):
    """The README's Sandbox block holds what config/demo.toml holds for the Sandbox; with it, the published key
    is trusted for the Sandbox's iss, its FHIR server is allowed, and Chrome's PNA preflight is answered."""
    block = section_toml("### The public CDS Hooks Sandbox")
    readme, demo = tomllib.loads(block), tomllib.loads((ROOT / "config" / "demo.toml").read_text())
    sandbox = next(c for c in demo["clients"] if c["iss"] == s.SANDBOX_ISS)
    assert readme["clients"] == [sandbox] and readme["public_base_url"] == demo["public_base_url"]
    assert set(readme["cors"]["origins"]) <= set(demo["cors"]["origins"]) and demo["cors"]["allow_private_network"] is True
    published = json.loads((ROOT / "tests" / "fixtures" / "spec-examples" / "cds-hooks-sandbox" / "jwks.json").read_text())
    assert json.loads((ROOT / sandbox["jwks_file"]).read_text()) == published  # the Sandbox's own key, as it publishes it
    assert sandbox["jku"] == [s.SANDBOX_JKU]

    # The same entry with a test key of the Sandbox's kid: a Sandbox-shaped call (ES384, jku, exp = iat + 300) passes.
    keys = tmp_path / "sandbox-test-jwks.json"
    keys.write_text(json.dumps(s.jwks(s.sandbox_key())))
    config = tmp_path / "sandbox.toml"
    config.write_text(block.replace(sandbox["jwks_file"], str(keys)))
    app = create_app(production_rest(tmp_path), config_file=str(config), env={})
    client = app.test_client()
    aud = f"{readme['public_base_url']}/cds-services/ascvd-10y-risk"
    body = {"hook": "patient-view", "hookInstance": "a0d5c9b8-1111-4a2b-9c3d-4e5f60718293",
            "context": {"userId": "Practitioner/example", "patientId": "p1"},
            "fhirServer": s.SANDBOX_FHIR, "prefetch": {k: None for k in ("patient", "lipids", "bp", "smoking", "conditions",
                                                                           "medications", "family_history", "enhancer_labs")}}
    resp = client.post("/cds-services/ascvd-10y-risk", json=body, headers=s.bearer(s.sandbox_token(aud)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    settings = app.extensions["cds"].settings
    identity = ClientIdentity(iss=s.SANDBOX_ISS, sub=None, tenant=None, jti="j",
                              fhir_servers=settings.clients[0].fhir_servers, authenticated=True)
    assert fhir_server_allowed(settings, identity, s.SANDBOX_FHIR)
    pre = client.options("/cds-services", headers={"Origin": s.SANDBOX_ISS, "Access-Control-Request-Method": "GET",
                                                   "Access-Control-Request-Private-Network": "true"})
    assert pre.headers["Access-Control-Allow-Private-Network"] == "true"
    other = client.post("/cds-services/ascvd-10y-risk", json=body,
                        headers=s.bearer(s.sandbox_token(aud.replace("127.0.0.1", "localhost"))))
    assert other.status_code == 401  # step 1: localhost is another audience


@responses.activate
def test_an_epic_style_client_configured_as_the_readme_says_is_accepted(tmp_path):
    """RS384, jku on the organisation's host, sub = client id, nbf = iat - 300, exp = iat + 900."""
    block = section_toml("### An Epic-style EHR")
    config = tmp_path / "epic.toml"
    config.write_text(block)
    responses.get(s.EPIC_JKU, json=s.jwks(s.epic_key()))
    app = create_app(production_rest(tmp_path), config_file=str(config), env={})
    client = app.test_client()
    aud = "https://cds.example.org/cds-services"
    assert client.get("/cds-services", headers=s.bearer(s.epic_token(aud, tenant="epic-hospital-prod"))).status_code == 200
    assert client.get("/cds-services", headers=s.bearer(s.epic_token(aud, tenant="another-site"))).status_code == 401
    late = s.epic_token(aud, tenant="epic-hospital-prod", nbf=int(time.time()) + 600)
    assert client.get("/cds-services", headers=s.bearer(late)).status_code == 401

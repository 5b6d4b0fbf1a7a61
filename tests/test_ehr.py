"""What the EHR simulator and the command line share (`cds_service.ehr`): the context of each hook,
draft orders, and signing. One implementation serves both, so these tests speak for both."""
from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.ehr.contexts import (
    APPOINTMENT_LEAD,
    APPOINTMENT_LENGTH,
    PLACEHOLDER_ENCOUNTER,
    build_context,
    encounter_for,
)
from cds_service.ehr.drafts import DEFAULT_DRAFT, DRAFTS_BY_KEY
from cds_service.ehr.errors import EhrInputError
from cds_service.ehr.patients import DemoPatients, Patient
from cds_service.ehr.signing import PUBLIC_JWKS, DemoKey, Signer, load_key
from cds_service.hook_request import parse_hook_request
from hooks.catalog import HOOKS

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 1, 15, 42, 7, tzinfo=timezone.utc)
BASE = "https://cds.example.org"


@pytest.fixture(scope="module")
def demo():
    return DemoPatients(clock=lambda: NOW)


def _patients(demo) -> dict[str, Patient]:
    return {
        "demo patient": demo.patient("demo-02"),
        "patient user, no data": Patient("p1", [], user="Patient/p1"),
        "known by id only": Patient("p2"),
    }


@pytest.mark.parametrize("hook", list(HOOKS))
def test_each_hooks_context_has_the_fields_the_hook_requires(demo, hook):
    """HOOK-*: every required field of the catalog, a user of an allowed type, Bundles where the hook
    takes a Bundle; and the service's own parser accepts it."""
    spec = HOOKS[hook]
    for name, patient in _patients(demo).items():
        context = build_context(hook, patient, now=NOW)
        missing = [f for f in spec.required if f not in context]
        assert not missing, (name, missing)
        assert context["patientId"] == patient.id
        assert context["userId"].split("/")[0] in spec.user_types, (name, context["userId"])
        for field in spec.bundles:
            bundle = context[field]
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection" and bundle["entry"], (name, field)
        request = parse_hook_request({"hook": hook, "hookInstance": "h-1", "context": context}, spec)
        assert request.patient_id == patient.id


def test_an_unknown_hook_is_an_input_error(demo):
    with pytest.raises(EhrInputError, match="unknown hook"):
        build_context("chart-open", demo.patient("demo-01"), now=NOW)


def test_the_encounter_is_the_one_the_hook_is_about(demo):
    """demo-02 has a finished clinic visit (latest) and an inpatient stay in progress."""
    patient = demo.patient("demo-02")
    assert build_context("encounter-discharge", patient, now=NOW)["encounterId"] == "demo-02-admission"
    assert encounter_for(patient, "encounter-start") == "demo-02-admission"  # the one in progress
    latest = {"resourceType": "Encounter", "id": "later", "status": "finished", "period": {"start": "2026-05-30T10:00:00Z"}}
    earlier = {"resourceType": "Encounter", "id": "earlier", "status": "finished", "period": {"start": "2026-05-01T10:00:00Z"}}
    assert encounter_for(Patient("p", [earlier, latest]), "patient-view") == "later"
    assert "encounterId" not in build_context("patient-view", Patient("p"), now=NOW)  # optional: left out
    assert build_context("encounter-start", Patient("p"), now=NOW)["encounterId"] == PLACEHOLDER_ENCOUNTER


def test_clinician_hooks_replace_a_patient_user():
    patient = Patient("p1", [], user="Patient/p1")
    assert build_context("appointment-book", patient, now=NOW)["userId"] == "Patient/p1"
    assert build_context("order-select", patient, now=NOW)["userId"].split("/")[0] == "Practitioner"


def test_appointment_book_proposes_one_follow_up(demo):
    patient = demo.patient("demo-26")
    context = build_context("appointment-book", patient, now=NOW)
    [entry] = context["appointments"]["entry"]
    appointment = entry["resource"]
    assert appointment["status"] == "proposed"
    assert appointment["start"] == "2026-06-15T09:00:00Z" and appointment["end"] == "2026-06-15T09:20:00Z"
    assert (APPOINTMENT_LEAD, APPOINTMENT_LENGTH) == (timedelta(days=14), timedelta(minutes=20))
    actors = [p["actor"]["reference"] for p in appointment["participant"]]
    assert actors == [f"Patient/{patient.id}", patient.user]


def test_draft_presets_are_made_out_for_the_patient_and_selections_point_into_them(demo):
    patient = demo.patient("demo-02")
    drafts = [DRAFTS_BY_KEY["metformin"], DRAFTS_BY_KEY["apixaban"]]
    context = build_context("order-select", patient, now=NOW, drafts=drafts, selected=["draft-metformin"])
    orders = [e["resource"] for e in context["draftOrders"]["entry"]]
    assert [o["id"] for o in orders] == ["draft-metformin", "draft-apixaban"]
    for order in orders:
        assert order["status"] == "draft" and order["subject"] == {"reference": "Patient/demo-02"}
        assert order["requester"] == {"reference": context["userId"]} and order["authoredOn"] == "2026-06-01"
        assert order["encounter"] == {"reference": f"Encounter/{context['encounterId']}"}
    assert context["selections"] == ["MedicationRequest/draft-metformin"]  # HOOK-OSEL-4
    # Nothing selected (or nothing matching): the last draft; nothing drafted: the default draft.
    assert build_context("order-select", patient, now=NOW, drafts=drafts)["selections"] == ["MedicationRequest/draft-apixaban"]
    default = build_context("order-sign", patient, now=NOW)["draftOrders"]["entry"]
    assert [e["resource"]["id"] for e in default] == [DEFAULT_DRAFT.id]


# ------------------------------------------------------------------------------------------ signing

ISS = "https://ehr.example.org"


def _jwk_file(tmp_path, **extra) -> tuple[Path, dict]:
    key = ec.generate_private_key(ec.SECP384R1())
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)) | {"kid": "ehr-1", **extra}
    path = tmp_path / "ehr-key.json"
    path.write_text(json.dumps(private))
    public = {k: v for k, v in private.items() if k != "d"}
    return path, public


def test_a_token_signed_with_a_key_file_passes_the_services_verifier(make_app, tmp_path):
    """SEC-3/4/5/8: the app's own verifier accepts the token for the endpoint it was made for, once."""
    path, public = _jwk_file(tmp_path)
    sign = Signer(load_key(path), ISS, jku=f"{ISS}/jwks")
    app = make_app(auth_required=True, clients=[{"iss": ISS, "jwks": {"keys": [public]}, "jku": [f"{ISS}/jwks"]}])
    client = app.test_client()
    aud = f"{BASE}/cds-services"
    token = sign(aud)
    assert jwt.get_unverified_header(token) == {"alg": "ES384", "typ": "JWT", "kid": "ehr-1", "jku": f"{ISS}/jwks"}
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 401  # jti replayed
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {sign(aud)}"}).status_code == 200  # fresh jti
    other = client.get("/cds-services", headers={"Authorization": f"Bearer {sign(f'{BASE}/cds-services/x')}"})
    assert other.status_code == 401  # aud is another endpoint (SEC-5)


def test_the_demo_key_signs_as_the_simulator_and_passes_the_demo_trust(make_app):
    app = make_app(auth_required=True, clients=[{"iss": f"{BASE}/simulator", "jwks_file": str(PUBLIC_JWKS),
                                                  "jku": [f"{BASE}/simulator/.well-known/jwks.json"]}])
    token = DemoKey().signer(BASE)(f"{BASE}/cds-services")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"{BASE}/simulator" and claims["exp"] - claims["iat"] == 300
    assert app.test_client().get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("change, message", [
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "d"})), "no private part"),
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "kid"})), "no kid"),
    (lambda p: p.write_text(json.dumps({"keys": [json.loads(p.read_text())] * 2})), "exactly one private key"),
    (lambda p: p.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"), "not a JWK"),
])
def test_unusable_key_files_are_refused_in_one_line(tmp_path, change, message):
    path, _ = _jwk_file(tmp_path)
    change(path)
    with pytest.raises(EhrInputError, match=message):
        load_key(path)


def test_symmetric_algorithms_are_refused(tmp_path):
    """SEC-6: never HS* or none, whatever the caller asks for."""
    path, _ = _jwk_file(tmp_path)
    with pytest.raises(EhrInputError, match="SEC-6"):
        load_key(path, alg="HS256")


# ------------------------------------------------------------------------------------------ boundaries

def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package, forbidden", [("ehr", ("flask", "werkzeug", "cds_service.ui")), ("cli", ("cds_service.ui",))])
def test_the_ehr_and_the_cli_do_not_import_the_ui(package, forbidden):
    """What each module imports itself (the package's `__init__`, the app factory, loads the ui for every import)."""
    for path in sorted((ROOT / "cds_service" / package).glob("*.py")):
        bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in forbidden)]
        assert not bad, f"{path.name} imports {bad}"
        assert "ImportError" not in path.read_text(encoding="utf-8"), f"{path.name} guards an import"


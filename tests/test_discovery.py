"""Discovery endpoint (DISC-1..6, GEN-1/2, TOKEN-1..3)."""
import json
from pathlib import Path

from cds_testing.spec_rules import assert_no_empty_members

SNAPSHOT = Path(__file__).parent / "fixtures" / "discovery_ascvd.json"


def test_disc1_discovery_returns_services_array(client):
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"  # GEN-1
    assert isinstance(resp.get_json()["services"], list)


def test_disc4_descriptor_fields_and_gen2(client):
    body = client.get("/cds-services").get_json()
    assert_no_empty_members(body)  # GEN-2, DISC-6
    ids = {(s["id"], s["hook"]) for s in body["services"]}
    assert ("ascvd-10y-risk", "patient-view") in ids
    for s in body["services"]:
        for field in ("hook", "description", "id", "title"):
            assert isinstance(s[field], str) and s[field]
        for key, template in s.get("prefetch", {}).items():
            assert isinstance(key, str) and isinstance(template, str)


def test_disc5_ids_repeat_only_with_distinct_hooks(client):
    services = client.get("/cds-services").get_json()["services"]
    pairs = [(s["id"], s["hook"]) for s in services]
    assert len(pairs) == len(set(pairs))


def test_disc_ascvd_descriptor_matches_snapshot(client):
    """Contract test (habit 18): the published ascvd descriptor changes only on purpose."""
    services = client.get("/cds-services").get_json()["services"]
    ascvd = next(s for s in services if s["id"] == "ascvd-10y-risk")
    assert ascvd == json.loads(SNAPSHOT.read_text())


def test_token1_2_templates_use_only_context_tokens(client):
    import re

    for s in client.get("/cds-services").get_json()["services"]:
        for template in s.get("prefetch", {}).values():
            for token in re.findall(r"\{\{\s*([^}]*?)\s*\}\}", template):
                assert token in ("context.userId", "context.patientId", "context.encounterId", "userPractitionerId",
                                 "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"), token


def test_disc2_no_services_still_200(make_app):
    client = make_app(services=[]).test_client()
    resp = client.get("/cds-services")
    assert resp.status_code == 200 and resp.get_json() == {"services": []}

"""Assertions of checklist rules over JSON our service emits (used across tests)."""
from __future__ import annotations


def assert_no_empty_members(obj, path="$", allowed=("$.cards", "$.services")):
    """GEN-2: no null, "", [] or {} anywhere, except the top-level cards/services arrays."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}"
            assert v is not None and v != "" and (v != [] or p in allowed) and v != {}, f"GEN-2: empty member at {p}"
            assert_no_empty_members(v, p, allowed)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_no_empty_members(v, f"{path}[{i}]", allowed)


def assert_valid_card(card: dict):
    """CARD-1..5, SRC-1, SUGG-1, ACT-1, OVR-1, LINK-1/2 on one card."""
    assert isinstance(card.get("uuid"), str) and card["uuid"]  # CARD-1 [OUR CHOICE] always set
    assert 0 < len(card["summary"]) <= 139  # CARD-2
    assert card["indicator"] in ("info", "warning", "critical")  # CARD-3
    assert card["source"]["label"]  # SRC-1
    if "suggestions" in card:
        assert card.get("selectionBehavior") in ("at-most-one", "any")  # CARD-4
        if card["selectionBehavior"] == "at-most-one":  # CARD-5
            assert sum(1 for s in card["suggestions"] if s.get("isRecommended")) <= 1
        for s in card["suggestions"]:
            assert s["label"] and s["uuid"]  # SUGG-1
            for a in s.get("actions", []):
                assert a["type"] in ("create", "update", "delete") and a["description"]  # ACT-1
                if a["type"] == "delete":
                    assert "resourceId" in a and "resource" not in a
                else:
                    assert a["resource"]["resourceType"]
    else:
        assert "selectionBehavior" not in card
    for r in card.get("overrideReasons", []):
        assert r["code"] and r["system"] and r["display"]  # OVR-1, CODING-1
    for link in card.get("links", []):
        assert link["label"] and link["url"] and link["type"] in ("absolute", "smart")  # LINK-1
        assert "appContext" not in link or link["type"] == "smart"  # LINK-2
    assert_no_empty_members(card, "$.card")


def assert_operation_outcome(resp, status: int, expression: str | None = None):
    """ERR-3: a non-2xx answer carries an OperationOutcome naming the offending field."""
    assert resp.status_code == status, resp.data
    body = resp.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"] and issue["diagnostics"]
    assert "Traceback" not in resp.get_data(as_text=True)
    if expression is not None:
        assert expression in issue.get("expression", []), issue
    return issue

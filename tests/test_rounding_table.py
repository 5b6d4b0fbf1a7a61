"""Rounding is stated once: the table beside `unit_text` (`fhir_adapters.units.FIXED_DIGITS`, `value_text`) rounds every
laboratory value a card shows. No service file carries its own decimals, and a file that tries is refused with the
place the rule lives."""
from __future__ import annotations

import re
import tomllib

import pytest

from cds_service.ehr.contexts import build_context, now_utc
from cds_service.ehr.hook_calls import build_call
from cds_service.ehr.patients import DemoPatients, patient_from_resources
from cds_testing.apps import service_file
from fhir_adapters import units
from hooks import SERVICES_DIR, ServiceFileError


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_no_service_file_sets_its_own_rounding():
    files = sorted(SERVICES_DIR.glob("*.toml"))
    assert len(files) >= 7
    for path in files:
        assert "digits" not in set(_keys(tomllib.loads(path.read_text(encoding="utf-8")))), path.name


@pytest.mark.parametrize("service, old, new, field", [
    ("diabetes-detection", 'count = "n_hba1c_diagnostic"\nlabel = "HbA1c"\nunit = "%"\n',
     'count = "n_hba1c_diagnostic"\nlabel = "HbA1c"\nunit = "%"\ndigits = 1\n', "data.tests[0].digits"),
    ("ascvd-10y-risk", 'label = "HbA1c", unit = "%" }', 'label = "HbA1c", unit = "%", digits = 1 }', "data.diabetes_range[0].digits"),
])
def test_a_digits_key_is_refused_naming_the_one_table(make_app, service, old, new, field):
    """A per-file `digits` could disagree with the table (a card rounding HbA1c one way, the page another): it is
    an unknown key, reported at its line with where rounding is decided."""
    text = service_file(service)
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "digits = 1" in s)
    with pytest.raises(ServiceFileError) as err:
        make_app(services={service: text})
    assert err.value.field == field and err.value.line == line
    assert "unknown key 'digits'" in str(err.value) and "fhir_adapters/units.py" in str(err.value)


def _cards(app, service: str) -> str:
    """The text of every card of `service` for demo-35 (HbA1c 6.8 %, 2-hour OGTT 250 mg/dL, no diagnosis)."""
    bound = next(iter(app.extensions["cds"].services[service]))
    resources = DemoPatients().resources("demo-35")
    body = build_call(bound, resources, build_context("patient-view", patient_from_resources(resources), now=now_utc())).body
    resp = app.test_client().post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 200
    return "\n".join(c["summary"] + "\n" + c.get("detail", "") for c in resp.get_json()["cards"])


@pytest.mark.parametrize("service", ["diabetes-detection", "ascvd-10y-risk"])
def test_displayed_lab_values_follow_the_one_table(app, monkeypatch, service):
    """HbA1c 1 decimal and plasma glucose whole numbers, as the table says — and a change to the table is a change
    to the card (the builders hold no decimals of their own)."""
    text = _cards(app, service)
    assert re.search(r"HbA1c( \| | )6\.8%", text) and re.search(r"2-hour OGTT glucose( \| | )250 mg/dL", text), text
    ogtt = "ogtt" if service == "diabetes-detection" else "ogtt_2h"
    monkeypatch.setitem(units.FIXED_DIGITS, "hba1c", 2)
    monkeypatch.setitem(units.FIXED_DIGITS, ogtt, 1)
    text = _cards(app, service)
    assert re.search(r"HbA1c( \| | )6\.80%", text) and re.search(r"2-hour OGTT glucose( \| | )250\.0 mg/dL", text), text
    assert not re.search(r"6\.8%|250 mg/dL", text)

#!/usr/bin/env python3
"""Regenerate the EHR simulator's synthetic patients (cds_service/demo/patients/*.json): 30 from carebundle's
cohort and profiles, and 5 bespoke patients for hazard paths the cohort has none of (BESPOKE below).

    .venv/bin/pip install carebundle==0.5.0
    .venv/bin/python scripts/make_demo_patients.py

Deterministic: carebundle's output is byte-identical for a seed, and every addition below uses
`random.Random(SEED)`, so running this again writes the same files. The committed files are
trimmed to what the services read (no narrative `text`, no DiagnosticReport, no US Core profile
tags); every resource keeps the `HTEST` ("test health data") security label.

carebundle draws from its own profiles (healthy, hypertension, type2_diabetes, ckd_stage3, ...).
It has no atrial fibrillation, myocardial infarction or acutely unwell patient, and no smoking
status, so the SCENARIOS below add those, each written down here so that a reader knows which
data came from the generator and which was added for a demo scenario.
"""
from __future__ import annotations

import json
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import carebundle
from carebundle import generate_bundle, generate_cohort

SEED = 2026
REFERENCE = date(2026, 1, 1)  # carebundle's visit date; the simulator shifts all times to "now" when it loads them
OUT = Path(__file__).resolve().parent.parent / "cds_service" / "demo" / "patients"

LOINC, SNOMED, ICD10 = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
HTEST = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
                       "display": "test health data"}]}
SMOKING = {  # LOINC 72166-2 answers (clinical/data-and-models.md)
    "current": (SNOMED, "449868002", "Smokes tobacco daily"),
    "former": (SNOMED, "8517006", "Ex-smoker"),
    "never": (SNOMED, "266919005", "Never smoked tobacco"),
}


def bundles() -> list[tuple[str, dict]]:
    """(profile, carebundle transaction Bundle) for the 30 demo patients."""
    out = [("mixed", b) for b in generate_cohort(count=24, seed=SEED, sex="mixed", age_range=(40, 79),
                                                   reference_date=REFERENCE)]
    out += [("type2_diabetes", generate_bundle(profile="type2_diabetes", seed=SEED + 1, sex=s, age_range=(45, 75),
                                               reference_date=REFERENCE, index=i)) for i, s in enumerate("FM")]
    out += [("ckd_stage3", generate_bundle(profile="ckd_stage3", seed=SEED + 2, sex=s, age_range=(66, 84),
                                           reference_date=REFERENCE, index=i)) for i, s in enumerate("FMF")]
    out += [("healthy", generate_bundle(profile="healthy", seed=SEED + 3, sex="F", age_range=(28, 38),
                                        reference_date=REFERENCE, index=0))]
    return [(p, json.loads(carebundle.to_json(b))) for p, b in out]


# ---- conversion: transaction Bundle → a trimmed collection of resources with ids --------------


def convert(index: int, bundle: dict) -> list[dict]:
    """Give every resource an id, rewrite `urn:uuid:` references to `Type/id`, drop what no service reads."""
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "DiagnosticReport"]
    ids: dict[str, str] = {}
    for e in entries:
        r = e["resource"]
        rid = f"demo-{index + 1:02d}" if r["resourceType"] == "Patient" else e["fullUrl"].removeprefix("urn:uuid:")
        ids[e["fullUrl"]] = f"{r['resourceType']}/{rid}"
    out = []
    for e in entries:
        r = _rewrite(e["resource"], ids)
        r.pop("text", None)
        r.pop("performer", None)  # the lab's practitioner: no service reads it
        r["meta"] = HTEST
        r = {"resourceType": r.pop("resourceType"), "id": ids[e["fullUrl"]].split("/", 1)[1], **r}
        out.append(r)
    return out


def _rewrite(value, ids):
    if isinstance(value, dict):
        return {k: (ids.get(v, v) if k == "reference" else _rewrite(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


# ---- demo scenarios (added data; each is deterministic) ---------------------------------------


def _of(resources, rtype):
    return [r for r in resources if r["resourceType"] == rtype]


def _patient(resources):
    return _of(resources, "Patient")[0]


def _age(resources) -> int:
    born = date.fromisoformat(_patient(resources)["birthDate"])
    return REFERENCE.year - born.year - ((REFERENCE.month, REFERENCE.day) < (born.month, born.day))


def _new_id(kind: str, pid: str, n: int = 0) -> str:
    return f"{pid}-{kind}{'-' + str(n) if n else ''}"


def _refs(resources):
    p = _patient(resources)
    enc = _of(resources, "Encounter")[0]
    return {"reference": f"Patient/{p['id']}"}, {"reference": f"Encounter/{enc['id']}"}


def _concept(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _observation(resources, oid, code, display, when, *, value=None, unit=None, ucum=None, answer=None,
                 category="laboratory", encounter=None):
    subject, enc = _refs(resources)
    obs = {"resourceType": "Observation", "id": oid, "meta": HTEST, "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": category}]}],
           "code": _concept(LOINC, code, display), "subject": subject, "encounter": encounter or enc,
           "effectiveDateTime": when}
    if answer is not None:
        obs["valueCodeableConcept"] = _concept(*answer)
    else:
        obs["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": ucum or unit}
    return obs


def _condition(resources, cid, icd, snomed, display, onset, encounter=None):
    subject, enc = _refs(resources)
    return {"resourceType": "Condition", "id": cid, "meta": HTEST,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                      "code": "problem-list-item" if encounter is None else "encounter-diagnosis"}]}],
            "code": {"coding": [{"system": ICD10, "code": icd, "display": display},
                                {"system": SNOMED, "code": snomed[0], "display": snomed[1]}], "text": display},
            "subject": subject, "encounter": encounter or enc, "onsetDateTime": onset}


def _encounter(resources, eid, cls, display, start, status="in-progress", end=None):
    subject, _ = _refs(resources)
    enc = {"resourceType": "Encounter", "id": eid, "meta": HTEST, "status": status,
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls, "display": display},
           "type": [{"text": display.capitalize() + " encounter"}], "subject": subject, "period": {"start": start}}
    if end:
        enc["period"]["end"] = end
    return enc


def ckd_epi_2021(creatinine_mg_dl: float, age: int, female: bool) -> float:
    """CKD-EPI 2021 creatinine equation (Inker 2021), to keep an edited creatinine and its eGFR coherent."""
    k, a = (0.7, -0.241) if female else (0.9, -0.302)
    r = creatinine_mg_dl / k
    return 142 * min(r, 1) ** a * max(r, 1) ** -1.200 * 0.9938 ** age * (1.012 if female else 1.0)


def add_smoking(rng: random.Random, patients: list[list[dict]]) -> None:
    """Smoking status (LOINC 72166-2) for every patient but demo-04 and demo-11 (to show a missing input)."""
    for res in patients:
        pid = _patient(res)["id"]
        if pid in ("demo-04", "demo-11"):
            continue
        status = rng.choices(["current", "former", "never"], weights=[25, 30, 45])[0]
        res.append(_observation(res, _new_id("smoking", pid), "72166-2", "Tobacco smoking status",
                                f"{REFERENCE.isoformat()}T09:00:00Z", answer=SMOKING[status], category="social-history"))


def add_atrial_fibrillation(res: list[dict]) -> None:
    """Atrial fibrillation on the problem list (ICD-10-CM I48.91, SNOMED 49436004), onset two years ago."""
    pid = _patient(res)["id"]
    res.append(_condition(res, _new_id("af", pid), "I48.91", ("49436004", "Atrial fibrillation"),
                          "Unspecified atrial fibrillation", (REFERENCE - timedelta(days=730)).isoformat()))


def lower_kidney_function(res: list[dict], creatinine: float) -> None:
    """Set this patient's creatinine (LOINC 2160-0) and recompute its eGFR (98979-8) with CKD-EPI 2021."""
    p = _patient(res)
    egfr = round(ckd_epi_2021(creatinine, _age(res), p["gender"] == "female"))
    for o in _of(res, "Observation"):
        code = o["code"]["coding"][0]["code"]
        if code == "2160-0":
            o["valueQuantity"]["value"] = creatinine
        elif code == "98979-8":
            o["valueQuantity"]["value"] = egfr


def add_myocardial_infarction(res: list[dict]) -> None:
    """A 5-day inpatient stay for an NSTEMI (ICD-10-CM I21.4, SNOMED 22298006), in progress, ready for discharge."""
    pid = _patient(res)["id"]
    start = datetime.combine(REFERENCE - timedelta(days=5), datetime.min.time()).replace(hour=3)
    enc = _encounter(res, _new_id("admission", pid), "IMP", "inpatient", start.isoformat() + "Z")
    ref = {"reference": f"Encounter/{enc['id']}"}
    res.append(enc)
    res.append(_condition(res, _new_id("nstemi", pid), "I21.4", ("22298006", "Myocardial infarction"),
                          "Non-ST elevation (NSTEMI) myocardial infarction", start.date().isoformat(), encounter=ref))
    when = (start + timedelta(minutes=20)).isoformat() + "Z"
    for n, (code, display, value, unit, ucum) in enumerate([
        ("8867-4", "Heart rate", 96, "beats/minute", "/min"),
        ("8480-6", "Systolic blood pressure", 128, "mm[Hg]", "mm[Hg]"),
        ("8462-4", "Diastolic blood pressure", 78, "mm[Hg]", "mm[Hg]"),
    ], start=1):
        res.append(_observation(res, _new_id("admission-vitals", pid, n), code, display, when, value=value, unit=unit,
                                ucum=ucum, category="vital-signs", encounter=ref))


def add_acute_illness(res: list[dict]) -> None:
    """An emergency visit in progress with abnormal vital signs two hours after the clinic visit's (deterioration scores)."""
    pid = _patient(res)["id"]
    start = f"{REFERENCE.isoformat()}T10:30:00Z"
    enc = _encounter(res, _new_id("emergency", pid), "EMER", "emergency", start)
    ref = {"reference": f"Encounter/{enc['id']}"}
    res.append(enc)
    res.append(_condition(res, _new_id("pneumonia", pid), "J18.9", ("233604007", "Pneumonia"),
                          "Pneumonia, unspecified organism", REFERENCE.isoformat(), encounter=ref))
    when = f"{REFERENCE.isoformat()}T11:00:00Z"
    for n, (code, display, value, unit, ucum) in enumerate([
        ("9279-1", "Respiratory rate", 24, "breaths/minute", "/min"),
        ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 92, "%", "%"),
        ("8310-5", "Body temperature", 38.6, "Cel", "Cel"),
        ("8480-6", "Systolic blood pressure", 98, "mm[Hg]", "mm[Hg]"),
        ("8867-4", "Heart rate", 118, "beats/minute", "/min"),
        ("9269-2", "Glasgow coma score total", 14, "{score}", "{score}"),  # new confusion
    ], start=1):
        res.append(_observation(res, _new_id("ed-vitals", pid, n), code, display, when, value=value, unit=unit,
                                ucum=ucum, category="vital-signs" if code != "9269-2" else "exam", encounter=ref))


def age_monitoring_labs(res: list[dict], days: int) -> None:
    """Date this patient's HbA1c, urine albumin/creatinine and lipid results `days` earlier (overdue monitoring)."""
    for o in _of(res, "Observation"):
        if o["code"]["coding"][0]["code"] in ("4548-4", "9318-7", "14957-5", "2093-3", "2085-9", "13457-7", "2571-8"):
            when = datetime.fromisoformat(o["effectiveDateTime"].replace("Z", "+00:00")) - timedelta(days=days)
            o["effectiveDateTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_diabetes_screening(res: list[dict], glucose_2h: float, pregnancies: int) -> None:
    """A 2-hour 75 g OGTT glucose (LOINC 1518-0) and the number of pregnancies (LOINC 11996-6), which
    carebundle does not produce. diabetes-detection classifies the OGTT with the HbA1c by the ADA 2026
    thresholds (2-h glucose < 140 mg/dL normal, 140-199 prediabetes); no bundled service reads the number
    of pregnancies."""
    pid = _patient(res)["id"]
    when = f"{(REFERENCE - timedelta(days=30)).isoformat()}T08:00:00Z"
    res.append(_observation(res, _new_id("ogtt", pid), "1518-0",
                            "Glucose [Mass/volume] in Serum or Plasma --2 hours post 75 g glucose PO", when,
                            value=glucose_2h, unit="mg/dL"))
    res.append(_observation(res, _new_id("pregnancies", pid), "11996-6", "[#] Pregnancies", when,
                            value=pregnancies, unit="{#}", category="social-history"))


# Which patient gets which addition, and the one-line scenario the simulator shows for it.
SCENARIOS: dict[str, tuple[str, list]] = {
    "demo-04": ("No smoking status recorded: the ASCVD card names the missing input", []),
    "demo-05": ("Obesity, normal HbA1c and OGTT: diabetes screening up to date, next test date shown",
                [lambda r: add_diabetes_screening(r, 128, 2)]),
    "demo-17": ("Obesity, HbA1c and OGTT in the prediabetes range: retest date and a lifestyle programme referral",
                [lambda r: add_diabetes_screening(r, 176, 5)]),
    "demo-19": ("Smoker, 74, untreated cholesterol: high ASCVD risk with a statin suggestion", []),
    "demo-23": ("Normal HbA1c and OGTT on file: diabetes screening up to date, no test ordered",
                [lambda r: add_diabetes_screening(r, 104, 3)]),
    "demo-25": ("Type 2 diabetes", []),
    "demo-26": ("Diabetes, HbA1c and lipids 14 months old: fire appointment-book", [lambda r: age_monitoring_labs(r, 420)]),
    "demo-27": ("CKD stage 3 with atrial fibrillation: try apixaban or ibuprofen at order-sign",
                [add_atrial_fibrillation]),
    "demo-28": ("CKD stage 3, atrial fibrillation", [add_atrial_fibrillation]),
    "demo-29": ("Severe CKD (eGFR < 30): try metformin or ibuprofen at order-sign",
                [lambda r: lower_kidney_function(r, 2.2)]),
    "demo-30": ("Young woman outside the ASCVD equations' age range; normal HbA1c and OGTT: diabetes screening up to date",
                [lambda r: add_diabetes_screening(r, 96, 1)]),
}


# ---- bespoke patients: hazard paths the cohort has no patient for (a clinician's pass) ------------
# Each is generated by carebundle like the others and given the data of its scenario; they come after the 30
# cohort patients and draw from their own seeds, so the first 30 files do not change. Their times stay before the
# cohort's latest time (the anchor), so that the simulator's time shift is the same.

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"


def _problem(resources, cid, icd, display, onset, snomed=None):
    """An active problem-list Condition coded in ICD-10-CM (and SNOMED CT when given)."""
    c = _condition(resources, cid, icd, snomed or ("", ""), display, onset)
    del c["encounter"]  # a problem-list entry, not a diagnosis of today's visit
    if snomed is None:
        c["code"]["coding"] = c["code"]["coding"][:1]
    return c


def _medication(resources, mid, rxcui, ingredient, text, authored):
    """An active MedicationRequest coded by its RxNorm ingredient (the product named in `text`)."""
    subject, _ = _refs(resources)
    return {"resourceType": "MedicationRequest", "id": mid, "meta": HTEST, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui, "display": ingredient}], "text": text},
            "subject": subject, "authoredOn": authored}


def _procedure(resources, pid_, code, display, when):
    subject, _ = _refs(resources)
    return {"resourceType": "Procedure", "id": pid_, "meta": HTEST, "status": "completed",
            "code": {"coding": [{"system": CPT, "code": code, "display": display}], "text": display},
            "subject": subject, "performedDateTime": when}


def _set_value(resources, code, value):
    for o in _of(resources, "Observation"):
        if o["code"]["coding"][0]["code"] == code:
            o["valueQuantity"]["value"] = value


def _days_before(days: int, hour: int = 9) -> str:
    return datetime.combine(REFERENCE - timedelta(days=days), datetime.min.time()).replace(hour=hour).isoformat() + "Z"


# The NEWS2 chart 1 parameters of an emergency visit's vital-sign set: (LOINC, display, unit shown, UCUM).
VITALS = {"rr": ("9279-1", "Respiratory rate", "breaths/minute", "/min"),
          "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%"),
          "temp": ("8310-5", "Body temperature", "Cel", "Cel"),
          "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]"),
          "pulse": ("8867-4", "Heart rate", "beats/minute", "/min")}


def _emergency_visit(res, **values):
    """An emergency encounter in progress with one set of vital signs taken together (NEWS2 chart 1 parameters), the
    patient alert."""
    pid = _patient(res)["id"]
    enc = _encounter(res, _new_id("emergency", pid), "EMER", "emergency", f"{REFERENCE.isoformat()}T10:00:00Z")
    ref = {"reference": f"Encounter/{enc['id']}"}
    res.append(enc)
    when = f"{REFERENCE.isoformat()}T10:40:00Z"
    vitals = [(*VITALS[name][:2], value, *VITALS[name][2:]) for name, value in values.items()]
    for n, (code, display, value, unit, ucum) in enumerate(vitals, start=1):
        res.append(_observation(res, _new_id("ed-vitals", pid, n), code, display, when, value=value, unit=unit, ucum=ucum,
                                category="vital-signs", encounter=ref))
    res.append(_observation(res, _new_id("acvpu", pid), "67775-7", "Level of consciousness (ACVPU)", when,
                            answer=(SNOMED, "248234008", "Mentally alert"), category="exam", encounter=ref))


def mechanical_valve(res):
    """AF with a mechanical mitral valve (Z95.2) on warfarin, INR in the valve's range: a low AF stroke score must
    not make warfarin look removable, and a DOAC is not for a mechanical valve."""
    pid = _patient(res)["id"]
    res.append(_problem(res, _new_id("af", pid), "I48.91", "Unspecified atrial fibrillation", _days_before(1500)[:10],
                        ("49436004", "Atrial fibrillation")))
    res.append(_problem(res, _new_id("valve", pid), "Z95.2", "Presence of prosthetic heart valve (mechanical mitral valve)",
                        _days_before(2900)[:10]))
    res.append(_medication(res, _new_id("warfarin", pid), "11289", "warfarin", "warfarin sodium 5 MG Oral Tablet",
                           _days_before(120)))
    for n, (days, inr) in enumerate([(84, 2.7), (56, 3.1), (28, 2.9), (3, 3.2)], start=1):
        res.append(_observation(res, _new_id("inr", pid, n), "6301-6", "INR in Platelet poor plasma by Coagulation assay",
                                _days_before(days), value=inr, unit="{INR}"))


def acs_with_stent(res):
    """AF after an NSTEMI treated with a coronary stent two months ago, on aspirin and clopidogrel: after ACS/PCI the
    P2Y12 inhibitor (and early on aspirin) has an indication and is never removed in one click."""
    pid = _patient(res)["id"]
    res.append(_problem(res, _new_id("af", pid), "I48.91", "Unspecified atrial fibrillation", _days_before(60)[:10],
                        ("49436004", "Atrial fibrillation")))
    res.append(_problem(res, _new_id("nstemi", pid), "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction",
                        _days_before(62)[:10], ("22298006", "Myocardial infarction")))
    res.append(_problem(res, _new_id("stent", pid), "Z95.5", "Presence of coronary angioplasty implant and graft",
                        _days_before(62)[:10]))
    res.append(_procedure(res, _new_id("pci", pid), "92928", "Percutaneous transcatheter placement of intracoronary stent",
                          _days_before(62, hour=14)))
    res.append(_medication(res, _new_id("aspirin", pid), "1191", "aspirin", "aspirin 81 MG Oral Tablet", _days_before(62)))
    res.append(_medication(res, _new_id("clopidogrel", pid), "32968", "clopidogrel", "clopidogrel 75 MG Oral Tablet",
                           _days_before(62)))


def child_in_emergency(res):
    """A 10-year-old in the emergency department with vital signs normal for the age: no adult score (NEWS2 is for
    16 and over), no adult renal dosing, no adult screening."""
    _emergency_visit(res, rr=24, spo2=98, temp=37.2, sbp=102, pulse=108)


def pregnant_in_emergency(res):
    """A pregnant woman (Z34.00 and a pregnancy status) on a statin started before the pregnancy, in the emergency
    department: an obstetric early warning score, not NEWS2; no statin advice; no adult diabetes thresholds."""
    pid = _patient(res)["id"]
    res.append(_problem(res, _new_id("pregnancy", pid), "Z34.00", "Encounter for supervision of normal first pregnancy",
                        _days_before(70)[:10], ("77386006", "Pregnancy")))
    res.append(_observation(res, _new_id("pregnancy-status", pid), "82810-3", "Pregnancy status", _days_before(70),
                            answer=(LOINC, "LA15173-0", "Pregnant"), category="social-history"))
    res.append(_medication(res, _new_id("atorvastatin", pid), "83367", "atorvastatin", "atorvastatin 20 MG Oral Tablet",
                           _days_before(400)))
    _emergency_visit(res, rr=22, spo2=96, temp=37.9, sbp=104, pulse=112)


def undiagnosed_diabetes(res):
    """HbA1c 6.8 % and a 2-hour OGTT of 250 mg/dL with no diabetes on the problem list: results in the diabetes range
    (ADA 2026 section 2), never a risk percentage."""
    pid = _patient(res)["id"]
    _set_value(res, "4548-4", 6.8)
    res.append(_observation(res, _new_id("ogtt", pid), "1518-0",
                            "Glucose [Mass/volume] in Serum or Plasma --2 hours post 75 g glucose PO", _days_before(30, hour=8),
                            value=250, unit="mg/dL"))


# (profile, sex, age range, smoking status, the additions, the simulator's one-line scenario)
BESPOKE = [
    ("healthy", "M", (55, 60), "never", mechanical_valve,
     "AF with a mechanical mitral valve (Z95.2) on warfarin: re-sign warfarin or try a DOAC at order-sign"),
    ("hypertension", "F", (68, 72), "former", acs_with_stent,
     "AF two months after an NSTEMI with a coronary stent, on aspirin and clopidogrel: try apixaban at order-sign"),
    ("healthy", "M", (9, 11), None, child_in_emergency,
     "A 10-year-old in the emergency department: no adult score (fire encounter-start), no adult dosing"),
    ("healthy", "F", (28, 33), "never", pregnant_in_emergency,
     "Pregnant, on a statin started before the pregnancy, in the emergency department: fire encounter-start, patient-view"),
    ("hypertension", "M", (50, 55), "current", undiagnosed_diabetes,
     "HbA1c 6.8% and a 2-hour OGTT of 250 mg/dL, no diabetes diagnosis: results in the diabetes range"),
]


def bespoke(first_index: int) -> list[tuple[list[dict], str]]:
    """(resources, scenario) of each bespoke patient, numbered from `first_index` (0-based, as `convert`)."""
    out = []
    for i, (profile, sex, ages, smoking, add, scenario) in enumerate(BESPOKE):
        bundle = json.loads(carebundle.to_json(generate_bundle(profile=profile, seed=SEED + 10 + i, sex=sex, age_range=ages,
                                                               reference_date=REFERENCE)))
        res = convert(first_index + i, bundle)
        if smoking:
            res.append(_observation(res, _new_id("smoking", _patient(res)["id"]), "72166-2", "Tobacco smoking status",
                                    f"{REFERENCE.isoformat()}T09:00:00Z", answer=SMOKING[smoking], category="social-history"))
        add(res)
        out.append((res, scenario))
    return out


def _times(resources: list[dict]):
    for r in resources:
        for field in ("effectiveDateTime", "issued", "onsetDateTime", "authoredOn"):
            if "T" in str(r.get(field, "")):
                yield r[field]
        if "T" in str((r.get("period") or {}).get("start", "")):
            yield r["period"]["start"]


def _one_entry_per_line(bundle: dict) -> str:
    """Compact JSON with one entry per line: small, and a regenerated file diffs line by line."""
    head = json.dumps({k: v for k, v in bundle.items() if k != "entry"}, ensure_ascii=False)[:-1]
    lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in bundle["entry"]]
    return head + ', "entry": [\n' + ",\n".join(lines) + "\n]}\n"


def main() -> int:
    if carebundle.__version__ != "0.5.0":
        print(f"warning: carebundle {carebundle.__version__}; the committed files were made with 0.5.0", file=sys.stderr)
    rng = random.Random(SEED)
    patients = [convert(i, b) for i, (_, b) in enumerate(bundles())]
    add_smoking(rng, patients)
    by_id = {_patient(r)["id"]: r for r in patients}
    # One MI admission (a man in his 60s-70s) and one acutely unwell patient, picked deterministically from the cohort.
    older_men = [pid for pid, r in by_id.items() if _patient(r)["gender"] == "male" and 60 <= _age(r) <= 79 and int(pid[5:]) <= 24]
    mi, ill = older_men[0], older_men[-1]
    add_myocardial_infarction(by_id[mi])
    SCENARIOS[mi] = ("Inpatient NSTEMI, ready for discharge: fire encounter-discharge", [])
    add_acute_illness(by_id[ill])
    SCENARIOS[ill] = ("Emergency visit with abnormal vital signs: fire encounter-start", [])
    older = [pid for pid, r in by_id.items() if _age(r) >= 65 and int(pid[5:]) <= 24 and pid not in (mi, ill)]
    af = older[0]
    SCENARIOS[af] = ("Atrial fibrillation, normal kidney function: try an anticoagulant at order-sign", [add_atrial_fibrillation])
    for pid, (_, steps) in SCENARIOS.items():
        for step in steps:
            step(by_id[pid])
    anchor = max(t for res in by_id.values() for t in _times(res))
    for res, scenario in bespoke(len(by_id)):
        by_id[_patient(res)["id"]] = res
        SCENARIOS[_patient(res)["id"]] = (scenario, [])
    if max(t for res in by_id.values() for t in _times(res)) != anchor:
        raise SystemExit("a bespoke patient is dated after the cohort's latest time: the simulator's time shift would change")

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    index = []
    for pid, res in by_id.items():
        bundle = {"resourceType": "Bundle", "id": pid, "meta": HTEST, "type": "collection",
                  "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in res]}
        (OUT / f"{pid}.json").write_text(_one_entry_per_line(bundle), encoding="utf-8")
        index.append({"id": pid, "file": f"{pid}.json", "scenario": SCENARIOS.get(pid, ("", []))[0]})
    # The latest clinical time in the data (`anchor`): the simulator maps it to "half an hour ago" when it loads them.
    meta = {"generator": f"carebundle {carebundle.__version__}", "seed": SEED, "reference_date": REFERENCE.isoformat(),
            "anchor": anchor,
            "command": "python scripts/make_demo_patients.py", "patients": index}
    (OUT / "index.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(index)} patients to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Clinical scenarios for `af-anticoagulation` (order-sign), each a plain FHIR R4 request through the HTTP API.

Sources encoded (cited in each docstring):
- 2023 ACC/AHA/ACCP/HRS Guideline for the Diagnosis and Management of Atrial Fibrillation (Joglar JA et al.,
  Circulation 2024;149:e1-e156): 6.1 (risk scores; bleeding factors such as drugs), 6.2, 6.3.1 (CHA2DS2-VASc
  ≥ 2 men / ≥ 3 women: class 1; 1 men / 2 women: class 2a; DOACs over warfarin except with moderate-severe
  rheumatic mitral stenosis or a mechanical heart valve), and its recommendations for AF with ACS or PCI
  (aspirin stopped after 1–4 weeks, OAC with a P2Y12 inhibitor — clopidogrel preferred — for a limited time)
  and for chronic coronary disease (OAC alone rather than OAC plus an antiplatelet beyond 1 year).
- HAS-BLED (Pisters R et al. Chest 2010;138:1093): B = bleeding history or predisposition (bleeding
  diathesis, anaemia); D = antiplatelet agents or NSAIDs.
- DOAC labels: dabigatran contraindicated with mechanical prosthetic valves; apixaban, rivaroxaban, edoxaban
  not recommended with prosthetic heart valves.
"""
from __future__ import annotations

import pytest

from cds_testing.fhir_factory import CPT, ICD10, SNOMED, procedure
from cds_testing.order_helpers import actions, birth_for, bundle, draft, obs, post, predictions, when

SERVICE = "af-anticoagulation"



def condition(cid, code, *, system=ICD10, status="active", onset="2020-01-01", text=None):
    c = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
         "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": onset}
    if text:
        c["code"]["text"] = text
    return c


def active(mid, text):
    return draft(mid, text, status="active")


def body(*orders, female=False, age=50, conditions=(), meds=(), labs=(), sbp=None, procedures=(), procedures_value=None):
    """An order-sign request for a patient with AF (I48.0); by default CHA2DS2-VASc 0 (man, 50, nothing else)."""
    ctx = {"userId": "Practitioner/example", "patientId": "p1", "draftOrders": bundle(*orders, type_="collection")}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female" if female else "male", "birthDate": birth_for(age)},
        "conditions": bundle(condition("af", "I48.0"), *conditions),
        "medications": bundle(*meds),
        "bp": bundle(*([obs("sbp", "8480-6", sbp, "mm[Hg]")] if sbp is not None else [])),
        "labs": bundle(*labs),
        "procedures": procedures_value if procedures_value is not None else bundle(*procedures),
    }
    return {"hook": "order-sign", "hookInstance": "7f1c2e3d-4b5a-4c6d-8e9f-0a1b2c3d4e5f", "context": ctx, "prefetch": prefetch}


def cards_by_key(module_client, b) -> dict[str, dict]:
    cards = post(module_client, SERVICE, b)
    kinds = [_kind(c) for c in cards]
    assert len(kinds) == len(set(kinds)), kinds  # one card per concern
    return dict(zip(kinds, cards))


def _kind(card: dict) -> str:
    s = card["summary"]
    if "CHA2DS2-VASc" in s:
        return "scores"
    if "valve" in s or "mitral stenosis" in s:
        return "valve"
    return "combination"


def deletes(card: dict) -> set[str]:
    return {a["resourceId"] for a in actions(card) if a["type"] == "delete"}


WARFARIN = "warfarin sodium 5 MG Oral Tablet"
APIXABAN = "apixaban 5 MG Oral Tablet"


# ---- other indications before any "no other indication" or one-click delete ------------------------------

def test_mechanical_valve_keeps_anticoagulant(module_client):
    """Finding 1. 2023 ACC/AHA/ACCP/HRS AF guideline 6.3.1 (anticoagulation for a mechanical valve is not an AF
    decision): CHA2DS2-VASc 0 in a man with AF and a prosthetic heart valve (ICD-10-CM Z95.2) — the card must not
    say "no other indication" and must not offer to delete the warfarin."""
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1), conditions=[condition("valve", "Z95.2")]))["scores"]
    assert predictions(card)["cha2ds2-vasc"]["score"] == 0
    assert "no other indication" not in (card["summary"] + card["detail"]).lower()
    assert deletes(card) == set()
    assert "another indication" in card["summary"] and "prosthetic heart valve" in card["detail"].lower()


def test_no_other_indication_on_record_offers_the_delete(module_client):
    """2023 AF guideline 6.3.1: below 1 %/year (CHA2DS2-VASc 0 in men) no anticoagulation is recommended for AF
    alone. With every other indication checked and absent (conditions and procedures available), the card
    says so and offers to remove the anticoagulant — the only case with a one-click delete of it."""
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1)))["scores"]
    assert card["indicator"] == "info" and "low stroke risk" in card["summary"]
    assert "no other indication on record" in card["summary"]
    assert deletes(card) == {"MedicationRequest/w1"}
    assert "checked and not on record" in card["detail"].lower() and "2023" in card["source"]["label"]


@pytest.mark.parametrize("extra, what", [
    (condition("v", "Z95.4"), "heart-valve replacement (Z95.4)"),
    (condition("v", "Z95.2", system=ICD10, text="Presence of mechanical heart valve"), "mechanical valve by ICD-10-CM"),
    (condition("v", "x-local", system="http://ehr.example.org/problems", text="Mechanical heart valve"), "mechanical valve by name only"),
    (condition("ms", "I05.0"), "rheumatic mitral stenosis (I05.0)"),
    (condition("ms", "I05.2"), "rheumatic mitral stenosis with insufficiency (I05.2)"),
    (condition("dvt", "I82.401"), "acute DVT of the leg (I82.4x)"),
    (condition("dvt", "I82.501", status="resolved"), "chronic DVT (I82.5x)"),
    (condition("dvt", "I80.10"), "phlebitis of the femoral vein (I80.1x)"),
    (condition("pe", "I26.99"), "pulmonary embolism (I26.x)"),
    (condition("pe", "Z86.711", status="resolved"), "history of pulmonary embolism (Z86.711)"),
    (condition("vte", "Z86.718", status="resolved"), "history of other venous thrombosis (Z86.718)"),
    (condition("pe", "59282003", system=SNOMED), "pulmonary embolism (SNOMED 59282003)"),
    (condition("lvt", "I51.3"), "intracardiac (LV) thrombus (I51.3)"),
    (condition("ortho", "Z47.1"), "aftercare following joint replacement (Z47.1)"),
])
def test_each_other_indication_blocks_the_delete(module_client, extra, what):
    """Finding 1. 2023 AF guideline (indications for an anticoagulant besides AF: mechanical valve, rheumatic
    mitral stenosis, VTE treatment or secondary prevention, LV thrombus, VTE prophylaxis after orthopaedic
    surgery): any one present → no "no other indication" wording and no one-click delete."""
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1), conditions=[extra]))["scores"]
    assert deletes(card) == set(), what
    assert "no other indication" not in (card["summary"] + card["detail"]).lower(), what
    assert "another indication" in card["summary"], what


@pytest.mark.parametrize("code, days_ago, blocks", [
    ("92960", 10, True),    # external cardioversion 10 days ago: anticoagulation ≥ 4 weeks after
    ("92960", 27, True),
    ("92960", 60, False),   # beyond the 4-week window
    ("93656", 60, True),    # AF ablation 2 months ago
    ("27130", 20, True),    # total hip arthroplasty: VTE prophylaxis (up to 35 days)
    ("27447", 40, False),   # total knee arthroplasty 40 days ago: outside the prophylaxis window
    ("92928", 30, False),   # a coronary stent is not an indication for the anticoagulant itself
])
def test_recent_procedures_are_indications_within_their_window(module_client, code, days_ago, blocks):
    """2023 AF guideline (anticoagulation for ≥ 3–4 weeks after cardioversion, and after ablation); VTE
    prophylaxis after hip or knee replacement (DOAC labels: up to 35 days after hip, 12 days after knee)."""
    p = procedure("proc", CPT, code, when(f"@ago:{days_ago}d"))
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1), procedures=[p]))["scores"]
    assert bool(deletes(card)) is not blocks


def test_i24_0_coronary_thrombosis_is_not_an_lv_thrombus(module_client):
    """ICD-10-CM I24.0 is acute coronary thrombosis (a coronary event), not an intracardiac thrombus (I51.3):
    it is not an indication for the anticoagulant (as an ACS older than 12 months it is not current either)."""
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1), conditions=[condition("ct", "I24.0", onset="2015-01-01")]))["scores"]
    assert deletes(card) == {"MedicationRequest/w1"}


def test_unavailable_procedures_mean_no_delete_and_the_card_says_not_assessed(module_client):
    """2023 AF guideline (recent cardioversion/ablation is an indication): when the procedures could not be
    obtained the service cannot rule it out — no delete, and the card says it was not assessed (not "none")."""
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    card = cards_by_key(module_client, body(draft("w1", WARFARIN, mg=5, per_day=1), procedures_value=oo))["scores"]
    assert deletes(card) == set()
    assert "could not all be checked" in card["summary"]
    assert "not assessed: cardioversion in the last 4 weeks (procedures could not be retrieved" in card["detail"].lower()


@pytest.mark.parametrize("age, applies", [(17, False), (18, True)])
def test_scores_are_for_adults_only(module_client, age, applies):
    """CHA2DS2-VASc (Lip 2010) and HAS-BLED (Pisters 2010) were derived in adults and the 2023 ACC/AHA/ACCP/HRS guideline
    is for adults: at 17 the card says the scores do not apply — no score, no "low stroke risk", no delete."""
    cards = post(module_client, SERVICE, body(draft("w1", WARFARIN, mg=5, per_day=1), age=age))
    if applies:
        assert any("CHA2DS2-VASc 0" in c["summary"] for c in cards)
        return
    (card,) = cards
    assert card["indicator"] == "info" and "for adults" in card["summary"] and not actions(card)
    assert "extension" in card and "predictions" not in card["extension"]["org.cdsml.prediction"]


# ---- CHA2DS2-VASc bands by sex, 2023 classes ---------------------------------------------------------------

@pytest.mark.parametrize("female, age, conditions, score, expect", [
    (False, 50, [], 0, "low"),
    (False, 50, [("htn", "I10")], 1, "2a"),
    (False, 65, [("htn", "I10")], 2, "1"),
    (True, 50, [], 1, "low"),
    (True, 50, [("htn", "I10")], 2, "2a"),
    (True, 50, [("htn", "I10"), ("dm", "E11.9")], 3, "1"),
])
def test_cha2ds2_vasc_bands_by_sex_cite_2023_classes(module_client, female, age, conditions, score, expect):
    """Finding 10. 2023 ACC/AHA/ACCP/HRS AF guideline 6.3.1: ≥ 2 %/yr (CHA2DS2-VASc ≥ 2 men, ≥ 3 women) →
    anticoagulation recommended (class 1); 1–< 2 %/yr (1 men, 2 women) → reasonable (class 2a). The 2019 focused
    update (class 2b) is no longer cited."""
    b = body(draft("a1", APIXABAN, mg=5, per_day=2), female=female, age=age, conditions=[condition(i, c) for i, c in conditions])
    card = cards_by_key(module_client, b)["scores"]
    assert predictions(card)["cha2ds2-vasc"]["score"] == score
    assert "2023 ACC/AHA/ACCP/HRS" in card["detail"] and "2019" not in card["detail"]
    if expect == "low":
        assert "low stroke risk" in card["summary"]
    else:
        assert f"class {expect}" in card["detail"].lower() and "low stroke risk" not in card["summary"]
        assert deletes(card) == set()


def test_coronary_atherosclerosis_i25_1_counts_as_vascular_disease(module_client):
    """Finding 10. CHA2DS2-VASc V (vascular disease) includes coronary artery disease: ICD-10-CM I25.10
    (atherosclerotic heart disease of native coronary artery) scores 1 point."""
    card = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), conditions=[condition("cad", "I25.10")]))["scores"]
    assert predictions(card)["cha2ds2-vasc"]["contributions"]["vascular_disease"] == 1


# ---- HAS-BLED B: bleeding predisposition, not thrombophilia ------------------------------------------------

@pytest.mark.parametrize("code, scores", [
    ("D68.51", False),   # factor V Leiden (activated protein C resistance): a clotting tendency
    ("D68.52", False),   # prothrombin gene mutation
    ("D68.59", False),   # other primary thrombophilia
    ("D68.61", False),   # antiphospholipid syndrome
    ("D68.62", False),   # lupus anticoagulant syndrome
    ("D68.69", False),   # other thrombophilia
    ("D69.0", False),    # allergic purpura: a vasculitis, not a diathesis
    ("D68.00", True),    # von Willebrand disease
    ("D68.1", True),     # hereditary factor XI deficiency
    ("D68.2", True),     # hereditary deficiency of other clotting factors
    ("D68.311", True),   # acquired haemophilia
    ("D68.32", True),    # haemorrhagic disorder due to extrinsic circulating anticoagulants
    ("D68.4", True),     # acquired coagulation factor deficiency
    ("D69.6", True),     # thrombocytopenia
    ("K92.2", True),     # gastrointestinal haemorrhage
])
def test_has_bled_b_counts_bleeding_predisposition_not_thrombophilia(module_client, code, scores):
    """Finding 7. HAS-BLED B (Pisters 2010): "bleeding history or predisposition (e.g. bleeding diathesis,
    anaemia)". Thrombophilias (D68.5x primary, D68.6x other, incl. antiphospholipid and lupus anticoagulant)
    predispose to clotting and do not score; coagulation factor deficiencies, haemorrhagic disorders and
    thrombocytopenia do."""
    card = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), conditions=[condition("x", code, status="resolved")]))["scores"]
    assert (predictions(card)["has-bled"]["contributions"]["bleeding"] == 1) is scores


@pytest.mark.parametrize("age, sbp, expect", [(66, 150, "info"), (66, 170, "warning")])
def test_has_bled_2_is_info_and_3_is_a_warning(module_client, age, sbp, expect):
    """HAS-BLED ≥ 3 marks high bleeding risk (Pisters 2010; 2023 AF guideline 6.1: a prompt to address modifiable
    factors, not a reason to withhold anticoagulation). E (age > 65) + B (GI bleed) = 2; + H (SBP > 160) = 3."""
    b = body(draft("a1", APIXABAN, mg=5, per_day=2), age=age, sbp=sbp, conditions=[condition("gi", "K92.2", status="resolved")])
    card = cards_by_key(module_client, b)["scores"]
    assert predictions(card)["has-bled"]["score"] == (2 if expect == "info" else 3)
    assert card["indicator"] == expect
    if expect == "warning":
        assert "reason on its own to withhold" in card["detail"]


# ---- co-ordered NSAIDs and antiplatelets -------------------------------------------------------------------

def test_nsaid_with_anticoagulant_is_a_warning_at_any_has_bled_with_removal_of_the_nsaid(module_client):
    """Finding 3. 2023 AF guideline 6.1 (identify drugs that raise bleeding risk on anticoagulation); HAS-BLED D:
    an NSAID signed with an anticoagulant → a warning even at HAS-BLED 1, with a one-click removal of the NSAID."""
    cards = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), draft("n1", "ibuprofen 600 MG Oral Tablet", mg=600, per_day=3)))
    assert predictions(cards["scores"])["has-bled"]["score"] == 1
    combo = cards["combination"]
    assert combo["indicator"] == "warning" and "NSAID" in combo["summary"] and "ibuprofen" in combo["summary"]
    assert deletes(combo) == {"MedicationRequest/n1"}
    assert "MedicationRequest/n1" not in deletes(cards["scores"])  # the scores card removes only the anticoagulant (CHA2DS2-VASc 0)


def test_nsaid_aspirin_and_clopidogrel_all_cited_only_the_nsaid_removed_after_pci(module_client):
    """Findings 2 and 3. HAS-BLED D cites every antiplatelet and NSAID; after PCI/ACS (coronary stent Z95.5, NSTEMI
    I21.4 two months ago) the 2023 AF guideline keeps the P2Y12 inhibitor (clopidogrel preferred) for a limited
    time and stops aspirin after 1–4 weeks: only the NSAID gets a one-click removal."""
    orders = [draft("a1", APIXABAN, mg=5, per_day=2), draft("n1", "naproxen 500 MG Oral Tablet", mg=500, per_day=2),
              draft("asa", "aspirin 81 MG Oral Tablet", mg=81, per_day=1), draft("clo", "clopidogrel 75 MG Oral Tablet", mg=75, per_day=1)]
    conds = [condition("stent", "Z95.5"), condition("mi", "I21.4", onset=when("@ago:60d"))]
    cards = cards_by_key(module_client, body(*orders, age=70, conditions=conds))
    scores, combo = cards["scores"], cards["combination"]
    d_row = next(line for line in scores["detail"].splitlines() if line.startswith("| D: antiplatelet"))
    for drug in ("naproxen 500 MG", "aspirin 81 MG", "clopidogrel 75 MG"):  # named as ordered; references are provenance
        assert drug in d_row and "MedicationRequest/" not in d_row
    cited = scores["extension"]["org.cdsml.prediction"]["features"]
    assert {"MedicationRequest/n1", "MedicationRequest/asa", "MedicationRequest/clo"} <= {
        ref for f in cited.values() for ref in f.get("evidence", ())}
    assert deletes(combo) == {"MedicationRequest/n1"} and deletes(scores) == set()
    assert combo["indicator"] == "warning"
    detail = combo["detail"].lower()
    assert "1–4 weeks" in detail and "clopidogrel" in detail and "limited" in detail


def test_high_has_bled_after_stent_and_nstemi_never_removes_clopidogrel(module_client):
    """Finding 2. 2023 AF guideline (AF with ACS/PCI): HAS-BLED ≥ 3 with a coronary stent (Z95.5) and a recent NSTEMI
    (I21.4) — the co-ordered clopidogrel is kept (no one-click removal); the card advises reviewing its duration."""
    conds = [condition("stent", "Z95.5"), condition("mi", "I21.4", onset=when("@ago:30d")), condition("gi", "K92.2", status="resolved")]
    b = body(draft("w1", WARFARIN, mg=5, per_day=1), draft("clo", "clopidogrel 75 MG Oral Tablet", mg=75, per_day=1),
             age=70, sbp=170, conditions=conds)
    cards = cards_by_key(module_client, b)
    assert predictions(cards["scores"])["has-bled"]["score"] >= 3
    assert all("MedicationRequest/clo" not in deletes(c) for c in cards.values())
    assert "duration" in cards["combination"]["detail"]


def test_prasugrel_with_an_anticoagulant_says_clopidogrel_is_preferred(module_client):
    """2023 AF guideline (AF with ACS/PCI): with an oral anticoagulant, clopidogrel is the preferred P2Y12 inhibitor
    over prasugrel or ticagrelor; never a one-click removal of the P2Y12 inhibitor."""
    conds = [condition("mi", "I21.4", onset=when("@ago:20d"))]
    b = body(draft("a1", APIXABAN, mg=5, per_day=2), draft("pra", "prasugrel 10 MG Oral Tablet", mg=10, per_day=1), conditions=conds)
    combo = cards_by_key(module_client, b)["combination"]
    assert "clopidogrel is preferred" in combo["detail"]
    assert deletes(combo) == set()


@pytest.mark.parametrize("conditions, removable", [
    ([], True),                                                    # no indication for aspirin on record
    ([("mi", "I21.4", "@ago:1800d")], True),                       # MI 5 years ago: chronic coronary disease, OAC alone
    ([("mi", "I21.4", "@ago:100d")], False),                       # ACS in the last 12 months
    ([("stent", "Z95.5", "2019-01-01")], False),                   # coronary stent (undated): review, no one-click
    ([("cabg", "Z95.1", "2019-01-01")], False),                    # coronary bypass graft
])
def test_aspirin_removal_only_without_an_indication(module_client, conditions, removable):
    """2023 AF guideline: in AF with chronic coronary disease (beyond 1 year after ACS/revascularisation) OAC alone is
    recommended over OAC plus an antiplatelet; after ACS/PCI aspirin stops after 1–4 weeks. One-click removal of
    co-ordered aspirin only when no indication for it is on record."""
    conds = [condition(i, c, onset=when(o) if o.startswith("@") else o) for i, c, o in conditions]
    combo = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), draft("asa", "aspirin 81 MG Oral Tablet", mg=81, per_day=1),
                                      age=60, conditions=conds))["combination"]
    assert (deletes(combo) == {"MedicationRequest/asa"}) is removable
    assert combo["indicator"] == "warning" if removable else combo["indicator"] in ("info", "warning")


def test_aspirin_without_indication_and_clopidogrel_both_get_their_advice(module_client):
    """2023 AF guideline: aspirin without an indication is removable in one click; the P2Y12 inhibitor co-ordered with it
    (no ACS/PCI on record) is reviewed, never removed — the card advises both."""
    b = body(draft("a1", APIXABAN, mg=5, per_day=2), draft("asa", "aspirin 81 MG Oral Tablet", mg=81, per_day=1),
             draft("clo", "clopidogrel 75 MG Oral Tablet", mg=75, per_day=1), age=60)
    combo = cards_by_key(module_client, b)["combination"]
    assert deletes(combo) == {"MedicationRequest/asa"}
    assert "No indication for aspirin is on record" in combo["detail"] and "Review its indication and duration" in combo["detail"]


def test_topical_nsaid_is_not_a_bleeding_drug_and_gets_no_warning(module_client):
    """HAS-BLED D counts systemic NSAIDs; a topical NSAID (diclofenac gel) has low systemic exposure
    (KDIGO 2024: the recommended alternative) — no NSAID warning, no removal, D not scored."""
    gel = draft("g1", "diclofenac sodium 10 MG/ML Topical Gel", dose_text="apply 4 g to the knee four times daily")
    cards = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), gel))
    assert "combination" not in cards
    assert predictions(cards["scores"])["has-bled"]["contributions"]["drugs"] == 0


def test_active_nsaid_without_a_draft_is_a_warning_without_a_delete(module_client):
    """An NSAID already active (not ordered now) still raises bleeding risk (HAS-BLED D): the warning stands but
    a CDS `delete` can only remove a draft order of this session, so none is offered."""
    cards = cards_by_key(module_client, body(draft("a1", APIXABAN, mg=5, per_day=2), meds=[active("n9", "naproxen 250 MG Oral Tablet")]))
    assert cards["combination"]["indicator"] == "warning" and deletes(cards["combination"]) == set()


# ---- DOAC with a mechanical valve or rheumatic mitral stenosis -------------------------------------------------

@pytest.mark.parametrize("drug, code, warns", [
    ("dabigatran etexilate 150 MG Oral Capsule", "Z95.2", True),
    (APIXABAN, "I05.0", True),
    ("rivaroxaban 20 MG Oral Tablet", "Z95.4", True),
    (WARFARIN, "Z95.2", False),          # warfarin is the anticoagulant for a mechanical valve
    (APIXABAN, "I05.1", False),          # rheumatic mitral insufficiency without stenosis
])
def test_doac_with_a_mechanical_valve_or_rheumatic_mitral_stenosis_is_a_warning(module_client, drug, code, warns):
    """2023 AF guideline 6.3.1 (DOACs are recommended over warfarin only without moderate-severe rheumatic mitral
    stenosis or a mechanical heart valve); Pradaxa label (contraindicated with mechanical prosthetic valves),
    Eliquis/Xarelto/Savaysa labels (not recommended with prosthetic heart valves)."""
    cards = cards_by_key(module_client, body(draft("d1", drug, mg=5, per_day=1), conditions=[condition("c", code)]))
    assert ("valve" in cards) is warns
    if warns:
        valve = cards["valve"]
        assert valve["indicator"] == "warning" and "warfarin" in valve["summary"].lower()
        assert deletes(valve) == set()


@pytest.mark.parametrize("af", [True, False])
def test_a_child_gets_the_not_for_adults_card_only_with_af(module_client, af):
    """The population: atrial fibrillation (silent without: the service has nothing to say about an anticoagulant
    for another indication) and adults. A child in AF gets a card saying the adult scores do not apply; a child
    without AF gets no card — one criterion answering with silence silences the service."""
    b = body(draft("w1", WARFARIN, mg=5, per_day=1), age=11)
    if not af:
        b["prefetch"]["conditions"] = bundle()
    cards = post(module_client, SERVICE, b)
    assert len(cards) == int(af)
    if af:
        assert "for adults (18 and over)" in cards[0]["summary"] and not actions(cards[0])

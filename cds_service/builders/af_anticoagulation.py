"""Anticoagulation in atrial fibrillation at order-sign (2023 ACC/AHA/ACCP/HRS AF guideline, Joglar et al.
Circulation 2024;149:e1; HAS-BLED, Pisters 2010).

Fires when an order being signed is an anticoagulant (RxNorm code, product or ingredient name) and the patient
has AF. Up to three cards, one per concern:
- the scores card: CHA2DS2-VASc (the service's model) with the 2023 class of recommendation for its band, and
  HAS-BLED (`[model] secondary`), each with the items that score and those that could not be assessed; the
  indications for an anticoagulant other than AF (`data.other_indications`) are listed as found, absent or
  not assessed. At a low stroke score the anticoagulant gets a one-click removal only when every other
  indication was checked and none is on record — otherwise the card says another indication is on record,
  or could not be checked, and advises review. Warning at HAS-BLED ≥ `high_bleeding_risk`.
- the combination card, when a systemic NSAID or an antiplatelet is taken with the anticoagulant (active or
  ordered now): a warning with one-click removal of each co-ordered NSAID at any HAS-BLED; aspirin is removed
  in one click only when no indication for it is on record and the data to see one was available; a P2Y12
  inhibitor never (after ACS/PCI it stays for a limited time, clopidogrel preferred).
- the valve card: a DOAC ordered with a prosthetic heart valve or rheumatic mitral stenosis on record, where
  warfarin is the anticoagulant (no one-click action: the switch is a prescribing decision).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cds_service.builders.base import (
    BuildContext,
    absence_text,
    applicability_cards,
    card,
    display_value,
    found_text,
    missing_states,
    missing_text,
    note_text,
    order_text,
    remove_order,
    unavailable_sources,
    unavailable_text,
)
from cds_service.builders.equation_cards import (
    check_model,
    check_secondary,
    extension,
    feature_def,
    points_text,
    require_feature,
)
from cds_service.builders.markdown import literal
from fhir_adapters.features import mentions
from fhir_adapters.orders import MedicationOrder, medication_orders
from hooks.definitions import ServiceDefinition
from hooks.loader import check_summary
from models.equations import cha2ds2_vasc as CV
from models.equations import has_bled as HB

PRIMARY = "equation:cha2ds2-vasc"
BLEEDING = "equation:has-bled"
SUMMARY_FIELDS = {"cha2ds2vasc": "≥9", "hasbled": "≥9", "sex": "female", "drugs": "ibuprofen, naproxen",
                  "drug": "Dabigatran", "condition": "a prosthetic heart valve"}
SUMMARIES = ("bleeding", "low_stroke", "low_stroke_other", "low_stroke_unchecked", "scores", "nsaid", "aspirin",
             "antiplatelet_review", "after_pci_acs", "doac_valve")
ADVICE = ("low", "intermediate", "high", "bleeding", "nsaid", "after_pci_acs", "aspirin_no_indication", "antiplatelet_review",
          "preferred_p2y12", "doac_valve")
CO_DRUG_GROUPS = ("nsaid_feature", "aspirin_feature", "p2y12_feature")


def _sex_table(raw: Any, field: str) -> dict[str, int]:
    if not (isinstance(raw, Mapping) and all(isinstance(raw.get(k), int) for k in ("male", "female"))):
        raise ValueError(f"{field} needs integer male and female values")
    return {"male": raw["male"], "female": raw["female"]}


def _drug_group(raw: Any, field: str) -> None:
    if not (isinstance(raw, Mapping) and (raw.get("codes") or raw.get("ingredients"))):
        raise ValueError(f"{field} needs codes and/or ingredients")
    if any("|" not in str(c) for c in raw.get("codes", ())):
        raise ValueError(f"{field}.codes must be written 'system|code'")


def check(service: ServiceDefinition) -> set[str]:
    check_model(service, PRIMARY)
    check_secondary(service, BLEEDING)
    data = service.data
    used: set[str] = set()
    co = require_feature(service, data.get("co_drug_feature"), "data.co_drug_feature")
    used.add(co)
    group_ingredients: set[str] = set()
    for key in CO_DRUG_GROUPS:
        name = require_feature(service, data.get(key), f"data.{key}")
        if feature_def(service, name).kind != "medication_with_drafts":
            raise ValueError(f"data.{key} must be a feature of kind 'medication_with_drafts'")
        group_ingredients |= set(feature_def(service, name).param("ingredients", ()))
        used.add(name)
    if group_ingredients != set(feature_def(service, co).param("ingredients", ())):
        raise ValueError("data.co_drug_feature (HAS-BLED D) must list exactly the ingredients of the NSAID, aspirin and P2Y12 features")
    for key in ("anticoagulants", "doacs"):
        _drug_group(data.get(key), f"data.{key}")
    if not isinstance(data.get("preferred_p2y12"), str):
        raise ValueError("data.preferred_p2y12 must name the preferred P2Y12 inhibitor")
    others = data.get("other_indications")
    if not (isinstance(others, list) and others and all(isinstance(o, Mapping) for o in others)):
        raise ValueError("data.other_indications must list { feature = ..., doac = ... } tables")
    used |= {require_feature(service, o.get("feature"), "data.other_indications") for o in others}
    if any(o.get("doac") and not isinstance(o.get("short"), str) for o in others):
        raise ValueError("data.other_indications: an entry with `doac` needs `short`, its name in the card's summary")
    for key in ("pci_acs_window", "aspirin_indications"):
        used |= {require_feature(service, name, f"data.{key}") for name in data.get(key) or ()}
    low = _sex_table(data.get("low_stroke_risk"), "data.low_stroke_risk")
    mid = _sex_table(data.get("intermediate_stroke_risk"), "data.intermediate_stroke_risk")
    if any(mid[s] <= low[s] for s in low):
        raise ValueError("data.intermediate_stroke_risk must be above data.low_stroke_risk for both sexes")
    if not isinstance(data.get("high_bleeding_risk"), int):
        raise ValueError("data.high_bleeding_risk must be an integer (HAS-BLED points)")
    unknown = [m for m in data.get("modifiable", ()) if m not in HB.ITEMS]
    if unknown or not data.get("modifiable"):
        raise ValueError(f"data.modifiable must list HAS-BLED items ({', '.join(HB.ITEMS)}); unknown: {', '.join(unknown)}")
    summaries, advice = data.get("summaries") or {}, data.get("advice") or {}
    for key in SUMMARIES:
        check_summary(service.path, f"data.summaries.{key}", summaries.get(key), SUMMARY_FIELDS)
    for key in ADVICE:
        if not isinstance(advice.get(key), str) or not advice[key].strip():
            raise ValueError(f"data.advice.{key} is required")
    return used


# ---- what the record shows ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Findings:
    """Flag features sorted into present (with what shows it), absent, and not assessed (their data was not available)."""

    present: tuple[tuple[str, str], ...]  # (feature name, "label (evidence)")
    absent: tuple[str, ...]
    unassessed: tuple[tuple[str, str], ...]  # (feature name, "label: not assessed, <keys> not available")

    @property
    def names(self) -> set[str]:
        return {n for n, _ in self.present}


def _findings(ctx: BuildContext, names) -> Findings:
    present, absent, unassessed = [], [], []
    for name in names:
        f = ctx.features[name]
        missing = unavailable_sources(ctx, name)
        if (f.value or 0) >= 0.5:
            present.append((name, found_text(f)))
        elif missing:
            unassessed.append((name, f"{f.label} ({missing[0]} {unavailable_text(ctx.unavailable[missing[0]], short=True)})"))
        elif f.missing:
            unassessed.append((name, f"{f.label} ({missing_text(ctx, name)})"))
        else:
            absent.append(f.label)
    return Findings(tuple(present), tuple(absent), tuple(unassessed))


def _group(ctx: BuildContext, key: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    d = feature_def(ctx.service, ctx.service.data[key])
    return d.name, tuple(d.param("codes", ())), tuple(d.param("ingredients", ()))


def _present(ctx: BuildContext, key: str) -> bool:
    return (ctx.features[ctx.service.data[key]].value or 0) >= 0.5


def _names_in(ctx: BuildContext, key: str) -> list[str]:
    """The ingredients of a drug group that the feature's note (the drugs it found) names."""
    name, _, ingredients = _group(ctx, key)
    note = ctx.features[name].note or ""
    return [i for i in ingredients if mentions({"text": note}, [i])]


def _evidence(ctx: BuildContext, names) -> str:
    parts = []
    for n in names:
        f = ctx.features[n]
        if f.missing:
            parts.append(f"{f.label}: {missing_text(ctx, n)}")
            continue
        when = f" ({literal(f.date)})" if f.date else ""
        extra = f" — {note_text(f)}" if f.note and not f.imputed else ""
        parts.append(f"{f.label}: {display_value(ctx, f)}{when}{extra}")
    return "; ".join(parts)


def _score_table(ctx: BuildContext, p, labels: Mapping[str, str], inputs: Mapping[str, tuple[str, ...]]) -> list[str]:
    rows = ["| Item | Points | Based on |", "| --- | --- | --- |"]
    scoring = [k for k, v in p.contributions.items() if v > 0]
    for item in scoring:
        rows.append(f"| {labels[item]} | {p.contributions[item]:.0f} | {_evidence(ctx, inputs[item])} |")
    for item in p.details.get("not_assessed", ()):
        rows.append(f"| {labels[item]} | not assessed | {_evidence(ctx, inputs[item])} |")
    if len(rows) == 2:
        rows.append("| (no item scores) | 0 | |")
    return rows


# ---- cards ---------------------------------------------------------------------------------------------------

def build(ctx: BuildContext) -> list:
    data = ctx.service.data
    orders = medication_orders(ctx.request.context)
    ac = data["anticoagulants"]
    anticoagulants = [o for o in orders if o.selected and o.matches(ac.get("codes", ()), ac.get("ingredients", ()))]
    if not anticoagulants:
        return []
    # `[[population]]`: no AF → no card; a child → a card saying the adult scores do not apply, never a score.
    outside = applicability_cards(ctx, undecided=False)
    if outside is not None:
        return outside
    others = _findings(ctx, [o["feature"] for o in data["other_indications"]])
    cards = _valve_cards(ctx, anticoagulants, others)
    cards.append(_scores_card(ctx, anticoagulants, others))
    combination = _combination_card(ctx, [o for o in orders if o not in anticoagulants])
    if combination is not None:
        cards.append(combination)
    return [c for c in cards if c is not None]


def _other_indication_lines(ctx: BuildContext, others: Findings) -> list[str]:
    names = [o["feature"] for o in ctx.service.data["other_indications"]]
    found = "; ".join(text for _, text in others.present)
    lines = ["**Other indications for an anticoagulant** (2023 ACC/AHA/ACCP/HRS): "
             + (found or absence_text(ctx, names, "none on record", what="other indication")) + "."]
    if others.unassessed:
        lines.append("Not assessed: " + "; ".join(text for _, text in others.unassessed) + ".")
    if others.absent:
        checked = [n for n in names if n not in others.names and n not in dict(others.unassessed)]
        lines.append(absence_text(ctx, checked, "Checked and not on record: " + "; ".join(others.absent) + ". ")
                     + ctx.service.data["not_detectable"])
    return lines


def _scores_card(ctx: BuildContext, anticoagulants: list[MedicationOrder], others: Findings):
    data, f = ctx.service.data, ctx.features
    stroke = ctx.prediction
    if stroke is None:  # age or sex unknown: the score cannot be computed, say so
        missing = missing_states(ctx, [n for n in CV.REQUIRED if f[n].missing])
        return card(ctx, "scores-missing", f"AF anticoagulation: CHA2DS2-VASc not calculated, {missing}", "info",
                    "CHA2DS2-VASc and HAS-BLED need the patient's age and sex; nothing is assumed.\n\n" + _evidence(ctx, CV.REQUIRED),
                    extension=extension(ctx, None))
    bleeding = ctx.secondary[BLEEDING]
    sex = "female" if f["female"].number() >= 0.5 else "male"
    cv = int(stroke.score)
    low = cv <= data["low_stroke_risk"][sex] and stroke.details.get("complete", True)
    high_bleeding = bleeding is not None and int(bleeding.score) >= data["high_bleeding_risk"]
    # One click to drop the anticoagulant only when the record rules out every other indication it can show.
    no_other = low and not others.present and not others.unassessed
    fields = {"cha2ds2vasc": points_text(stroke), "hasbled": points_text(bleeding), "sex": sex}
    if high_bleeding:
        summary_key = "bleeding"
    elif low:
        summary_key = "low_stroke_other" if others.present else "low_stroke_unchecked" if others.unassessed else "low_stroke"
    else:
        summary_key = "scores"
    band = "low" if low else "intermediate" if cv <= data["intermediate_stroke_risk"][sex] else "high"

    names = ", ".join(order_text(o) for o in anticoagulants)
    lines = [f"**Anticoagulant being signed:** {names}", "",
             f"**CHA2DS2-VASc {points_text(stroke)}** ({sex}; adjusted stroke rate in the Euro Heart Survey "
             f"≈ {stroke.details.get('adjusted_stroke_rate_pct_per_year', '?')} %/year, informational):", ""]
    lines += _score_table(ctx, stroke, CV.ITEM_LABELS, {k: (k,) for k in CV.ITEM_LABELS})
    lines += ["", data["advice"][band], "", *_other_indication_lines(ctx, others)]
    if low and others.present:
        lines += ["", "The stroke risk from AF alone is low, but **another indication** for anticoagulation is on record: "
                      "review the indication before changing the order."]
    elif low and others.unassessed:
        lines += ["", "The stroke risk from AF alone is low; other indications could not all be checked, so the order is not "
                      "offered for removal: confirm the indication."]
    if bleeding is not None:
        rate = bleeding.details.get("bleeds_per_100_patient_years")
        lines += ["", f"**HAS-BLED {points_text(bleeding)}**" + (f" (≈ {rate} major bleeds per 100 patient-years in the derivation cohort, "
                                                                   "informational)" if rate is not None else "") + ":", ""]
        lines += _score_table(ctx, bleeding, HB.ITEM_LABELS, HB.ITEM_INPUTS)
        present = [HB.ITEM_LABELS[m] for m in data["modifiable"] if bleeding.contributions.get(m, 0) > 0]
        if high_bleeding:
            lines += ["", data["advice"]["bleeding"]]
        if present:
            lines += ["", "**Modifiable bleeding risk factors present:** " + "; ".join(present) + "."]
    else:
        lines += ["", "HAS-BLED not calculated: " + _evidence(ctx, HB.REQUIRED)]
    if low and high_bleeding:
        lines += ["", "**Also:** the stroke score is low for AF alone — " + data["advice"]["low"]]
    suggestions = []
    if no_other:
        for o in anticoagulants:
            why = absence_text(ctx, [x["feature"] for x in data["other_indications"]], "no other indication on record")
            suggestions.append(remove_order(ctx, o, f"Remove the {o.text} order ({why})"))
    if stroke.details.get("not_assessed") or (bleeding and bleeding.details.get("not_assessed")):
        lines += ["", "*'≥' marks a lower bound: items that could not be assessed from the record count 0 here.*"]
    lines += ["", f"*Sources:* 2023 ACC/AHA/ACCP/HRS AF guideline (Joglar et al., Circulation 2024;149:e1); {CV.INFO.citation}; "
                  f"{HB.INFO.citation}."]
    summary = data["summaries"][summary_key].format(**fields)
    if summary_key == "low_stroke":  # "no other indication on record": chosen only when all of it was read
        summary = absence_text(ctx, [o["feature"] for o in data["other_indications"]], summary)
    return card(ctx, "af-scores", summary, "warning" if high_bleeding else "info",
                "\n".join(lines), suggestions=suggestions, selection_behavior="any", extension=extension(ctx, None, bleeding))


def _valve_cards(ctx: BuildContext, anticoagulants: list[MedicationOrder], others: Findings) -> list:
    data = ctx.service.data
    doacs = [o for o in anticoagulants if o.matches(data["doacs"].get("codes", ()), data["doacs"].get("ingredients", ()))]
    conditions = [o for o in data["other_indications"] if o.get("doac") and o["feature"] in others.names]
    if not doacs or not conditions:
        return []
    found = dict(others.present)
    cards = []
    for order in doacs:
        drug = next((i for i in data["doacs"]["ingredients"] if order.matches((), (i,))), "DOAC").capitalize()
        short = " and ".join(o["short"] for o in conditions)
        lines = [f"**DOAC being signed:** {order_text(order)}", "",
                 "**On record:** " + "; ".join(f"{found[o['feature']]} — a DOAC is not for {o['doac']}" for o in conditions) + ".", "",
                 data["advice"]["doac_valve"], "", "*Sources:* 2023 ACC/AHA/ACCP/HRS AF guideline 6.3.1; DOAC US prescribing information."]
        cards.append(card(ctx, f"{order.reference}/doac-valve", data["summaries"]["doac_valve"].format(drug=drug, condition=short),
                          "warning", "\n".join(lines), extension=extension(ctx, [o["feature"] for o in conditions], score_used=False)))
    return cards


def _combination_card(ctx: BuildContext, co_orders: list[MedicationOrder]):
    data, f = ctx.service.data, ctx.features
    nsaid, aspirin, p2y12 = (_present(ctx, k) for k in CO_DRUG_GROUPS)
    if not (nsaid or aspirin or p2y12):
        return None
    window = _findings(ctx, data["pci_acs_window"])
    aspirin_reasons = _findings(ctx, data["aspirin_indications"])
    # Aspirin has no indication only when nothing is on record AND nothing could hide one (all data available).
    aspirin_unindicated = aspirin and not (window.present or window.unassessed or aspirin_reasons.present or aspirin_reasons.unassessed)

    def drafts(key: str) -> list[MedicationOrder]:
        _, codes, ingredients = _group(ctx, key)
        return [o for o in co_orders if o.matches(codes, ingredients) and o.route != "local"]

    lines = ["**Taken with the anticoagulant:**"]
    for key in CO_DRUG_GROUPS:
        if _present(ctx, key):
            feature = f[data[key]]
            lines.append(f"- {feature.label}: {note_text(feature)}" + (f" ({literal(feature.date)})" if feature.date else ""))
    down = unavailable_sources(ctx, *(data[k] for k in CO_DRUG_GROUPS))
    if down:  # only this session's orders were seen: an active NSAID or antiplatelet may be missing from the list
        lines.append(f"- Active medications: {unavailable_text(ctx.unavailable[down[0]], short=True)}; only the orders of "
                     "this session are listed.")
    if nsaid:
        lines += ["", data["advice"]["nsaid"]]
    if window.present and (aspirin or p2y12):
        lines += ["", "**After ACS/PCI:** " + "; ".join(text for _, text in window.present) + ".", "", data["advice"]["after_pci_acs"]]
    elif aspirin or p2y12:
        if aspirin_unindicated:
            lines += ["", absence_text(ctx, [*data["pci_acs_window"], *data["aspirin_indications"]],
                                       data["advice"]["aspirin_no_indication"])]
        if p2y12 or not aspirin_unindicated:  # an antiplatelet whose indication the record may not show: review
            reasons = [text for _, text in (*window.unassessed, *aspirin_reasons.present, *aspirin_reasons.unassessed)]
            lines += ["", "**Bearing on the antiplatelet:** " + ("; ".join(reasons) if reasons else absence_text(
                ctx, data["pci_acs_window"], "no ACS or PCI in the last 12 months and no coronary stent on record",
                what="ACS, PCI or coronary stent")) + ".",
                      "", data["advice"]["antiplatelet_review"]]
    others = [i for i in _group(ctx, "p2y12_feature")[2] if i != data["preferred_p2y12"]]
    if p2y12 and mentions({"text": f[data["p2y12_feature"]].note or ""}, others):
        lines += ["", data["advice"]["preferred_p2y12"]]

    suggestions = [remove_order(ctx, o, f"Remove the {o.text} order (NSAID with an anticoagulant)", recommended=True)
                   for o in drafts("nsaid_feature")]
    if aspirin_unindicated:
        why = absence_text(ctx, [*data["pci_acs_window"], *data["aspirin_indications"]], "no indication for aspirin on record")
        suggestions += [remove_order(ctx, o, f"Remove the {o.text} order ({why})")
                        for o in drafts("aspirin_feature")]
    if nsaid:
        summary = data["summaries"]["nsaid"].format(drugs=", ".join(_names_in(ctx, "nsaid_feature")) or "NSAID")
        indicator = "warning"
    elif aspirin_unindicated:
        summary = absence_text(ctx, [*data["pci_acs_window"], *data["aspirin_indications"]], data["summaries"]["aspirin"])
        indicator = "warning"
    else:
        drugs = ", ".join(_names_in(ctx, "aspirin_feature") + _names_in(ctx, "p2y12_feature")) or "antiplatelet"
        key = "after_pci_acs" if window.present else "antiplatelet_review"
        summary, indicator = data["summaries"][key].format(drugs=drugs), "info" if window.present else "warning"
    lines += ["", "*Sources:* 2023 ACC/AHA/ACCP/HRS AF guideline (Joglar et al., Circulation 2024;149:e1); HAS-BLED D (Pisters 2010)."]
    used = {data[k] for k in CO_DRUG_GROUPS} | set(data["pci_acs_window"]) | set(data["aspirin_indications"])
    # Decided by the drugs and the indications on record, at any CHA2DS2-VASc and HAS-BLED.
    return card(ctx, "af-combination", summary, indicator, "\n".join(lines), suggestions=suggestions, selection_behavior="any",
                extension=extension(ctx, used, score_used=False))

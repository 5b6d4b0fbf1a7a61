"""Anticoagulation in atrial fibrillation at order-sign (issue #5, item 3).

Fires when an order being signed is an anticoagulant (RxNorm code or ingredient name: orders carry
clinical-drug codes) and the patient has AF. One card shows CHA2DS2-VASc (the service's model) and
HAS-BLED (`[model] secondary`) with the items that score and the items that could not be assessed:
- warning at HAS-BLED ≥ `high_bleeding_risk`, listing the modifiable factors present, with a one-click
  removal of each antiplatelet or NSAID ordered in the same session;
- info when the CHA2DS2-VASc is at or below the low band for the patient's sex (0 men / 1 women);
- info with both scores otherwise (`always_show`).
"""
from __future__ import annotations

from typing import Any, Mapping

from fhir_adapters.orders import MedicationOrder, medication_orders
from hooks.definitions import ServiceDefinition
from hooks.loader import check_summary
from models.equations import cha2ds2_vasc as CV
from models.equations import has_bled as HB

from cds_service.builders.base import BuildContext, card, display_value, remove_order
from cds_service.builders.equation_cards import (check_model, check_secondary, extension, feature_def, points_text,
                                                 require_feature)
from cds_service.builders.markdown import literal, note

PRIMARY = "equation:cha2ds2-vasc"
BLEEDING = "equation:has-bled"
SUMMARY_FIELDS = {"cha2ds2vasc": "≥9", "hasbled": "≥9", "sex": "female"}


def _sex_table(raw: Any, field: str) -> dict[str, int]:
    if not (isinstance(raw, Mapping) and all(isinstance(raw.get(k), int) for k in ("male", "female"))):
        raise ValueError(f"{field} needs integer male and female values")
    return {"male": raw["male"], "female": raw["female"]}


def check(service: ServiceDefinition) -> set[str]:
    check_model(service, PRIMARY)
    check_secondary(service, BLEEDING)
    data = service.data
    used: set[str] = set()
    used.add(require_feature(service, data.get("af_feature"), "data.af_feature"))
    co = require_feature(service, data.get("co_drug_feature"), "data.co_drug_feature")
    if feature_def(service, co).kind != "medication_with_drafts":
        raise ValueError("data.co_drug_feature must be a feature of kind 'medication_with_drafts'")
    used.add(co)
    ac = data.get("anticoagulants")
    if not (isinstance(ac, Mapping) and (ac.get("codes") or ac.get("ingredients"))):
        raise ValueError("data.anticoagulants needs codes and/or ingredients")
    if any("|" not in str(c) for c in ac.get("codes", ())):
        raise ValueError("data.anticoagulants.codes must be written 'system|code'")
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
    for key in ("bleeding", "low_stroke", "scores"):
        check_summary(service.path, f"data.summaries.{key}", summaries.get(key), SUMMARY_FIELDS)
    for key in ("low", "intermediate", "high", "bleeding"):
        if not isinstance(advice.get(key), str) or not advice[key].strip():
            raise ValueError(f"data.advice.{key} is required")
    return used


def _evidence(ctx: BuildContext, names) -> str:
    parts = []
    for n in names:
        f = ctx.features[n]
        if f.missing:
            parts.append(f"{f.label}: {note(f, 'missing')}")
            continue
        where = ", ".join(literal(e.reference) for e in f.evidence[:2])
        when = f" ({literal(f.date)})" if f.date else ""
        extra = f" — {note(f)}" if f.note and not f.imputed else ""
        parts.append(f"{f.label}: {display_value(ctx, f)}{when}" + (f" [{where}]" if where else "") + extra)
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


def _co_drug_orders(ctx: BuildContext, orders: list[MedicationOrder]) -> list[MedicationOrder]:
    d = feature_def(ctx.service, ctx.service.data["co_drug_feature"])
    return [o for o in orders if o.matches(d.param("codes", ()), d.param("ingredients", ()))]


def build(ctx: BuildContext) -> list:
    data, f = ctx.service.data, ctx.features
    orders = medication_orders(ctx.request.context)
    ac = data["anticoagulants"]
    anticoagulants = [o for o in orders if o.selected and o.matches(ac.get("codes", ()), ac.get("ingredients", ()))]
    if not anticoagulants or (f[data["af_feature"]].value or 0) < 0.5:
        return []
    stroke = ctx.prediction
    if stroke is None:  # age or sex unknown: the score cannot be computed, say so
        missing = [f[n].label for n in CV.REQUIRED if f[n].missing]
        return [card(ctx, "scores-missing", f"AF anticoagulation: CHA2DS2-VASc not calculated, missing {', '.join(missing)}", "info",
                     "CHA2DS2-VASc and HAS-BLED need the patient's age and sex; nothing is assumed.\n\n" + _evidence(ctx, CV.REQUIRED),
                     extension=extension(ctx, None))]
    bleeding = ctx.secondary[BLEEDING]
    sex = "female" if f["female"].value >= 0.5 else "male"
    cv, hb = int(stroke.score), int(bleeding.score) if bleeding else None
    low = cv <= data["low_stroke_risk"][sex] and stroke.details.get("complete", True)
    high_bleeding = hb is not None and hb >= data["high_bleeding_risk"]
    if not (low or high_bleeding or data.get("always_show", True)):
        return []
    fields = {"cha2ds2vasc": points_text(stroke), "hasbled": points_text(bleeding), "sex": sex}
    summary_key = "bleeding" if high_bleeding else "low_stroke" if low else "scores"
    indicator = "warning" if high_bleeding else "info"

    names = ", ".join(f"{literal(o.text)} ({literal(o.reference)})" for o in anticoagulants)
    band = "low" if low else "intermediate" if cv <= data["intermediate_stroke_risk"][sex] else "high"
    lines = [f"**Anticoagulant being signed:** {names}", "",
             f"**CHA2DS2-VASc {points_text(stroke)}** ({sex}; adjusted stroke rate in the Euro Heart Survey "
             f"≈ {stroke.details.get('adjusted_stroke_rate_pct_per_year', '?')} %/year, informational):", ""]
    lines += _score_table(ctx, stroke, CV.ITEM_LABELS, {k: (k,) for k in CV.ITEM_LABELS})
    lines += ["", data["advice"][band]]
    suggestions = []
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
        if high_bleeding:
            for o in _co_drug_orders(ctx, [o for o in orders if o not in anticoagulants]):
                suggestions.append(remove_order(ctx, o, f"Remove the {o.text} order (bleeding risk with anticoagulation)"))
    else:
        lines += ["", "HAS-BLED not calculated: " + _evidence(ctx, HB.REQUIRED)]
    if low and high_bleeding:
        lines += ["", "**Also:** the stroke score is low for AF alone — " + data["advice"]["low"]]
    if low:  # one click to drop the order if there is no other indication
        for o in anticoagulants:
            suggestions.append(remove_order(ctx, o, f"Remove the {o.text} order (no other indication)"))
    if stroke.details.get("not_assessed") or (bleeding and bleeding.details.get("not_assessed")):
        lines += ["", "*'≥' marks a lower bound: items that could not be assessed from the record count 0 here.*"]
    lines += ["", f"*Sources:* {CV.INFO.citation}; {HB.INFO.citation}."]
    return [card(ctx, "af-scores", data["summaries"][summary_key].format(**fields), indicator, "\n".join(lines),
                 suggestions=suggestions, selection_behavior="any", extension=extension(ctx, None, bleeding))]

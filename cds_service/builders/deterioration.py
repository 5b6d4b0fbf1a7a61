"""NEWS2 and qSOFA at encounter-start.

NEWS2 (Royal College of Physicians, 2017) is the service's model; qSOFA (Sepsis-3, 2016) its `[model]
secondary`. In this order:

1. Applicability before arithmetic: adults aged 16 and over, not pregnant, an inpatient or emergency
   encounter in progress (the service file's `[[population]]`); otherwise a short card says why and no
   score is shown (`base.applicability_cards`).
2. One observation set: the parameters come from the newest set of observations taken together
   (`[observation_sets.vital_set]`); the card states the set's time.
3. The band and response of RCP 2017 chart 2 and chart 4 (`[[data.bands]]`, highest first: a band matches
   on `min_total` or on `single_parameter`, a 3 in any one parameter), raised to `qsofa_indicator` when
   qSOFA is positive. A parameter missing from the set scores nothing and makes the total a lower bound
   ("≥"); a lower bound in the low band is never called low risk (`incomplete_summary`).
4. Consciousness is ACVPU. A GCS is not ACVPU: with only a GCS, consciousness is not assessed for NEWS2
   (qSOFA's altered mentation does read GCS < 15, as Seymour 2016 defined it).
5. A positive qSOFA names the risk of a poor outcome in suspected infection (not a diagnosis of sepsis)
   and the actions of a sepsis pathway.
"""
from __future__ import annotations

from typing import Any, Mapping

from cds_service.builders.base import (
    BuildContext,
    absence_text,
    applicability_cards,
    applicability_notes,
    card,
    display_value,
    lab_order,
    missing_text,
    note_text,
    unavailable_lines,
    unavailable_sources,
    when_text,
)
from cds_service.builders.equation_cards import check_model, check_secondary, extension, points_text, require_feature
from hooks.catalog import INDICATORS
from hooks.definitions import OrderDef, ServiceDefinition
from hooks.loader import check_summary
from models.equations import news2 as N
from models.equations import qsofa as Q

PRIMARY = "equation:news2"
QSOFA = "equation:qsofa"
SUMMARY_FIELDS = {"news2": "≥20", "qsofa": "≥3"}
INCOMPLETE_FIELDS = {**SUMMARY_FIELDS, "missing": "consciousness, temperature"}


def check(service: ServiceDefinition) -> set[str]:
    check_model(service, PRIMARY)
    check_secondary(service, QSOFA)
    data = service.data
    used = set(N.FEATURES) | {require_feature(service, data.get("set_feature"), "data.set_feature")}
    bands = data.get("bands")
    if not isinstance(bands, list) or not bands:
        raise ValueError("data.bands must list the NEWS2 clinical-risk bands, highest first")
    for i, b in enumerate(bands):
        where = f"data.bands[{i}]"
        if not isinstance(b, Mapping) or not isinstance(b.get("name"), str):
            raise ValueError(f"{where} needs a name")
        if ("min_total" in b) == ("single_parameter" in b):
            raise ValueError(f"{where} needs exactly one of min_total or single_parameter")
        if b.get("indicator") not in INDICATORS:
            raise ValueError(f"{where}.indicator must be one of {', '.join(INDICATORS)} (CARD-3)")
        if not isinstance(b.get("response"), str):
            raise ValueError(f"{where}.response is required (what the band asks clinicians to do)")
        check_summary(service.path, f"{where}.summary", b.get("summary"), SUMMARY_FIELDS)
    if bands[-1].get("min_total") != 0:
        raise ValueError("data.bands: the last band must have min_total = 0 so that every score has a band")
    totals = [b["min_total"] for b in bands if "min_total" in b]
    if totals != sorted(totals, reverse=True):
        raise ValueError("data.bands must be ordered from the highest min_total down")
    for key in ("qsofa_indicator", "incomplete_indicator"):
        if data.get(key) not in INDICATORS:
            raise ValueError(f"data.{key} must be one of {', '.join(INDICATORS)}")
    for key in ("qsofa_advice", "sepsis_pathway", "none_summary", "unavailable_summary", "incomplete_summary", "window"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"data.{key} is required")
    orders = data.get("sepsis_orders")
    if not isinstance(orders, list) or not orders:
        raise ValueError("data.sepsis_orders must list the tests of the sepsis bundle offered as orders")
    for i, o in enumerate(orders):
        OrderDef.parse(o, f"data.sepsis_orders[{i}]")
    check_summary(service.path, "data.none_summary", data["none_summary"], {})
    check_summary(service.path, "data.unavailable_summary", data["unavailable_summary"],
                  {"why": "not available to the service (no prefetch and no FHIR access)"})
    check_summary(service.path, "data.incomplete_summary", data["incomplete_summary"], INCOMPLETE_FIELDS)
    try:  # a detail paragraph, not a summary: only its placeholder is checked
        data["qsofa_advice"].format(qsofa="3")
    except (KeyError, IndexError) as exc:
        raise ValueError(f"data.qsofa_advice: unknown placeholder {exc} (allowed: qsofa)") from None
    return used


def band_for(bands: list[Mapping[str, Any]], total: float, max_points: float) -> Mapping[str, Any]:
    for b in bands:
        if "min_total" in b and total >= b["min_total"]:
            return b
        if "single_parameter" in b and max_points >= b["single_parameter"]:
            return b
    return bands[-1]


# How the two flags of the set read on the card (the others are measurements with a unit).
FLAG_WORDS = {"on_oxygen": ("air", "oxygen"), "consciousness": ("Alert", "not Alert (new confusion, V, P or U)")}


def _value(ctx: BuildContext, name: str) -> str:
    f = ctx.features[name]
    if f.missing:
        return "**invalid value**" if f.invalid else "**not in this set**"
    value = FLAG_WORDS[name][f.number() >= 0.5] if name in FLAG_WORDS else display_value(ctx, f)
    return value + when_text(ctx, f) + (" (assumed)" if f.imputed else "")  # "24 /min at 14:05 UTC", "oxygen at 14:05 UTC"


def _row(ctx: BuildContext, name: str, points: str) -> str:
    f = ctx.features[name]
    note = note_text(f)
    return f"| {N.PARAMETER_LABELS.get(name, f.label)} | {_value(ctx, name)} | {points} | {note} |"


def _no_set_card(ctx: BuildContext, qsofa) -> list:
    data, name = ctx.service.data, ctx.service.data["set_feature"]
    if unavailable_sources(ctx, name):
        summary = data["unavailable_summary"].format(why=missing_text(ctx, name, short=True))
        lines = ["The vital signs could not be obtained, so nothing can be scored; they are **not** known to be absent:", ""]
    else:
        summary = absence_text(ctx, [name], data["none_summary"])
        lines = [absence_text(ctx, [name], f"No NEWS2 observation was recorded in the last {data['window']}")
                 + "; nothing is assumed normal.", ""]
    lines += unavailable_lines(ctx)
    lines += ["", "Record a full set of observations (respiration rate, SpO2, air or oxygen, blood pressure, pulse, "
                  "ACVPU, temperature) to score NEWS2 and qSOFA."]
    lines += [f"\n{note}" for note in applicability_notes(ctx)]
    return [card(ctx, "no-vitals", summary, "info", "\n".join(lines), extension=extension(ctx, None, qsofa))]


def build(ctx: BuildContext) -> list:
    cards = applicability_cards(ctx)  # a child, a pregnancy, an ambulatory or finished encounter: never a score
    if cards is not None:
        return cards
    data, f = ctx.service.data, ctx.features
    news, qsofa = ctx.prediction, ctx.secondary[QSOFA]
    if news is None or f[data["set_feature"]].missing:
        return _no_set_card(ctx, qsofa)

    bands = list(data["bands"])
    band = band_for(bands, news.score, news.details.get("max_parameter_points", 0))
    complete = news.details.get("complete", True)
    not_assessed = list(news.details.get("not_assessed", ()))
    fields = {"news2": points_text(news), "qsofa": points_text(qsofa)}
    if complete or band is not bands[-1]:
        indicator, summary = band["indicator"], band["summary"].format(**fields)
    else:  # a lower bound in the low band: the band is not known, never "low risk"
        missing = ", ".join(N.PARAMETER_LABELS[n].split(" (")[0].lower() for n in not_assessed)
        indicator, summary = data["incomplete_indicator"], data["incomplete_summary"].format(missing=missing, **fields)
    positive = qsofa is not None and qsofa.details.get("positive")
    if positive and INDICATORS.index(data["qsofa_indicator"]) > INDICATORS.index(indicator):
        indicator = data["qsofa_indicator"]
    if band is bands[-1] and complete and not positive and not data.get("show_low", True):
        return []

    scale = news.details.get("spo2_scale", 1)
    band_text = f"{band['name']} clinical risk" + ("" if complete or band is bands[0] else " or higher")
    if not complete and band is bands[-1]:
        band_text = "clinical risk band not known (incomplete set)"
    lines = [f"**NEWS2 {points_text(news)}** — {band_text} (RCP 2017, chart 2); SpO2 Scale {scale}"
             + (f" ({note_text(f['hypercapnic_target'])})" if scale == 2 else "") + ".", "",
             f"**Observation set:** {note_text(f[data['set_feature']])}.", "",
             "| Parameter | Value | Points | Note |", "| --- | --- | --- | --- |"]
    for n in N.PARAMETERS:
        lines.append(_row(ctx, n, "not assessed" if n in not_assessed else f"{news.contributions[n]:.0f}"))
    if complete or band is not bands[-1]:
        lines += ["", band["response"]]
    if not complete:
        labels = ", ".join(N.PARAMETER_LABELS[n] for n in not_assessed)
        lines += ["", f"**Incomplete set — the total is a lower bound:** {labels} not assessed (not in this observation set, "
                      "never assumed normal); one parameter alone can score 3 (RCP 2017, chart 1). Record the full set and rescore."]
    if "consciousness" in not_assessed and "GCS" in (f["consciousness"].note or ""):
        lines += ["", "**Consciousness was not assessed as ACVPU.** A GCS is not ACVPU, and a GCS below 15 is not scored as "
                      "new confusion; record ACVPU (Alert, new Confusion, Voice, Pain, Unresponsive)."]
    suggestions = []
    if qsofa is not None:
        met = [Q.CRITERIA_LABELS[k] for k, v in qsofa.contributions.items() if v > 0]
        line = f"**qSOFA {points_text(qsofa)}** (Sepsis-3): " + ("; ".join(met) if met else "no criterion met") + "."
        if positive:  # the criteria and what they mean in one paragraph, then the pathway
            line += " " + data["qsofa_advice"].format(qsofa=points_text(qsofa))
        lines += ["", line]
        if positive:
            lines += ["", data["sepsis_pathway"]]
            suggestions = _sepsis_orders(ctx)
    if scale == 1 and unavailable_sources(ctx, "hypercapnic_target"):
        lines += ["", f"**SpO2 scale not checked:** hypercapnic respiratory failure or a prescribed 88–92 % target "
                      f"{missing_text(ctx, 'hypercapnic_target', short=True)}; Scale 1 used."]
    assumed = [f"{f[n].label}: {note_text(f[n])}" for n in N.FEATURES if f[n].imputed]
    if assumed:
        lines += ["", "**Assumed:** " + "; ".join(assumed) + "."]
    lines += [f"\n{note}" for note in applicability_notes(ctx)]
    if ctx.unavailable:
        lines += ["", "**Data not obtained:**", *unavailable_lines(ctx)]
    lines += ["", "*Temperature is rounded to 0.1 °C and the other parameters to whole numbers before scoring. If a "
                  "parameter is the patient's baseline, say so when dismissing.*",
              "", f"*Sources:* {N.INFO.citation}; {Q.INFO.citation}."]
    return [card(ctx, "news2", summary, indicator, "\n".join(lines), suggestions=suggestions, selection_behavior="any",
                 extension=extension(ctx, None, qsofa))]


def _sepsis_orders(ctx: BuildContext) -> list:
    """The hour-1 bundle's tests (lactate, blood cultures) as draft orders, each independent of the other."""
    out = []
    for i, raw in enumerate(ctx.service.data["sepsis_orders"]):
        order = OrderDef.parse(raw, f"data.sepsis_orders[{i}]")
        out.append(lab_order(ctx, f"sepsis-{order.name}", order, text=str(raw.get("text", ""))))
    return out

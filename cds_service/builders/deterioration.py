"""NEWS2 and qSOFA at encounter-start (issue #5, item 4).

NEWS2 is the service's model; qSOFA its `[model] secondary`. The card's indicator follows the RCP
clinical-risk band (`[[data.bands]]`, highest first: a band matches on `min_total` or on
`single_parameter`, a 3 in any one parameter), raised to `qsofa_indicator` when qSOFA is positive.
Parameters with no value inside the window are named on the card and the scores shown as lower
bounds ("≥"); with no vital sign at all, an info card says so. An assumed value (declared default,
e.g. air when no oxygen is charted) is named as an assumption.
"""
from __future__ import annotations

from typing import Any, Mapping

from hooks.catalog import INDICATORS
from hooks.definitions import ServiceDefinition
from hooks.loader import check_summary
from models.equations import news2 as N
from models.equations import qsofa as Q

from cds_service.builders.base import BuildContext, card, display_value
from cds_service.builders.equation_cards import check_model, check_secondary, extension, points_text
from cds_service.builders.markdown import literal, note

PRIMARY = "equation:news2"
QSOFA = "equation:qsofa"
SUMMARY_FIELDS = {"news2": "≥20", "qsofa": "≥3"}


def check(service: ServiceDefinition) -> set[str]:
    check_model(service, PRIMARY)
    check_secondary(service, QSOFA)
    used = set(N.FEATURES)
    data = service.data
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
    if data.get("qsofa_indicator") not in INDICATORS:
        raise ValueError(f"data.qsofa_indicator must be one of {', '.join(INDICATORS)}")
    for key in ("qsofa_advice", "none_summary", "window"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"data.{key} is required")
    check_summary(service.path, "data.none_summary", data["none_summary"], {})
    return used


def band_for(bands: list[Mapping[str, Any]], total: float, max_points: float) -> Mapping[str, Any]:
    for b in bands:
        if "min_total" in b and total >= b["min_total"]:
            return b
        if "single_parameter" in b and max_points >= b["single_parameter"]:
            return b
    return bands[-1]


def _row(ctx: BuildContext, name: str, points: str) -> str:
    f = ctx.features[name]
    value = display_value(ctx, f).replace(" Cel", " °C") if not f.missing else "**not recorded**"
    if f.imputed:
        value += " (assumed)"
    when = ", ".join(literal(e.date) for e in f.evidence[:1]) or "-"
    return f"| {N.PARAMETER_LABELS.get(name, f.label)} | {value} | {points} | {when} | {note(f)} |"


def build(ctx: BuildContext) -> list:
    data, f = ctx.service.data, ctx.features
    news = ctx.prediction
    qsofa = ctx.secondary[QSOFA]
    measured = [n for n in N.PARAMETERS if not f[n].missing and not f[n].imputed]
    if news is None or not measured:
        lines = [f"No vital sign was recorded in the last {data['window']}; nothing is assumed normal:", ""]
        lines += [f"- {f[n].label}: {note(f[n], 'not recorded')}" for n in N.PARAMETERS if not f[n].imputed]
        lines += [f"- data '{k}' unavailable: {literal(reason)}" for k, reason in ctx.unavailable.items()]
        lines += ["", "Record a full set of observations (respiration rate, SpO2, oxygen, blood pressure, pulse, "
                      "consciousness, temperature) to score NEWS2 and qSOFA."]
        return [card(ctx, "no-vitals", data["none_summary"], "info", "\n".join(lines), extension=extension(ctx, None, qsofa))]

    bands = list(data["bands"])
    band = band_for(bands, news.score, news.details.get("max_parameter_points", 0))
    indicator = band["indicator"]
    positive = qsofa is not None and qsofa.details.get("positive")
    if positive and INDICATORS.index(data["qsofa_indicator"]) > INDICATORS.index(indicator):
        indicator = data["qsofa_indicator"]
    complete = news.details.get("complete", True) and (qsofa is None or qsofa.details.get("complete", True))
    if band is bands[-1] and not positive and complete and not data.get("show_low", True):
        return []

    summary = band["summary"].format(news2=points_text(news), qsofa=points_text(qsofa))
    scale = news.details.get("spo2_scale", 1)
    lines = [f"**NEWS2 {points_text(news)}** — {band['name']} clinical risk (RCP 2017); SpO2 Scale {scale}"
             + (f" ({note(f['hypercapnic_target'])})" if scale == 2 else "") + ".", "",
             "| Parameter | Value | Points | Recorded | Note |", "| --- | --- | --- | --- | --- |"]
    not_assessed = set(news.details.get("not_assessed", ()))
    for n in N.PARAMETERS:
        lines.append(_row(ctx, n, "not assessed" if n in not_assessed else f"{news.contributions[n]:.0f}"))
    lines += ["", f"**Response (RCP):** {band['response']}"]
    if qsofa is not None:
        met = [Q.CRITERIA_LABELS[k] for k, v in qsofa.contributions.items() if v > 0]
        lines += ["", f"**qSOFA {points_text(qsofa)}** (Sepsis-3): " + ("; ".join(met) if met else "no criterion met") + "."]
        if positive:
            lines += ["", data["qsofa_advice"]]
    missing = [N.PARAMETER_LABELS[n] for n in N.PARAMETERS if f[n].missing]
    if missing:
        lines += ["", f"**Not assessed** (no value in the last {data['window']}, not assumed normal): {', '.join(missing)}. "
                      "The scores above are lower bounds ('≥')."]
    assumed = [f"{f[n].label}: {note(f[n])}" for n in N.FEATURES if f[n].imputed]
    if assumed:
        lines += ["", "**Assumed:** " + "; ".join(assumed) + "."]
    lines += ["", "*Consciousness: a GCS below 15 or an ACVPU other than Alert counts as new confusion (3 points); "
                  "if it is the patient's baseline, say so when dismissing. Temperature is rounded to 0.1 °C and the other "
                  "parameters to whole numbers before scoring.*",
              "", f"*Sources:* {N.INFO.citation}; {Q.INFO.citation}."]
    for key, reason in ctx.unavailable.items():
        lines.append(f"\nData unavailable for '{key}': {literal(reason)}.")
    return [card(ctx, "news2", summary, indicator, "\n".join(lines), extension=extension(ctx, None, qsofa))]

"""Primary prevention of ASCVD by the decision flow of the 2018 AHA/ACC/multisociety Guideline on the
Management of Blood Cholesterol (Grundy SM et al., Circulation 2019;139:e1082-e1143).

The guideline's order, which this module keeps (the PCE is its last step, not its first):
1. clinical ASCVD → secondary prevention (4.1): the Pooled Cohort Equations do not apply; an info card says so
   and offers no statin draft;
2. already on a statin → adherence, intensity and LDL-C response (4.4.3), never initiation: the 10-year risk
   from on-treatment lipids underestimates the untreated risk;
3. over 75 → clinical assessment and risk discussion (4.4.4), no draft;
4. LDL-C ≥ 190 mg/dL, age 20–75 → high-intensity statin without risk estimation (4.2);
5. diabetes, age 40–75 → at least moderate-intensity statin whatever the 10-year risk (4.3); the PCE and the
   diabetes-specific enhancers to consider high intensity;
6. age 40–75, LDL-C 70–189 → the PCE's risk categories (4.4.2) with the risk-enhancing factors on record named
   (4.4.1) and those that could not be assessed listed.
Who the service is for is declared in the service file (`[[population]]`): adults 20–79 (no card outside),
not pregnant or breastfeeding (a card saying why no statin is suggested; never a statin draft); the Pooled
Cohort Equations' own range (40–79, no clinical ASCVD) is a `scope = "model"` criterion: outside it no risk is
computed. At 20–39 only the LDL-C ≥ 190 group applies. Thresholds, code sets, wording and drafts are in the
service file (`hooks/ascvd-10y-risk.toml`); the generic pieces of a risk card (the PCE detail, the
missing-input card) come from `risk`; every missing input is worded by the shared helpers of `base`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Mapping

from cds_service.builders.base import (
    BuildContext,
    absence_text,
    applicability_cards,
    applicability_notes,
    declared_suggestion,
    display_value,
    found_text,
    missing_text,
    number,
    prediction_extension,
    unavailable_sources,
)
from cds_service.builders.base import card as base_card
from cds_service.builders.equation_cards import check_model, check_secondary, feature_def, require_feature
from cds_service.builders.markdown import literal
from cds_service.builders.risk import missing_card, pct, risk_lines, rule_for, rule_suggestions
from fhir_adapters.kinds_history import NO_CONDITION
from fhir_adapters.units import value_text
from hooks.definitions import ServiceDefinition
from hooks.loader import check_keys, check_summary
from models.feature_vector import Feature

PCE = "equation:pce-goff-2013"
SUMMARY_FIELDS = {"ldl": "600", "age": "79", "result": "2-hour OGTT glucose 1500 mg/dL"}
BRANCHES = ("secondary", "on_statin", "severe_ldl", "diabetes", "older", "low_ldl", "unconfirmed_diabetes")
SUGGESTIONS = ("statin_moderate", "statin_high", "lipid_panel")
INTS = ("older_from", "severe_ldl", "ldl_floor", "recheck_days")
DIABETES_RANGE_KEYS = frozenset({"feature", "at_least", "label", "unit"})  # shown rounded by `units.value_text`


@dataclass(frozen=True, slots=True)
class Test:
    """One way an enhancer shows in the record: a flag feature, or a value at least / below a limit
    (with at least `min_count` results of the `count` feature, for "persistently")."""

    feature: str
    at_least: float | None = None
    below: float | None = None
    count: str | None = None
    min_count: int = 0


@dataclass(frozen=True, slots=True)
class Enhancer:
    label: str
    tests: tuple[Test, ...]
    not_read: str = ""


def _enhancers(service: ServiceDefinition, key: str) -> tuple[Enhancer, ...]:
    """The enhancers declared under `data.<key>`, parsed once per service (checked at start-up by `check`)."""
    return service.derived(("ascvd.enhancers", key), lambda: _parse_enhancers(service, key))


def _parse_enhancers(service: ServiceDefinition, key: str) -> tuple[Enhancer, ...]:
    out = []
    for i, raw in enumerate(service.data.get(key) or ()):
        where = f"data.{key}[{i}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("label"), str) or not isinstance(raw.get("any"), list):
            raise ValueError(f"{where} needs a label and an `any` list of tests")
        tests = []
        for j, t in enumerate(raw["any"]):
            feature = require_feature(service, t.get("feature"), f"{where}.any[{j}].feature")
            count = require_feature(service, t["count"], f"{where}.any[{j}].count") if "count" in t else None
            tests.append(Test(feature, t.get("at_least"), t.get("below"), count, int(t.get("min_count", 0))))
        if not tests and not raw.get("not_read"):
            raise ValueError(f"{where}: an enhancer without tests must say why it is `not_read`")
        out.append(Enhancer(raw["label"], tuple(tests), raw.get("not_read", "")))
    if not out:
        raise ValueError(f"data.{key} must list at least one risk-enhancing factor")
    return tuple(out)


def check(service: ServiceDefinition) -> set[str]:
    """Start-up check of the flow's data; returns the features the flow reads besides the model's."""
    check_model(service, PCE)
    check_secondary(service)
    data = service.data
    for key in INTS:
        if not isinstance(data.get(key), int):
            raise ValueError(f"data.{key} must be a whole number")
    ages = data.get("group_ages")
    if not (isinstance(ages, list) and len(ages) == 2 and ages[0] < ages[1] < data["older_from"]):
        raise ValueError("data.group_ages must be [low, high] with low < high < older_from")
    ldl = data.get("ldl_features")
    if not (isinstance(ldl, list) and ldl):
        raise ValueError("data.ldl_features must list the LDL-C features")
    for name in ldl:
        if feature_def(service, require_feature(service, name, "data.ldl_features")).kind != "latest_quantity":
            raise ValueError(f"data.ldl_features: '{name}' must be a feature of kind 'latest_quantity'")
    for name in SUGGESTIONS:
        if name not in service.suggestions:
            raise ValueError(f"[suggestions.{name}] is required by the flow")
    for branch in BRANCHES:
        check_summary(service.path, f"data.summaries.{branch}", (data.get("summaries") or {}).get(branch), SUMMARY_FIELDS)
    for branch in (*BRANCHES, "missing_ldl"):
        if not isinstance((data.get("advice") or {}).get(branch), str):
            raise ValueError(f"data.advice.{branch} is required")
    used = {"ascvd", "on_statin", "diabetes", *ldl}
    for i, r in enumerate(data.get("diabetes_range") or ()):
        where = f"data.diabetes_range[{i}]"
        name = require_feature(service, r.get("feature") if isinstance(r, Mapping) else None, f"{where}.feature")
        if not (isinstance(r.get("at_least"), (int, float)) and isinstance(r.get("label"), str) and isinstance(r.get("unit"), str)):
            raise ValueError(f"{where} needs at_least, label and unit")
        check_keys(service.path, where, r, DIABETES_RANGE_KEYS)
        used.add(name)
    if not data.get("diabetes_range"):
        raise ValueError("data.diabetes_range must list the glucose tests and their diagnostic thresholds")
    for key in ("enhancers", "diabetes_enhancers"):
        for e in _enhancers(service, key):
            used |= {t.feature for t in e.tests} | {t.count for t in e.tests if t.count}
    for name in ("ascvd", "on_statin", "diabetes"):
        require_feature(service, name, "the flow")
    return used


# ---- reading the record ---------------------------------------------------------------------------------


def latest_ldl(ctx: BuildContext) -> Feature | None:
    """The newest LDL-C of the declared codes; on the same day the first declared (direct before calculated)."""
    names = ctx.service.data["ldl_features"]
    found = [(ctx.features[n].date or "", -i, ctx.features[n]) for i, n in enumerate(names) if not ctx.features[n].missing]
    return max(found, key=lambda t: (t[0], t[1]))[2] if found else None


def _ldl_text(ctx: BuildContext, ldl: Feature | None) -> str:
    if ldl is None:
        return "LDL-C: " + missing_text(ctx, ctx.service.data["ldl_features"][0], short=True)
    return f"LDL-C: **{number(ldl.number(), 0)} mg/dL** ({ldl.label}, {literal(ldl.date)})"


def _test(ctx: BuildContext, t: Test) -> tuple[str, str]:
    """('present' | 'absent' | 'unavailable' | 'unrecorded', what it rests on or why it is unknown)."""
    f = ctx.features[t.feature]
    if unavailable_sources(ctx, t.feature):  # checked first: an empty answer we could not get is not an absence
        return "unavailable", f.label
    if f.missing:
        if f.note == NO_CONDITION:  # e.g. no type 1 diabetes: its duration is not a missing value
            return "absent", ""
        return "unrecorded", f"{f.label}: {missing_text(ctx, t.feature)}"
    where = f" ({literal(f.date)})" if f.date else ""
    v = f.number()
    if t.at_least is None and t.below is None:
        if v >= 0.5:
            return "present", found_text(f)
        return "absent", ""
    holds = (t.at_least is None or v >= t.at_least) and (t.below is None or v < t.below)
    if not holds:
        return "absent", ""
    value = display_value(ctx, f)
    if t.count:
        n = int(ctx.features[t.count].value or 0)
        if n < t.min_count:
            return "unrecorded", f"{f.label}: {value}{where} in {n} result(s), {t.min_count} needed to call it persistent"
        return "present", f"{f.label}: {value}{where}, {n} results"
    return "present", f"{f.label}: {value}{where}"


@dataclass(frozen=True, slots=True)
class EnhancerStates:
    present: tuple[str, ...]      # "label — what it rests on"
    unavailable: tuple[str, ...]  # labels whose data was not available to the service
    unrecorded: tuple[str, ...]   # "label (why)": the data was available and holds no usable value
    not_read: tuple[str, ...]     # "label (why)": the service does not read it
    absent: tuple[str, ...]       # labels: available, on record, and not present


def enhancer_states(ctx: BuildContext, key: str) -> EnhancerStates:
    present, unavailable, unrecorded, not_read, absent = [], [], [], [], []
    for e in _enhancers(ctx.service, key):
        results = [_test(ctx, t) for t in e.tests]
        by_state = {state: [why for s, why in results if s == state] for state in ("present", "unavailable", "unrecorded")}
        if by_state["present"]:
            present.append(f"{e.label} — {'; '.join(by_state['present'])}")
        elif by_state["unavailable"]:
            unavailable.append(e.label)
        elif by_state["unrecorded"]:
            why = [w.removeprefix(f"{e.label}: ") for w in by_state["unrecorded"]]  # "South Asian ancestry: …" once
            unrecorded.append(f"{e.label} ({'; '.join(why)})")
        elif e.not_read:
            not_read.append(f"{e.label} ({e.not_read})")
        else:
            absent.append(e.label)
    return EnhancerStates(*(tuple(x) for x in (present, unavailable, unrecorded, not_read, absent)))


def _enhancer_lines(ctx: BuildContext, key: str, title: str) -> list[str]:
    st = enhancer_states(ctx, key)
    lines = ["", f"**{title}**"]
    names = [t.feature for e in _enhancers(ctx.service, key) for t in e.tests]
    none = absence_text(ctx, names, "none present on record", what="risk-enhancing factor")
    lines += [f"- Present: {p}" for p in st.present] or [f"- {_capital(none)}."]
    if st.unavailable:
        lines.append(f"- Not assessed, data not available to the service: {', '.join(st.unavailable)}.")
    if st.unrecorded:
        lines.append(f"- Not assessed, no usable value: {'; '.join(st.unrecorded)}.")
    lines += [f"- Not read: {n}." for n in st.not_read]
    if st.absent:
        lines.append(f"- Not present on record: {', '.join(st.absent)}.")
    return lines


def _pce_lines(ctx: BuildContext, advice: str = "", caveat: str = "") -> list[str]:
    """The 10-year risk with its detail, or why it was not calculated."""
    names = ctx.require_model().info.feature_names
    if ctx.prediction is None:
        missing = [ctx.features[n] for n in ctx.require_model().info.required if ctx.features[n].missing]
        why = ", ".join(f"{f.label} ({missing_text(ctx, f.name)})" for f in missing) or "outside the equations' population"
        return ["", f"10-year ASCVD risk (Pooled Cohort Equations) not calculated: {why}."]
    lines = ["", *risk_lines(ctx, names, advice, population_notes=False), *_glycaemia_lines(ctx)]
    if caveat:
        lines[1:1] = [caveat, ""]
    return lines


def card(ctx: BuildContext, key: str, summary: str, indicator: str, detail: str, **kw):
    """`base.card` with the population criteria that could not be checked (e.g. pregnancy status) named."""
    notes = applicability_notes(ctx)
    return base_card(ctx, key, summary, indicator, "\n\n".join([detail, *notes]) if notes else detail, **kw)


# Groups decided without the 10-year risk (2018 AHA/ACC 4.1, 4.2; 4.4.3: on-treatment lipids underestimate it; LDL-C
# below 70 mg/dL is outside the initiation groups of 4.3 and 4.4.2): the PCE may have been computed, but the decision
# did not use it.
DECIDED_WITHOUT_RISK = ("secondary-prevention", "on-statin", "ldl-190", "ldl-below-70")


def _extension(ctx: BuildContext, group: str) -> dict:
    ext = prediction_extension(ctx, score_used=group not in DECIDED_WITHOUT_RISK)
    next(iter(ext.values()))["statinBenefitGroup"] = group
    return ext


def _suggest(ctx: BuildContext, name: str, recommended: bool = False):
    s = ctx.service.suggestions[name]
    return declared_suggestion(ctx, replace(s, recommended=recommended) if recommended else s)


# ---- the flow --------------------------------------------------------------------------------------------


def build(ctx: BuildContext) -> list:
    f, data = ctx.features, ctx.service.data
    if f["age"].value is None:  # no group can be placed without the age: name it, invent nothing
        return [missing_card(ctx, [f["age"]], ctx.require_model().info.feature_names)]
    outside = applicability_cards(ctx, undecided=False)  # under 20, 80 and over (silent); pregnancy (a card)
    if outside is not None:
        return [_with_statin_on_record(ctx, c) for c in outside]
    age = f["age"].value
    if (f["ascvd"].value or 0) >= 0.5:
        return [_secondary(ctx)]
    if (f["on_statin"].value or 0) >= 0.5:
        return [_on_statin(ctx)]
    if age >= data["older_from"]:
        return [_older(ctx)]
    ldl = latest_ldl(ctx)
    if ldl is not None and ldl.value >= data["severe_ldl"]:
        return [_severe_ldl(ctx, ldl)]
    low, high = data["group_ages"]
    if not low <= age <= high:
        return []  # 20-39 without LDL-C >= 190: lifetime risk (4.4.4) is not what this service estimates
    if (f["diabetes"].value or 0) >= 0.5:
        return [_diabetes(ctx, ldl)]
    in_range = diabetes_range_results(ctx)
    if in_range:  # diabetes in all but name: no risk computed as if it were absent
        return [_unconfirmed_diabetes(ctx, ldl, in_range)]
    if ctx.prediction is None:
        missing = [f[n] for n in ctx.require_model().info.required if f[n].missing]
        return [missing_card(ctx, missing, ctx.require_model().info.feature_names)]
    if ldl is not None and ldl.value < data["ldl_floor"]:
        return [_low_ldl(ctx, ldl)]
    return [_risk(ctx, ldl)]


def _with_statin_on_record(ctx: BuildContext, c):
    """The not-applicable card (pregnancy) names a statin already on record, and is then a warning: the guideline
    stops it as soon as the pregnancy is discovered (4.5.2)."""
    statin = ctx.features["on_statin"]
    if (statin.value or 0) < 0.5:
        return c
    drug = literal((statin.note or "a statin").removeprefix("active: "))
    line = (f"**A statin is on record: {drug}**" + (f" (ordered {literal(statin.date)})" if statin.date else "")
            + " — review it now: stop it as soon as a pregnancy is discovered, and do not use it while breastfeeding.")
    return replace(c, indicator="warning", detail=line + "\n\n" + c.detail)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _summary(ctx: BuildContext, branch: str, **fields: Any) -> str:
    return ctx.service.data["summaries"][branch].format(**fields)


def _advice(ctx: BuildContext, branch: str) -> str:
    return ctx.service.data["advice"][branch]


def _secondary(ctx: BuildContext) -> object:
    f = ctx.features
    ascvd = f["ascvd"]
    statin = (literal((f["on_statin"].note or "").removeprefix("active: ")) if (f["on_statin"].value or 0) >= 0.5
              else absence_text(ctx, ["on_statin"], "no active statin on record", what="active statin"))
    lines = [f"On record: {found_text(ascvd)}.", "", _advice(ctx, "secondary"), "",
             f"Statin: {statin}."]
    return card(ctx, "secondary", _summary(ctx, "secondary"), "info", "\n".join(lines), extension=_extension(ctx, "secondary-prevention"))


def _on_statin(ctx: BuildContext) -> object:
    f, data = ctx.features, ctx.service.data
    statin, ldl = f["on_statin"], latest_ldl(ctx)
    started = statin.date
    lines = [f"On a statin: **{literal((statin.note or 'active').removeprefix('active: '))}**"
             + (f" (ordered {literal(started)})" if started else "") + ".",
             "", _advice(ctx, "on_statin"), "", _ldl_text(ctx, ldl) + "."]
    ldl_date = ldl.date if ldl is not None else None  # a value from the record always has its date
    before_start = bool(ldl_date and started and ldl_date < started)
    stale = ldl_date is None or before_start or (f.as_of.date() - date.fromisoformat(ldl_date)).days > data["recheck_days"]
    if before_start and started:
        recent = (f.as_of.date() - date.fromisoformat(started)).days < 28
        lines.append(f"The statin was ordered on {literal(started)}: a lipid profile 4-12 weeks after starting shows the "
                     "response (4.4.3)." if recent else f"LDL-C since the statin was ordered ({literal(started)}): "
                     + absence_text(ctx, data["ldl_features"], "not on record (the response 4-12 weeks after starting)") + ".")
    low, high = data["group_ages"]
    if (f["diabetes"].value or 0) >= 0.5 and low <= f["age"].value <= high:
        lines += ["", "Statin benefit group: diabetes aged 40-75 (4.3): at least a moderate-intensity statin."]
    if ctx.prediction is not None:
        lines += _pce_lines(ctx, caveat="*Computed from lipids that may be on-treatment values: it can underestimate the untreated "
                                        "10-year risk and is not a reason to start, stop or change a statin.*")
    suggestions = [_suggest(ctx, "lipid_panel")] if stale else []
    return card(ctx, "on-statin", _summary(ctx, "on_statin"), "info", "\n".join(lines), suggestions=suggestions,
                extension=_extension(ctx, "on-statin"))


def _older(ctx: BuildContext) -> object:
    age = ctx.features["age"].value
    lines = [_advice(ctx, "older"), "", _ldl_text(ctx, latest_ldl(ctx)) + "."]
    lines += _pce_lines(ctx)
    lines += _enhancer_lines(ctx, "enhancers", "Risk-enhancing factors (2018 AHA/ACC 4.4.1)")
    return card(ctx, "older", _summary(ctx, "older", age=f"{age:.0f}"), "info", "\n".join(lines),
                extension=_extension(ctx, "older-adult"))


def _severe_ldl(ctx: BuildContext, ldl: Feature) -> object:
    lines = [_ldl_text(ctx, ldl) + ".", "", _advice(ctx, "severe_ldl"),
             "", "The 10-year risk is not estimated for this group (4.2)."]
    return card(ctx, "severe-ldl", _summary(ctx, "severe_ldl", ldl=number(ldl.number(), 0)), "warning", "\n".join(lines),
                suggestions=[_suggest(ctx, "statin_high", recommended=True)], extension=_extension(ctx, "ldl-190"))


def _diabetes(ctx: BuildContext, ldl: Feature | None) -> object:
    f, data = ctx.features, ctx.service.data
    age = f["age"].value
    low_ldl = ldl is not None and ldl.number() < data["ldl_floor"]
    # Below LDL-C 70 the diabetes recommendation (4.3) does not start a statin: the card says that, not both.
    lines = [_advice(ctx, "low_ldl" if low_ldl else "diabetes"), "", _ldl_text(ctx, ldl) + "."]
    if ldl is None:
        lines += ["", absence_text(ctx, ctx.service.data["ldl_features"], _advice(ctx, "missing_ldl"))]
    high_risk = ctx.prediction is not None and ctx.prediction.score >= 0.20
    lines += _pce_lines(ctx, advice=("10-year risk >= 20%: a high-intensity statin (and ezetimibe if needed to lower "
                                     "LDL-C by >= 50%, COR IIb) may be reasonable (4.3).") if high_risk and not low_ldl else "")
    lines += _enhancer_lines(ctx, "diabetes_enhancers", "Diabetes-specific risk enhancers (2018 AHA/ACC 4.3)")
    lines += _enhancer_lines(ctx, "enhancers", "Other risk-enhancing factors (2018 AHA/ACC 4.4.1)")
    if low_ldl and ldl is not None:
        return card(ctx, "diabetes", _summary(ctx, "low_ldl", ldl=number(ldl.number(), 0)), "info", "\n".join(lines),
                    extension=_extension(ctx, "diabetes"))
    if ldl is None:
        suggestions, behaviour = [_suggest(ctx, "lipid_panel"), _suggest(ctx, "statin_moderate")], "any"
    else:
        suggestions = [_suggest(ctx, "statin_moderate", recommended=not high_risk), _suggest(ctx, "statin_high", recommended=high_risk)]
        behaviour = "at-most-one"  # two intensities of one drug: alternatives
    return card(ctx, "diabetes", _summary(ctx, "diabetes", age=f"{age:.0f}"), "warning", "\n".join(lines),
                suggestions=suggestions, selection_behavior=behaviour, extension=_extension(ctx, "diabetes"))


def diabetes_range_results(ctx: BuildContext) -> list[tuple[Feature, str]]:
    """The latest glucose results in the diabetes range (ADA 2026 section 2), with their text as a card shows it."""
    out = []
    for r in ctx.service.data["diabetes_range"]:
        f = ctx.features[r["feature"]]
        if f.value is not None and f.value >= r["at_least"]:
            sep = "" if r["unit"] == "%" else " "
            out.append((f, f"{r['label']} {value_text(f.value, f.name)}{sep}{r['unit']}"))
    return out


def _glycaemia_lines(ctx: BuildContext) -> list[str]:
    """Whether undiagnosed diabetes could be checked, on a card that takes diabetes as absent."""
    names = [r["feature"] for r in ctx.service.data["diabetes_range"]]
    if (ctx.features["diabetes"].value or 0) >= 0.5 or not unavailable_sources(ctx, *names):
        return []
    return ["", f"*Undiagnosed diabetes not checked: glucose results (HbA1c, fasting, 2-hour OGTT) "
                f"{missing_text(ctx, names[0], short=True)}; the 10-year risk takes diabetes as absent.*"]


def _unconfirmed_diabetes(ctx: BuildContext, ldl: Feature | None, results: list[tuple[Feature, str]]) -> object:
    names = [r["feature"] for r in ctx.service.data["diabetes_range"]]
    lines = [_advice(ctx, "unconfirmed_diabetes"), "",
             "**In the diabetes range:** " + "; ".join(f"{text} ({literal(f.date)})" for f, text in results) + ".", "",
             _ldl_text(ctx, ldl) + "."]
    lines += _enhancer_lines(ctx, "enhancers", "Risk-enhancing factors (2018 AHA/ACC 4.4.1)")
    no_score = replace(ctx, prediction=None)  # the equations' result with diabetes taken as absent is not shown
    ext = prediction_extension(no_score, {"diabetes", "age", *names, *ctx.service.data["ldl_features"]}, score_used=False)
    next(iter(ext.values()))["statinBenefitGroup"] = "diabetes-range-undiagnosed"
    summary = absence_text(ctx, ["diabetes"], _summary(ctx, "unconfirmed_diabetes", result=results[0][1]))
    return card(no_score, "unconfirmed-diabetes", summary, "info",
                "\n".join(lines), extension=ext)


def _low_ldl(ctx: BuildContext, ldl: Feature) -> object:
    lines = [_advice(ctx, "low_ldl"), "", _ldl_text(ctx, ldl) + "."] + _pce_lines(ctx)
    return card(ctx, "low-ldl", _summary(ctx, "low_ldl", ldl=number(ldl.number(), 0)), "info", "\n".join(lines),
                extension=_extension(ctx, "ldl-below-70"))


def _risk(ctx: BuildContext, ldl: Feature | None) -> object:
    rule = rule_for(ctx)
    lines = [_ldl_text(ctx, ldl) + "."]
    if ldl is None:
        lines += ["", absence_text(ctx, ctx.service.data["ldl_features"], _advice(ctx, "missing_ldl"))]
    lines += _pce_lines(ctx, advice=rule.advice)
    lines += _enhancer_lines(ctx, "enhancers", "Risk-enhancing factors (2018 AHA/ACC 4.4.1)")
    suggestions = rule_suggestions(ctx, rule.suggestions)
    if ldl is None:
        suggestions.insert(0, _suggest(ctx, "lipid_panel"))
    return card(ctx, "risk", rule.summary.format(risk=pct(ctx.require_prediction().score)), rule.indicator, "\n".join(lines),
                suggestions=suggestions, extension=_extension(ctx, "pce-" + rule.summary.split()[0].lower()))

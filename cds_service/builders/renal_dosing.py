"""Renal dosing at order-select and order-sign.

The logic: for each judged MedicationRequest (the selections for order-select, every order in effect
for order-sign), find its drug in `[data.drugs]` (a drug marked `systemic_only` ignores orders given by a
local route: a diclofenac gel is not a systemic NSAID), measure renal function the way that drug's label
does (eGFR by CKD-EPI 2021, CrCl by Cockcroft-Gault, or a count of dose-reduction criteria), pick the
first rule whose bounds hold (and whose `requires` co-medications are present, e.g. the NSAID + ACE
inhibitor/ARB + diuretic combination), and say what to do with a one-click suggestion: `delete` the draft
order, or `update` it to the labelled dose (the complete resource, ACT-1), or nothing (`caution`: review).
No card when the ordered dose is already the labelled one; a dose that cannot be read is said on the card
with the reason, and no change is computed from it. On dialysis (a dialysis condition or a recent dialysis
procedure) eGFR and CrCl are not meaningful: each drug's `dialysis` guidance from its label replaces the
eGFR/CrCl rules. When renal function cannot be measured, one info card says so and offers a basic
metabolic panel.

The data (drugs, code sets, thresholds, doses, sources, summaries) is in the service file; each
card cites its drug's source (label or guideline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cds_service.builders.base import (
    BOOLEAN_KINDS,
    BuildContext,
    absence_text,
    applicability_cards,
    card,
    display_value,
    found_text,
    inputs_table,
    lab_order,
    missing_states,
    missing_text,
    note_text,
    number,
    remove_order,
    unavailable_lines,
    unavailable_sources,
)
from cds_service.builders.equation_cards import check_model, check_secondary, extension, require_feature
from cds_service.builders.markdown import literal
from cds_service.cards import Action, Source, Suggestion
from fhir_adapters.orders import Dose, MedicationOrder, adjusted_order, medication_orders, ordered_dose
from hooks.catalog import INDICATORS
from hooks.definitions import OrderDef, ServiceDefinition
from hooks.loader import check_summary

PRIMARY = "equation:ckd-epi-2021"
CRCL = "equation:cockcroft-gault-1976"
MEASURES = {"egfr": "eGFR", "crcl": "CrCl", "criteria": "criteria"}
MEASURE_UNITS = {"egfr": "mL/min/1.73 m²", "crcl": "mL/min", "criteria": ""}
BOUNDS = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
ACTIONS = ("delete", "dose", "caution")
INDICATIONS = ("af", "other", "any")
FREQUENCY_WORDS = {1.0: "once daily", 2.0: "twice daily", 3.0: "three times daily", 4.0: "four times daily"}
UNREADABLE = "dose not readable from the order"


# ---- the service file's [data], parsed ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DoseSpec:
    mg: float
    per_day: float
    text: str  # the dosage instruction written into the updated order
    max_daily_mg: float | None = None  # an ordered dose at or under this daily total is accepted as is

    @property
    def dose(self) -> Dose:
        return Dose(self.mg, self.per_day)


@dataclass(frozen=True, slots=True)
class Rule:
    bounds: Mapping[str, float]
    indication: str
    indicator: str
    action: str
    summary: str
    advice: str
    dose: str | None = None
    if_taking: "Rule | None" = None
    taking_feature: str | None = None
    requires: tuple[str, ...] = ()  # flag features that must all be present (co-medication), e.g. the triple whammy

    def holds(self, value: float, af: bool | None, flags: frozenset[str] = frozenset()) -> bool:
        """`af` None (conditions unavailable): only rules for any indication apply."""
        if self.indication != "any" and (af is None or (self.indication == "af") != af):
            return False
        return set(self.requires) <= flags and all(BOUNDS[k](value, b) for k, b in self.bounds.items())


@dataclass(frozen=True, slots=True)
class Criterion:
    feature: str
    bounds: Mapping[str, float]
    label: str


@dataclass(frozen=True, slots=True)
class Drug:
    key: str
    name: str
    code: str
    ingredients: tuple[str, ...]
    measure: str
    source_label: str
    source_url: str | None
    form: str
    product: str  # the product's name in an updated order's text (e.g. "dabigatran etexilate")
    doses: Mapping[str, DoseSpec]
    rules: tuple[Rule, ...]
    criteria: tuple[Criterion, ...] = ()
    systemic_only: bool = False  # the rules are about systemic exposure: orders given by a local route are not judged
    dialysis: Rule | None = None  # the label's guidance on dialysis, replacing the eGFR/CrCl rules there


def dose_text(d: Dose) -> str:
    if d.mg is None or d.per_day is None:  # not `known`, spelt out for the type checker
        return UNREADABLE
    freq = FREQUENCY_WORDS.get(round(d.per_day, 6), f"{number(d.per_day, 2)} times a day")
    return f"{number(d.mg, 2)} mg {freq}"


def _bounds(raw: Mapping, field: str) -> dict[str, float]:
    out = {k: raw[k] for k in BOUNDS if k in raw}
    if not out or not all(isinstance(v, (int, float)) for v in out.values()):
        raise ValueError(f"{field} needs at least one numeric bound of ge, gt, le, lt")
    return {k: float(v) for k, v in out.items()}


def _rule(raw: Any, field: str, doses: Mapping[str, DoseSpec], service: ServiceDefinition, nested: bool = False) -> Rule:
    """One rule; `nested` (if_taking, dialysis) has no bounds of its own."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{field} must be a table")
    bounds = {} if nested else _bounds(raw, field)
    indication = raw.get("indication", "any")
    if indication not in INDICATIONS:
        raise ValueError(f"{field}.indication must be one of {', '.join(INDICATIONS)}")
    if raw.get("indicator") not in INDICATORS:
        raise ValueError(f"{field}.indicator must be one of {', '.join(INDICATORS)} (CARD-3)")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ValueError(f"{field}.action must be one of {', '.join(ACTIONS)}")
    dose = raw.get("dose")
    if action == "dose" and dose not in doses:
        raise ValueError(f"{field}.dose must name one of the drug's doses ({', '.join(doses) or 'none declared'})")
    requires = tuple(require_feature(service, name, f"{field}.requires") for name in raw.get("requires", ()))
    if not isinstance(raw.get("advice"), str) or not raw["advice"].strip():
        raise ValueError(f"{field}.advice is required (what to do, and why)")
    taking, feature = None, None
    if "if_taking" in raw and not nested:
        sub = raw["if_taking"]
        feature = require_feature(service, sub.get("feature") if isinstance(sub, Mapping) else None, f"{field}.if_taking.feature")
        taking = _rule({**sub, "indication": indication}, f"{field}.if_taking", doses, service, nested=True)
    return Rule(bounds, indication, raw["indicator"], action, raw.get("summary", ""), raw["advice"], dose, taking, feature, requires)


def parse_drugs(service: ServiceDefinition) -> tuple[Drug, ...]:
    raw = service.data.get("drugs")
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("data.drugs must declare at least one drug")
    drugs = []
    for key, d in raw.items():
        where = f"data.drugs.{key}"
        if not isinstance(d, Mapping):
            raise ValueError(f"{where} must be a table")
        for name in ("name", "code", "source_label"):
            if not isinstance(d.get(name), str) or not d[name].strip():
                raise ValueError(f"{where}.{name} is required")
        if "|" not in d["code"]:
            raise ValueError(f"{where}.code must be written 'system|code' (the ingredient's RxNorm code)")
        if d.get("measure") not in MEASURES:
            raise ValueError(f"{where}.measure must be one of {', '.join(MEASURES)}")
        doses = {}
        for name, spec in (d.get("doses") or {}).items():
            if not (isinstance(spec, Mapping) and isinstance(spec.get("mg"), (int, float)) and spec["mg"] > 0
                    and isinstance(spec.get("per_day"), (int, float)) and spec["per_day"] > 0 and isinstance(spec.get("text"), str)):
                raise ValueError(f"{where}.doses.{name} needs mg > 0, per_day > 0 and text")
            doses[name] = DoseSpec(float(spec["mg"]), float(spec["per_day"]), spec["text"], spec.get("max_daily_mg"))
        criteria = []
        for i, c in enumerate(d.get("criteria") or ()):
            feature = require_feature(service, c.get("feature"), f"{where}.criteria[{i}].feature")
            if not isinstance(c.get("label"), str):
                raise ValueError(f"{where}.criteria[{i}].label is required")
            criteria.append(Criterion(feature, _bounds(c, f"{where}.criteria[{i}]"), c["label"]))
        if d["measure"] == "criteria" and not criteria:
            raise ValueError(f"{where}: measure 'criteria' needs [[{where}.criteria]]")
        rules = tuple(_rule(r, f"{where}.rules[{i}]", doses, service) for i, r in enumerate(d.get("rules") or ()))
        if not rules:
            raise ValueError(f"{where}.rules: at least one rule is required")
        ingredients = tuple(d.get("ingredients") or (d["name"].lower(),))
        dialysis = None
        if "dialysis" in d:
            dialysis = _rule(d["dialysis"], f"{where}.dialysis", doses, service, nested=True)
            if dialysis.action not in ("delete", "caution"):
                raise ValueError(f"{where}.dialysis.action must be 'delete' or 'caution' (no dose is computed from eGFR/CrCl on dialysis)")
        if not isinstance(d.get("systemic_only", False), bool):
            raise ValueError(f"{where}.systemic_only must be true or false")
        drugs.append(Drug(key, d["name"], d["code"], ingredients, d["measure"], d["source_label"], d.get("source_url"),
                          d.get("form", ""), d.get("product") or ingredients[0], doses, rules, tuple(criteria),
                          d.get("systemic_only", False), dialysis))
    return tuple(drugs)


def _longest(drug: Drug) -> dict[str, str]:
    """The longest text each summary placeholder can produce (CARD-2 check at start-up)."""
    names = [drug.name] + [i.capitalize() for i in drug.ingredients]
    doses = [dose_text(s.dose) for s in drug.doses.values()] or [""]
    return {"drug": max(names, key=len), "value": "999.9", "dose": max(doses, key=len),
            "ordered": max([UNREADABLE, "9999.99 mg four times daily"], key=len),
            "met": ", ".join(c.label for c in drug.criteria) or "-", "total": str(len(drug.criteria))}


def check(service: ServiceDefinition) -> set[str]:
    """Start-up check of the renal-dosing service file; returns the features it reads."""
    check_model(service, PRIMARY)
    check_secondary(service, CRCL)
    used: set[str] = set()
    features = {f.name for f in service.features}
    used.add(require_feature(service, service.data.get("indication_feature"), "data.indication_feature"))
    dialysis = service.data.get("dialysis_features")
    if not (isinstance(dialysis, list) and dialysis):
        raise ValueError("data.dialysis_features must list the features that show the patient is on dialysis")
    used |= {require_feature(service, name, "data.dialysis_features") for name in dialysis}
    used.add(require_feature(service, service.data.get("kidney_failure_feature"), "data.kidney_failure_feature"))
    OrderDef.parse(service.data.get("bmp_order"), "data.bmp_order")  # the test offered when renal function is unknown
    for drug in parse_drugs(service):
        longest = _longest(drug)
        for i, r in enumerate(drug.rules):
            check_summary(service.path, f"data.drugs.{drug.key}.rules[{i}].summary", r.summary, longest)
            if r.if_taking:
                check_summary(service.path, f"data.drugs.{drug.key}.rules[{i}].if_taking.summary", r.if_taking.summary, longest)
                if r.taking_feature:
                    used.add(r.taking_feature)
            used |= set(r.requires)
        if drug.dialysis:
            check_summary(service.path, f"data.drugs.{drug.key}.dialysis.summary", drug.dialysis.summary, longest)
        used |= {c.feature for c in drug.criteria}
    return used & features


# ---- cards ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Measured:
    value: float | None  # eGFR, CrCl or the number of criteria met (the lower bound when some are unknown)
    rule: Rule | None
    missing: tuple[str, ...] = ()  # feature names whose absence leaves the rule undecided
    met: tuple[str, ...] = ()


def _first_rule(drug: Drug, value: float, af: bool | None, flags: frozenset[str]) -> Rule | None:
    return next((r for r in drug.rules if r.holds(value, af, flags)), None)


def _measure(ctx: BuildContext, drug: Drug, egfr, crcl, af: bool | None, flags: frozenset[str]) -> Measured:
    f = ctx.features
    if drug.measure in ("egfr", "crcl"):
        p = egfr if drug.measure == "egfr" else crcl
        if p is None:
            needed = ("age", "female", "creatinine") + (("weight",) if drug.measure == "crcl" else ())
            return Measured(None, None, tuple(n for n in needed if f[n].missing))
        return Measured(p.score, _first_rule(drug, p.score, af, flags))
    met, unknown = [], []
    for c in drug.criteria:
        v = f[c.feature].value
        if v is None:
            unknown.append(c.feature)
        elif all(BOUNDS[k](v, b) for k, b in c.bounds.items()):
            met.append(c.label)
    low, high = len(met), len(met) + len(unknown)
    rule = _first_rule(drug, low, af, flags)
    if unknown and any(_first_rule(drug, n, af, flags) is not rule for n in range(low, high + 1)):
        return Measured(None, None, tuple(unknown), tuple(met))
    return Measured(float(low), rule, (), tuple(met))


def _drug_name(drug: Drug, order: MedicationOrder) -> str:
    """The ingredient the order names, as written inside a sentence (lower case), else the group's name (NSAID)."""
    for name in drug.ingredients:
        if order.matches((), (name,)):
            return name
    return drug.name


def _sentence(template: str, **fields: str) -> str:
    """A summary template filled in, starting with a capital ('{drug} on dialysis' → 'Metformin on dialysis')."""
    text = template.format(**fields)
    return text[:1].upper() + text[1:]


def _renal_line(ctx: BuildContext, egfr, crcl, measure: str | None = None, rule: Rule | None = None) -> str:
    """eGFR, CrCl and their inputs, rounded by the one rule of the cards (`shown`): whole numbers, and the value a
    rule was judged on (`measure`) exactly as the summary shows it, so that the two never disagree (eGFR 44.998 on a
    card about 30-44 is '44.998' in both, never '45')."""
    f = ctx.features

    def text(value: float, which: str) -> str:
        return shown(value, rule) if which == measure and rule is not None else number(value, 0)

    parts = []
    if egfr is not None:
        parts.append(f"eGFR **{text(egfr.score, 'egfr')} mL/min/1.73 m²** (CKD-EPI 2021)")
    if crcl is not None:
        parts.append(f"CrCl **{text(crcl.score, 'crcl')} mL/min** (Cockcroft-Gault, actual body weight)")
    for name in ("creatinine", "weight"):
        if not f[name].missing:
            parts.append(f"{f[name].label.lower()} {display_value(ctx, f[name])}" + (f" ({literal(f[name].date)})" if f[name].date else ""))
    return "**Renal function:** " + " · ".join(parts) if parts else "**Renal function:** not measured"


def _ordered(order: MedicationOrder, dose: Dose) -> str:
    """The order being signed as the card's Markdown shows it: text, dose and status (its reference is in the action)."""
    return f"{literal(order.text)} — {dose_text(dose)} ({literal(order.status or 'unknown')} order)"


def _card_for(ctx: BuildContext, drug: Drug, order: MedicationOrder, m: Measured, rule: Rule, egfr, crcl,
              taking_feature: str | None, notes: list[str]):
    ordered = ordered_dose(order)
    target = drug.doses.get(rule.dose) if rule.dose else None
    unreadable = rule.action == "dose" and not ordered.known
    if rule.action == "dose" and not unreadable and target is not None:  # a "dose" rule names a declared dose
        daily = ordered.mg * ordered.per_day if ordered.mg is not None and ordered.per_day is not None else None
        daily_ok = target.max_daily_mg is not None and daily is not None and daily <= target.max_daily_mg
        if ordered.same_as(target.dose) or daily_ok:
            return None  # already the labelled dose: nothing to say
    name = _drug_name(drug, order)
    value = m.value or 0.0  # a rule was met, so the value it was judged on is there
    fields = {"drug": name, "value": f"{value:.0f}" if drug.measure == "criteria" or m.rule is None else shown(value, m.rule),
              "dose": dose_text(target.dose) if target else "", "ordered": dose_text(ordered),
              "met": ", ".join(m.met) or "none", "total": str(len(drug.criteria))}
    summary = _sentence(rule.summary, **fields)
    lines = [f"**Ordered:** {_ordered(order, ordered)}",
             "", _renal_line(ctx, egfr, crcl, drug.measure, m.rule)]
    if unreadable:
        lines += ["", f"**The ordered dose could not be read:** {literal(ordered.problem)}; check it against the label "
                      f"(labelled dose here: {dose_text(target.dose) if target else 'none declared'}). No change is suggested from a dose that was not understood."]
    if drug.measure == "criteria":
        lines.append(f"**Dose-reduction criteria met:** {', '.join(m.met) or 'none'} ({value:.0f} of {len(drug.criteria)}).")
    if taking_feature:
        lines.append(f"**Already taking {name}** ({literal(ctx.features[taking_feature].date) or 'active order'}).")
    for req in rule.requires:
        lines.append(f"**{ctx.features[req].label}:** {note_text(ctx.features[req]) or 'yes'}.")
    lines += ["", rule.advice, *notes, "", f"*Source:* {drug.source_label}."]
    names = ["age", "female", "creatinine"] + (["weight"] if drug.measure != "egfr" else [])
    names += [c.feature for c in drug.criteria if c.feature not in names]
    lines += ["", inputs_table(ctx, names),
              "", "*eGFR and CrCl are shown as whole numbers, with more decimals only where rounding would cross the "
                  "threshold; thresholds are compared with the unrounded values.*"]
    suggestions = []
    if rule.action == "delete":
        suggestions.append(remove_order(ctx, order, f"Remove the {name} order", key=("delete",), recommended=True))
    elif rule.action == "dose" and target and not unreadable:
        resource = adjusted_order(order, mg=target.mg, per_day=target.per_day, text=target.text, ingredient=drug.ingredients[0],
                                  ingredient_code=drug.code, form=drug.form, product=drug.product)
        action = Action("update", f"Change the order {order.text} to {target.text}", resource=resource)
        suggestions.append(Suggestion(f"Change to {dose_text(target.dose)}", ctx.suggestion_uuid(order.reference, "update"), (action,), True))
    used = set(names) | {ctx.service.data["indication_feature"]} | ({taking_feature} if taking_feature else set()) | set(rule.requires)
    return card(ctx, f"{order.reference}/{drug.key}/{rule.action}", summary, rule.indicator, "\n".join(lines),
                source=Source(drug.source_label, drug.source_url), suggestions=suggestions, selection_behavior="at-most-one",
                extension=extension(ctx, used, crcl, score_used=drug.measure != "criteria"))


def _dialysis_card(ctx: BuildContext, drug: Drug, rule: Rule, order: MedicationOrder, evidence: str):
    """On dialysis eGFR and CrCl do not describe the patient's clearance: the label's dialysis guidance (`rule`) speaks."""
    name = _drug_name(drug, order)
    lines = [f"**Ordered:** {_ordered(order, ordered_dose(order))}",
             "", f"**On dialysis:** {evidence}. eGFR and creatinine clearance are not meaningful on dialysis (creatinine is "
                 "removed by dialysis, not by the kidney): no eGFR- or CrCl-based dose is computed.",
             "", rule.advice, "", f"*Source:* {drug.source_label}."]
    suggestions = []
    if rule.action == "delete":
        suggestions.append(remove_order(ctx, order, f"Remove the {name} order", key=("delete",), recommended=True))
    used = set(ctx.service.data["dialysis_features"]) | {"age", "female"}
    return card(ctx, f"{order.reference}/{drug.key}/dialysis", _sentence(rule.summary, drug=name), rule.indicator, "\n".join(lines),
                source=Source(drug.source_label, drug.source_url), suggestions=suggestions, selection_behavior="at-most-one",
                extension=extension(ctx, used, score_used=False))


def shown(value: float, rule: Rule) -> str:
    """eGFR and CrCl as every card shows them: a whole number (mL/min/1.73 m², mL/min), or more decimals when the
    whole number would fall outside the rule it triggered (eGFR 44.96 is shown as 44.96, not 45, on a card about
    eGFR 30-44). Summary and detail both use it."""
    for digits in (0, 1, 2, 3):
        text = number(value, digits)
        if all(BOUNDS[k](float(text), b) for k, b in rule.bounds.items()):
            return text
    return f"{value:.4f}"


def _unknown_card(ctx: BuildContext, pending: list[tuple[str, tuple[str, ...]]], egfr, crcl):
    f = ctx.features
    order = ("creatinine", "weight", "age", "female")
    missing = sorted({n for _, names in pending for n in names}, key=lambda n: order.index(n) if n in order else len(order))
    drugs = sorted({d for d, _ in pending})
    indication = ctx.service.data["indication_feature"]
    labels = missing_states(ctx, missing)
    if "creatinine" in missing:
        summary = f"Renal function unknown: {labels} — needed to dose {', '.join(drugs)}"
    else:
        summary = f"Dose check incomplete: {labels} — needed to dose {', '.join(drugs)}"
    lines = [f"Renal function could not be assessed for **{', '.join(drugs)}**; no value is assumed:" if "creatinine" in missing
             else f"What is needed to check the dose of **{', '.join(drugs)}** could not be determined; no value is assumed:", ""]
    lines += [f"- {f[n].label}: " + ("unknown, the conditions could not be obtained (label doses for AF were not checked)"
                                     if n == indication else missing_text(ctx, n)) for n in missing]
    lines += unavailable_lines(ctx)
    if egfr is not None or crcl is not None:
        lines += ["", _renal_line(ctx, egfr, crcl)]
    suggestions = []
    if "creatinine" in missing:
        suggestions.append(lab_order(ctx, "order-bmp", OrderDef.parse(ctx.service.data["bmp_order"], "data.bmp_order")))
    return card(ctx, "renal-function-unknown", summary, "info", "\n".join(lines), suggestions=suggestions,
                selection_behavior="any", extension=extension(ctx, ["age", "female", "creatinine", "weight"], crcl))


def _indication(ctx: BuildContext) -> bool | None:
    """AF or not; None when the data it comes from could not be obtained (then AF-only rules stay silent)."""
    name = ctx.service.data["indication_feature"]
    f = ctx.features[name]
    if f.missing or unavailable_sources(ctx, name):
        return None
    return f.number() >= 0.5


def _dialysis(ctx: BuildContext) -> tuple[str | None, list[str]]:
    """(what shows the patient is on dialysis, or None; notes for the eGFR/CrCl cards when it is uncertain)."""
    f, data = ctx.features, ctx.service.data
    found = [f[n] for n in data["dialysis_features"] if (f[n].value or 0) >= 0.5]
    if found:
        return "; ".join(found_text(x) for x in found), []
    notes = []
    missing = unavailable_sources(ctx, *data["dialysis_features"])
    if missing:
        notes.append(f"*Dialysis could not be fully checked: {', '.join(missing)} not available to the service. On dialysis eGFR "
                     "and CrCl do not apply and the label's dialysis guidance is followed instead.*")
    kf = f[data["kidney_failure_feature"]]
    if (kf.value or 0) >= 0.5:
        notes.append(f"**{found_text(kf)}** is on record, but "
                     + absence_text(ctx, data["dialysis_features"], "dialysis is not on record (no dialysis code, no dialysis "
                                                                   "procedure in the last 30 days)", what="dialysis")
                     + ". If the patient is on dialysis, eGFR and CrCl do not apply — follow the label's dialysis guidance.")
    return None, notes


def build(ctx: BuildContext) -> list:
    judged = [o for o in medication_orders(ctx.request.context) if o.selected]  # HOOK-OSEL-4: selections only
    if not judged:
        return []
    drugs = parse_drugs(ctx.service)
    # A rule about systemic exposure (NSAIDs) never judges an order given by a local route (topical gel, patch, eye drops).
    matched = [(o, d) for o in judged for d in drugs
               if o.matches((d.code,), d.ingredients) and not (d.systemic_only and o.route == "local")]
    if not matched:
        return []
    f = ctx.features
    outside = applicability_cards(ctx, undecided=False)  # `[[population]]`: adults (a child: no card, no dose)
    if outside is not None:
        return outside
    on_dialysis, notes = _dialysis(ctx)
    if on_dialysis:
        return [_dialysis_card(ctx, drug, drug.dialysis, order, on_dialysis) for order, drug in matched if drug.dialysis]
    egfr = ctx.prediction
    crcl = ctx.secondary[CRCL]
    af = _indication(ctx)
    flags = frozenset(d.name for d in ctx.service.features if d.kind in BOOLEAN_KINDS and (f[d.name].value or 0) >= 0.5)
    cards, pending = [], []
    for order, drug in matched:
        m = _measure(ctx, drug, egfr, crcl, af, flags)
        if m.rule is None:
            if m.value is None:
                pending.append((_drug_name(drug, order), m.missing))
            elif af is None and any(r.indication != "any" for r in drug.rules):
                pending.append((_drug_name(drug, order), (ctx.service.data["indication_feature"],)))
            continue
        rule, taking = m.rule, None
        if rule.if_taking and rule.taking_feature and (f[rule.taking_feature].value or 0) >= 0.5:
            rule, taking = rule.if_taking, rule.taking_feature
        c = _card_for(ctx, drug, order, m, rule, egfr, crcl, taking, ["", *notes] if notes else [])
        if c is not None:
            cards.append(c)
    if pending:
        cards.append(_unknown_card(ctx, pending, egfr, crcl))
    return cards

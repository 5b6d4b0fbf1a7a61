"""Diabetes detection at patient-view: guideline thresholds applied to the results already on file.

Order of the decision (ADA Standards of Care in Diabetes—2026, section 2; USPSTF 2021), first match wins:
1. not an adult, or diabetes already diagnosed → no card (care-gaps follows diagnosed diabetes);
2. pregnant → one info card saying the adult rules do not apply (gestational criteria differ).
   Steps 1-2 are the service file's `[[population]]`, judged by `applicability_cards`;
3. a latest result in the diabetes range → "possible undiagnosed diabetes": confirmed when two results are
   in the range (same sample or two samples, ADA's confirmation rule), otherwise a one-click repeat of that
   test; never a risk percentage for a value that is already diagnostic;
4. a latest result in the prediabetes range → info card: the retest date (yearly), a lifestyle programme
   referral, and a test order only when the yearly retest is due;
5. normal results inside the interval → info card with the date the next test is due (no order);
6. no result in the interval → when the results could not be obtained, say so (never "not recorded");
   otherwise, when screening-eligible (USPSTF 35-70 with BMI >= 25; ADA all adults from 35, or BMI >= 25,
   >= 23 in Asian American people, with a risk factor), an info card with a test order.
HbA1c is left out of the decision when a recorded condition makes it unreliable (ADA: plasma glucose only).
Thresholds, intervals, code sets and sources are data in `hooks/diabetes-detection.toml`; the ADA Diabetes
Risk Test on the screening card is its `[model] secondary`, run by the pipeline (`ctx.secondary`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Mapping, Sequence

from cds_service.builders.base import (
    BuildContext,
    absence_text,
    applicability_cards,
    applicability_notes,
    card,
    found_text,
    lab_order,
    missing_state,
    missing_text,
    number,
    order_suggestion,
    unavailable_lines,
    window_text,
)
from cds_service.builders.equation_cards import check_model, check_secondary, extension, require_feature
from fhir_adapters.units import value_text
from hooks.definitions import OrderDef, ServiceDefinition
from hooks.loader import check_keys

REFERRAL_CATEGORY = "http://snomed.info/sct|3457005"  # Patient referral
RISK_TEST = "equation:ada-risk-test"
ROLES = ("age", "female", "family_history", "hypertension", "diabetes", "pregnant", "gdm_history", "prediabetes_history",
         "hba1c_unreliable", "bmi", "asian")
NUMBERS = ("screen_interval_days", "prediabetes_interval_days", "uspstf_bmi", "ada_all_from_age", "ada_bmi", "ada_bmi_asian")


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    feature: str
    count: str
    label: str
    unit: str
    diagnostic: float
    prediabetes: float
    order: OrderDef

    def shown(self, value: float) -> str:
        """A value of this test as a card shows it, by the one rounding table (HbA1c 6.0, glucose 126), never rounded
        across the range it was classified in (HbA1c 6.46 on a prediabetes card, not 6.5)."""
        return value_text(value, self.feature, thresholds=(self.prediabetes, self.diagnostic))


TEST_KEYS = frozenset({"name", "feature", "count", "label", "unit", "diagnostic", "prediabetes", "order"})


@dataclass(frozen=True, slots=True)
class Result:
    """The latest result of one test, classified."""

    test: Test
    value: float
    on: date
    category: str  # "diabetes", "prediabetes" or "normal"

    def text(self) -> str:
        sep = "" if self.test.unit == "%" else " "
        return f"{self.test.label} {self.test.shown(self.value)}{sep}{self.test.unit} on {self.on.isoformat()}"


def parse_tests(service: ServiceDefinition) -> tuple[Test, ...]:
    out = []
    for i, t in enumerate(service.data.get("tests") or ()):
        where = f"data.tests[{i}]"
        if not isinstance(t, Mapping) or not all(isinstance(t.get(k), str) and t[k] for k in ("name", "label", "unit")):
            raise ValueError(f"{where} needs name, label and unit")
        check_keys(service.path, where, t, TEST_KEYS)
        feature = require_feature(service, t.get("feature"), f"{where}.feature")
        count = require_feature(service, t.get("count"), f"{where}.count")
        if not all(isinstance(t.get(k), (int, float)) for k in ("diagnostic", "prediabetes")) or not t["prediabetes"] < t["diagnostic"]:
            raise ValueError(f"{where}: diagnostic and prediabetes must be numbers with prediabetes < diagnostic")
        out.append(Test(t["name"], feature, count, t["label"], t["unit"], float(t["diagnostic"]),
                        float(t["prediabetes"]), OrderDef.parse(t.get("order"), f"{where}.order")))
    if not out:
        raise ValueError("data.tests must declare at least one test")
    return tuple(out)


def check(service: ServiceDefinition) -> set[str]:
    check_model(service, None)  # guideline thresholds, never a model estimate
    check_secondary(service, RISK_TEST)
    data = service.data
    for role in ROLES:
        require_feature(service, role, "builder diabetes_detection: feature")
    for key in NUMBERS:
        if not isinstance(data.get(key), (int, float)):
            raise ValueError(f"data.{key} must be a number")
    if not (isinstance(data.get("uspstf_age"), list) and len(data["uspstf_age"]) == 2):
        raise ValueError("data.uspstf_age must be [min, max]")
    for key in ("guideline", "uspstf", "not_read"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"data.{key} must be a non-empty text")
    factors = [require_feature(service, f, "data.risk_factors") for f in data.get("risk_factors") or ()]
    ref = data.get("referral")
    if not (isinstance(ref, Mapping) and "|" in str(ref.get("code", "")) and ref.get("display") and ref.get("text")):
        raise ValueError("data.referral needs code = 'system|code', display and text")
    tests = parse_tests(service)
    return set(ROLES) | set(factors) | {t.feature for t in tests} | {t.count for t in tests}


# ---- the decision (pure) --------------------------------------------------------------------------


def _on(feature) -> date | None:
    return date.fromisoformat(feature.date) if feature.date else None


def classify(test: Test, value: float) -> str:
    if value >= test.diagnostic:
        return "diabetes"
    return "prediabetes" if value >= test.prediabetes else "normal"


def latest_results(f, tests: Sequence[Test], hba1c_usable: bool) -> list[Result]:
    out = []
    for t in tests:
        feat, on = f[t.feature], _on(f[t.feature])
        if feat.value is None or (t.name == "hba1c" and not hba1c_usable) or on is None:
            continue
        out.append(Result(t, feat.value, on, classify(t, feat.value)))
    return out


def screening_reasons(f, data: Mapping) -> tuple[list[str], list[str]]:
    """(why screening applies, what could not be judged). Empty reasons: not eligible (or not decidable)."""
    age, bmi = f["age"].value, f["bmi"].value
    asian = (f["asian"].value or 0) >= 0.5
    reasons, unknown = [], []
    lo, hi = data["uspstf_age"]
    if lo <= age <= hi and bmi is not None and bmi >= data["uspstf_bmi"]:
        reasons.append(f"{data['uspstf']}: aged {lo}-{hi} with overweight or obesity (BMI {number(bmi)})")
    if age >= data["ada_all_from_age"]:
        reasons.append(f"{data['guideline']}: testing for all adults from age {data['ada_all_from_age']}")
    elif (f["gdm_history"].value or 0) >= 0.5:
        reasons.append(f"{data['guideline']}: history of gestational diabetes (testing at least every 3 years, lifelong)")
    else:
        threshold = data["ada_bmi_asian"] if asian else data["ada_bmi"]
        factors = [f[n].label for n in data["risk_factors"] if (f[n].value or 0) >= 0.5]
        if bmi is None:
            if factors:
                unknown.append("BMI (to apply the ADA criteria for adults under 35 with a risk factor)")
        elif bmi >= threshold and factors:
            group = " (Asian American threshold)" if asian else ""
            reasons.append(f"{data['guideline']}: BMI {number(bmi)} ≥ {threshold}{group} with {', '.join(factors).lower()}")
    return reasons, unknown


# ---- cards ----------------------------------------------------------------------------------------


def build(ctx: BuildContext) -> list:
    f = ctx.features
    outside = applicability_cards(ctx)  # `[[population]]`: adults without diabetes (silent); pregnancy (a card)
    if outside is not None:
        return outside
    tests = parse_tests(ctx.service)
    usable = (f["hba1c_unreliable"].value or 0) < 0.5
    results = latest_results(f, tests, usable)
    today = f.as_of.date()
    diabetic = [r for r in results if r.category == "diabetes"]
    if diabetic:
        return [_diabetes_card(ctx, tests, diabetic, results, usable)]
    pre = [r for r in results if r.category == "prediabetes"]
    if pre:
        return [_prediabetes_card(ctx, tests, pre, results, usable, today)]
    if results:
        return [_normal_card(ctx, results, usable, today)]
    return _screening_card(ctx, tests, usable)


def _tests_table(results: Sequence[Result]) -> list[str]:
    lines = ["| Test | Result | Date | Range (ADA 2026, section 2) |", "| --- | --- | --- | --- |"]
    for r in results:
        t = r.test
        ranges = {"diabetes": f"diabetes (≥ {t.shown(t.diagnostic)})",
                  "prediabetes": f"prediabetes ({t.shown(t.prediabetes)} to < {t.shown(t.diagnostic)})",
                  "normal": f"normal (< {t.shown(t.prediabetes)})"}[r.category]
        sep = "" if t.unit == "%" else " "
        lines.append(f"| {t.label} | {t.shown(r.value)}{sep}{t.unit} | {r.on.isoformat()} | {ranges} |")
    return lines


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _notes(ctx: BuildContext, usable: bool) -> list[str]:
    f, lines = ctx.features, []
    if not usable:
        feat = f["hba1c_unreliable"]
        lines.append(f"HbA1c is **not used** here: {feat.label.lower()} on record ({found_text(feat)}); "
                     "ADA 2026 section 2 says to use plasma glucose criteria only.")
    if ctx.unavailable:
        lines += ["**Data not obtained:**", *unavailable_lines(ctx)]
    return lines + applicability_notes(ctx)


def _order(ctx: BuildContext, t: Test, why: str):
    return lab_order(ctx, f"order-{t.name}", t.order, text=why)


def _ext(ctx: BuildContext) -> dict:
    """The extension of a card decided by the results on file (or their absence): the ADA Risk Test is not used."""
    return extension(ctx, None, score_used=False)


def _diabetes_card(ctx: BuildContext, tests, diabetic: list[Result], results: list[Result], usable: bool) -> object:
    f, data = ctx.features, ctx.service.data
    counted = [t for t in tests if t.name != "hba1c" or usable]
    n = int(sum(f[t.count].value or 0 for t in counted))
    first = diabetic[0]
    lines = [f"Results on file meet the **diabetes** criteria of {data['guideline']}, and no diabetes diagnosis is on the "
             "problem list. This is a guideline threshold, not a model estimate.", ""] + _tests_table(results)
    if n >= 2:
        summary = absence_text(ctx, ["diabetes"], f"Possible undiagnosed diabetes: {n} results in the diabetes range, "
                                                  "no diagnosis recorded (ADA 2026)")
        lines += ["", f"**Confirmed by the ADA rule:** {n} results in the diabetes range in the last 3 years (two abnormal "
                  "results, from the same sample or two samples, confirm the diagnosis without symptoms). Review the results "
                  "and, if they stand, record the diagnosis and start diabetes care."]
        suggestions = []
    else:
        summary = f"Possible undiagnosed diabetes: {first.text()}. Confirm with a repeat test (ADA 2026)"
        lines += ["", "**Not yet confirmed:** ADA 2026 section 2 requires a second abnormal result (the same test repeated, "
                  "or a second test from the same or another sample) unless there is unequivocal hyperglycaemia with classic "
                  "symptoms. Repeat the test promptly; if it is also in the diabetes range, the diagnosis is confirmed."]
        suggestions = [_order(ctx, first.test, f"Repeat to confirm a {first.text()} in the diabetes range (ADA 2026 section 2).")]
    lines += [""] + _notes(ctx, usable)
    return card(ctx, "diabetes-range", summary, "warning", "\n".join(lines).rstrip(), suggestions=suggestions,
                selection_behavior="at-most-one", extension=_ext(ctx))


def _prediabetes_card(ctx: BuildContext, tests, pre: list[Result], results: list[Result], usable: bool, today: date) -> object:
    data = ctx.service.data
    newest = max(r.on for r in results)
    due = newest + timedelta(days=int(data["prediabetes_interval_days"]))
    first = pre[0]
    lines = [f"{_capital(first.text())} is in the **prediabetes** range ({data['guideline']}). People with prediabetes should be "
             "tested at least **yearly**, and referred to an intensive lifestyle behaviour change programme modelled on "
             "the Diabetes Prevention Program (ADA 2026 section 3).", ""] + _tests_table(results)
    suggestions = []
    if due <= today:
        summary = f"Prediabetes range: {first.text()}. Yearly retest is due; offer a lifestyle programme (ADA 2026)"
        test = first.test if (first.test.name != "ogtt") else next(t for t in tests if t.name == ("hba1c" if usable else "fpg"))
        suggestions.append(_order(ctx, test, f"Yearly retest for prediabetes ({first.text()}), ADA 2026 section 2."))
    else:
        summary = f"Prediabetes range: {first.text()}. Retest by {due.isoformat()}; offer a lifestyle programme (ADA 2026)"
        lines += ["", f"The last test was on {newest.isoformat()}: the next one is due by **{due.isoformat()}** (no test is "
                  "ordered now)."]
    ref = data["referral"]
    suggestions.append(order_suggestion(ctx, "referral-dpp", "Refer to a lifestyle (diabetes prevention) programme", ref["code"],
                                        ref["display"], category=REFERRAL_CATEGORY, text=ref["text"]))
    lines += [""] + _notes(ctx, usable)
    return card(ctx, "prediabetes-range", summary, "info", "\n".join(lines).rstrip(), suggestions=suggestions,
                selection_behavior="any", extension=_ext(ctx))


def _normal_card(ctx: BuildContext, results: list[Result], usable: bool, today: date) -> object:
    f, data = ctx.features, ctx.service.data
    newest = max(results, key=lambda r: r.on)
    yearly = (f["prediabetes_history"].value or 0) >= 0.5
    interval = int(data["prediabetes_interval_days"] if yearly else data["screen_interval_days"])
    due = newest.on + timedelta(days=interval)
    why = ("prediabetes on the problem list: yearly" if yearly else "normal results: at least every 3 years")
    lines = [f"The latest results are in the **normal** range ({data['guideline']}).", ""] + _tests_table(results)
    lines += ["", f"Retest interval: {why} ({data['guideline']}; {data['uspstf']})."]
    suggestions = []
    if due <= today:
        summary = (f"Diabetes retest due: last {newest.text()} (normal); yearly testing for prediabetes (ADA 2026)" if yearly else
                   f"Diabetes screening due: last {newest.text()} (normal) is 3 years old (ADA 2026)")
        t = newest.test if newest.test.name != "ogtt" else next(x for x in parse_tests(ctx.service) if x.name == ("hba1c" if usable else "fpg"))
        suggestions.append(_order(ctx, t, f"Retest: {why} (ADA 2026 section 2)."))
    else:
        summary = f"Diabetes screening up to date: {newest.text()} (normal). Next test by {due.isoformat()}"
    lines += [""] + _notes(ctx, usable)
    return card(ctx, "normal", summary, "info", "\n".join(lines).rstrip(), suggestions=suggestions,
                selection_behavior="at-most-one", extension=_ext(ctx))


def _screening_card(ctx: BuildContext, tests, usable: bool) -> list:
    f, data = ctx.features, ctx.service.data
    if "labs" in ctx.unavailable:
        summary = "Diabetes screening status unknown: laboratory results were not available to the service"
        lines = ["The service could not obtain this patient's HbA1c and glucose results, so it cannot tell whether a "
                 "screening test is due. Nothing is suggested; check the results in the record."] + [""] + _notes(ctx, usable)
        return [card(ctx, "labs-unavailable", summary, "info", "\n".join(lines).rstrip(), extension=_ext(ctx))]
    reasons, unknown = screening_reasons(f, data)
    if not reasons:
        return []
    test = next(t for t in tests if t.name == ("hba1c" if usable else "fpg"))
    cited = f"{data['uspstf']}; ADA 2026" if any(r.startswith(data["uspstf"]) for r in reasons) else "ADA 2026"
    state = missing_state(ctx, "hba1c") + window_text(ctx, "hba1c")
    summary = f"Diabetes screening due: HbA1c and fasting glucose {state} ({cited})"
    lines = [f"HbA1c, fasting plasma glucose and 2-hour OGTT: {missing_text(ctx, 'hba1c', short=True)}; screening applies:", ""]
    lines += [f"- {r}" for r in reasons]
    lines += ["", f"Risk factors not read by this service: {data['not_read']}."]
    # Physical activity is not read (scored 0, listed as not assessed); None when age, sex or BMI is missing.
    score = ctx.secondary[RISK_TEST]
    if score is not None:
        bound = "" if score.details.get("complete") else "≥ "
        missing = ", ".join(n.replace("_", " ") for n in score.details.get("not_assessed", ()))
        lines.append(f"ADA Diabetes Risk Test (Bang 2009): **{bound}{score.score:.0f} of 10** points "
                     f"(5 or more: high risk){'; not assessed, scored 0: ' + missing if missing else ''}.")
    if unknown:
        lines.append("Could not be judged: " + "; ".join(unknown) + ".")
    lines += [""] + _notes(ctx, usable)
    suggestion = _order(ctx, test, f"Screening for prediabetes and type 2 diabetes ({data['guideline']}; {data['uspstf']}).")
    return [card(ctx, "screening-due", summary, "info", "\n".join(lines).rstrip(), suggestions=[suggestion],
                 selection_behavior="at-most-one", extension=extension(ctx, None, score))]

"""Read the orders of an order-select / order-sign context, and write an adjusted draft order.

- `draftOrders` is a Bundle of request resources (HOOK-OSEL-5, HOOK-OSIGN-4); the Library CI examples
  add `"type": "collection"`, the 1.0.1 examples have none: both are read the same way.
- A MedicationRequest names its drug in `medicationCodeableConcept`, or through `medicationReference`
  to a contained Medication (`#id`) or to a Medication elsewhere in the Bundle (or fetched).
- order-select judges only the `selections` (HOOK-OSEL-4); the other draft orders of the session still
  count as co-medication. order-sign judges every order, whatever its status: a re-signed order may be
  `active` (HOOK-OSIGN-4); only `entered-in-error` and `cancelled` orders are not being put into effect.
- `appointments` is a Bundle, or a bare array in the 1.0.1 examples (HOOK-AB-4): `context_resources` reads both.

Pure functions over plain dicts: no I/O.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from . import resources as R
from .features import CodeSet, matches_codes, mentions
from .rxnorm_products import RXNORM, Product, product

UCUM = "http://unitsofmeasure.org"
NOT_IN_EFFECT = {"entered-in-error", "cancelled"}


def context_resources(value: Any) -> list[dict]:
    """Resources of a context field holding a Bundle (its entries) or a bare array of resources."""
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle":
        items = [e.get("resource") for e in value.get("entry") or () if isinstance(e, Mapping)]
    elif isinstance(value, list):
        items = value
    else:
        return []
    return [r for r in items if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]


def _full_urls(value: Any) -> dict[str, dict]:
    out = {}
    if isinstance(value, Mapping):
        for e in value.get("entry") or ():
            if isinstance(e, Mapping) and isinstance(e.get("fullUrl"), str) and isinstance(e.get("resource"), dict):
                out[e["fullUrl"]] = e["resource"]
    return out


@dataclass(frozen=True, slots=True)
class MedicationOrder:
    """One MedicationRequest of the ordering session, with its drug resolved."""

    resource: Mapping[str, Any]
    concept: Mapping[str, Any] | None
    selected: bool  # judged by this hook (a selection for order-select; every order for order-sign)
    medication: Mapping[str, Any] | None = None  # the referenced Medication, when there is one (form, ingredient strength)

    @classmethod
    def of(cls, r: Mapping, pool: Sequence[dict] = (), full_urls: Mapping[str, dict] | None = None,
           selected: bool = False) -> "MedicationOrder":
        return cls(r, R.medication_concept(r, pool, full_urls), selected, R.medication_resource(r, pool, full_urls))

    @property
    def id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def reference(self) -> str:
        return f"MedicationRequest/{self.id}"

    @property
    def status(self) -> str:
        return str(self.resource.get("status", ""))

    @property
    def text(self) -> str:
        """What the clinician ordered, as text (the concept's text or first display, else the product's RxNorm name)."""
        if not self.concept:
            return "medication"
        return (self.concept.get("text") or next((d for _, _, d in R.codings(self.concept) if d), "")
                or next((p.name for p in self.products), "")
                or next((f"RxNorm {c}" for _, c, _ in R.codings(self.concept)), "medication"))

    @property
    def products(self) -> list[Product]:
        """The RxNorm products (SCD/SBD) the drug's codes name, when `rxnorm_products` knows them."""
        return [p for s, c, _ in R.codings(self.concept) if s == RXNORM and (p := product(c)) is not None]

    @property
    def description(self) -> str:
        """Everything that names the drug: the concept's text and displays, and the names of its known products."""
        return " ".join(filter(None, [R.concept_text(self.concept), *(p.name for p in self.products)]))

    def matches(self, codes: Iterable[str] | CodeSet = (), ingredients: Iterable[str] = ()) -> bool:
        """True when the drug's code is in `codes` ("system|code") or its description names an ingredient.

        Orders usually carry a clinical-drug (SCD) code, not the ingredient's RxCUI: the name is matched too,
        including the name of a product code known to `rxnorm_products` when the order carries no text.
        """
        return bool(self.concept) and (matches_codes(self.concept, codes) or mentions({"text": self.description}, ingredients))

    @property
    def route(self) -> str:
        """`systemic`, `local` (topical, transdermal, ophthalmic, otic: little reaches the blood) or `unknown`.

        The route of the first dosage decides when it is stated; otherwise the product's dose form (in the
        RxNorm name, e.g. "Topical Gel", "Transdermal System", or a Medication's `form`)."""
        dosage = next((d for d in self.resource.get("dosageInstruction") or () if isinstance(d, Mapping)), {})
        route = dosage.get("route")
        if isinstance(route, Mapping) and (R.concept_text(route) or any(True for _ in R.codings(route))):
            codes = {c for s, c, _ in R.codings(route) if s == SNOMED}
            if codes & LOCAL_ROUTES or _LOCAL_WORDS.search(R.concept_text(route)):
                return "local"
            return "systemic"
        form = " ".join([self.description, R.concept_text((self.medication or {}).get("form"))])
        if _LOCAL_WORDS.search(form) or (_LOCAL_FORMS.search(form) and not _SYSTEMIC_WORDS.search(form)):
            return "local"
        return "unknown" if not form.strip() else "systemic"


# SNOMED CT route of administration: topical (6064005), transdermal (45890007), ophthalmic (54485002), otic
# (10547007), cutaneous (448598008). A drug given by these routes acts where it is put; NSAID rules written for
# systemic exposure do not apply (KDIGO 2024 CKD guideline, chapter 4: topical NSAIDs as the alternative).
SNOMED = "http://snomed.info/sct"
LOCAL_ROUTES = {"6064005", "45890007", "54485002", "10547007", "448598008"}
_LOCAL_WORDS = re.compile(r"\b(topical|transdermal|cutaneous|ophthalmic|otic|to the skin|on the skin)\b", re.I)
# RxNorm dose forms applied to the skin; a gel or spray taken another way names that way ("Oral Gel", "Nasal Spray").
_LOCAL_FORMS = re.compile(r"\b(gel|cream|ointment|lotion|patch|foam|transdermal system)\b", re.I)
_SYSTEMIC_WORDS = re.compile(r"\b(oral|nasal|rectal|injectable|injection|intravenous|buccal|sublingual)\b", re.I)


def _for_another_patient(resource: Mapping, patient_id: Any) -> bool:
    """True when the order's subject names a Patient other than the hook's `patientId` (an EHR error: the
    order would be judged against the wrong patient's data). A subject the reference cannot tell (urn:uuid,
    none) is kept."""
    ref = (resource.get("subject") or {}).get("reference") if isinstance(resource.get("subject"), Mapping) else None
    if not isinstance(ref, str) or not isinstance(patient_id, str) or "Patient/" not in ref:
        return False
    return ref.split("/_history")[0].rstrip("/").rsplit("Patient/", 1)[1] != patient_id


def medication_orders(context: Mapping[str, Any], extra_resources: Sequence[dict] = ()) -> list[MedicationOrder]:
    """Every MedicationRequest of `draftOrders` that is being put into effect for the hook's patient, with
    `selected` set. An order whose subject is another patient is left out.

    With `selections` in the context (order-select) only those are selected; otherwise all are.
    """
    bundle = context.get("draftOrders")
    items = context_resources(bundle)
    urls = _full_urls(bundle)
    pool = list(items) + list(extra_resources)
    selections = context.get("selections")
    wanted = set(selections) if isinstance(selections, list) else None
    by_url = {id(r): u for u, r in urls.items()}
    out = []
    for r in items:
        if r.get("resourceType") != "MedicationRequest" or r.get("status") in NOT_IN_EFFECT \
                or _for_another_patient(r, context.get("patientId")):
            continue
        ref = f"MedicationRequest/{r.get('id', '')}"
        url = by_url.get(id(r), "")
        selected = wanted is None or ref in wanted or (url and (url in wanted or any(url.endswith("/" + s) for s in wanted)))
        out.append(MedicationOrder.of(r, pool, urls, bool(selected)))
    return out


# ---- doses ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Dose:
    """A dose as a label states it: milligrams per administration and administrations per day."""

    mg: float | None
    per_day: float | None
    problem: str | None = field(default=None, compare=False)  # why the dose could not be read, in a clinician's words

    @property
    def known(self) -> bool:
        return self.mg is not None and self.per_day is not None

    def same_as(self, other: "Dose") -> bool:
        if self.mg is None or self.per_day is None or other.mg is None or other.per_day is None:
            return False  # a dose not read is never the same as another
        return abs(self.mg - other.mg) < 1e-6 and abs(self.per_day - other.per_day) < 1e-6


_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*MG\b(?!\s*/)", re.IGNORECASE)
_MASS_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001}
# One unit of the product. UCUM §4.2.3: a unit that is only an annotation ({pill}, {tbl}, {capsule}, {puff})
# is the unity 1 with a label; "1" is unity itself; the words are what EHRs write for tablets and capsules.
_ANNOTATION_ONLY = re.compile(r"^\{[^{}]*\}$")
_COUNT_WORDS = {"1", "tab", "tabs", "tablet", "tablets", "tbl", "cap", "caps", "capsule", "capsules", "pill", "pills", "each", "ea"}
_TIMING_CODES = {"QD": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "AM": 1.0, "PM": 1.0, "QOD": 0.5, "Q12H": 2.0, "Q8H": 3.0,
                 "Q6H": 4.0, "Q24H": 1.0}
_TEXT_FREQUENCIES = (
    (re.compile(r"\b(twice (a |per )?da(il)?y|b\.?i\.?d\.?|every 12 ?h(ours?)?|q12h)\b", re.I), 2.0),
    (re.compile(r"\b(three times (a |per )?da(il)?y|t\.?i\.?d\.?|every 8 ?h(ours?)?|q8h)\b", re.I), 3.0),
    (re.compile(r"\b(four times (a |per )?da(il)?y|q\.?i\.?d\.?|every 6 ?h(ours?)?|q6h)\b", re.I), 4.0),
    (re.compile(r"\b(once (a |per )?da(il)?y|daily|q\.?d\.?|every 24 ?h(ours?)?|q24h|nightly|at bedtime|every (morning|evening))\b", re.I), 1.0),
)


def is_unit_of_product(unit: str) -> bool:
    """True for a dose unit that counts units of the product (tablets, capsules, pills), not a mass."""
    return bool(_ANNOTATION_ONLY.match(unit)) or unit.lower() in _COUNT_WORDS


def strength_mg(concept: Mapping | None) -> float | None:
    """The single strength in mg named by a product's text (e.g. 'apixaban 5 MG Oral Tablet' → 5)."""
    found = {float(m) for m in _STRENGTH.findall(R.concept_text(concept))} if concept else set()
    return found.pop() if len(found) == 1 else None


def unit_strength_mg(order: MedicationOrder) -> float | None:
    """Milligrams in one unit (tablet, capsule) of the ordered product: the Medication's single ingredient
    strength (FHIR Ratio, mg per 1 unit), else the one strength its RxNorm product codes and names agree on.
    None when they are absent or disagree (a display saying 20 MG for a 10 MG code is not guessed at)."""
    ingredients = [i for i in (order.medication or {}).get("ingredient") or () if isinstance(i, Mapping)]
    if len(ingredients) == 1 and isinstance(ingredients[0].get("strength"), Mapping):
        num, den = ingredients[0]["strength"].get("numerator") or {}, ingredients[0]["strength"].get("denominator") or {}
        unit = str(num.get("code") or num.get("unit") or "").strip().lower()
        den_unit = str(den.get("code") or den.get("unit") or "1").strip()
        if isinstance(num.get("value"), (int, float)) and unit in _MASS_MG and is_unit_of_product(den_unit) \
                and isinstance(den.get("value", 1), (int, float)) and den.get("value", 1) > 0:
            return float(num["value"]) * _MASS_MG[unit] / float(den.get("value", 1))
    return strength_mg({"text": order.description})


def _per_day(dosage: Mapping) -> float | None:
    timing = R.element(dosage.get("timing"))
    repeat = R.element(timing.get("repeat"))
    if repeat.get("period") or repeat.get("frequency"):
        freq, period = repeat.get("frequency") or 1, repeat.get("period") or 1
        days = {"d": 1.0, "h": 1 / 24, "wk": 7.0, "min": 1 / 1440}.get(repeat.get("periodUnit", "d"))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (freq, period))
        if days and numbers and period > 0 and freq > 0:
            return freq / (period * days)
        return None  # a timing that is not a number: not guessed from the text either
    for _, code, _ in R.codings(timing.get("code")):
        if code.upper() in _TIMING_CODES:
            return _TIMING_CODES[code.upper()]
    text = str(dosage.get("text") or "")
    for pattern, per_day in _TEXT_FREQUENCIES:
        if pattern.search(text):
            return per_day
    return None


def _mg(dosage: Mapping, order: MedicationOrder) -> tuple[float | None, str | None]:
    """(mg per administration, None) or (None, why it could not be read)."""
    rates = dosage.get("doseAndRate") or ()
    quantity = next((d.get("doseQuantity") for d in rates if isinstance(d, Mapping) and isinstance(d.get("doseQuantity"), Mapping)),
                    None)
    quantity = quantity or (dosage.get("doseQuantity") if isinstance(dosage.get("doseQuantity"), Mapping) else None)  # STU3 shape
    if quantity:
        value = quantity.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None, "the dose quantity has no number"
        unit = str(quantity.get("code") or quantity.get("unit") or "").strip()
        if unit.lower() in _MASS_MG:
            return float(value) * _MASS_MG[unit.lower()], None
        if is_unit_of_product(unit):
            strength = unit_strength_mg(order)
            if strength is None:
                return None, f"the strength of one unit of '{order.text}' is not known"
            return float(value) * strength, None
        return None, f"the dose unit '{unit or '(none)'}' is neither a mass nor a number of tablets or capsules"
    match = re.search(r"(\d+(?:\.\d+)?)\s*mg\b", str(dosage.get("text") or ""), re.I)
    if match:
        return float(match.group(1)), None
    return None, "the order has no dose quantity and no dose in mg in its instructions"


def ordered_dose(order: MedicationOrder) -> Dose:
    """The dose of the first dosage instruction, from structured fields first, then its text; when it
    cannot be read, `problem` says why (the card shows it: a dose is never silently skipped)."""
    dosages = [d for d in order.resource.get("dosageInstruction") or () if isinstance(d, Mapping)]
    if not dosages:
        return Dose(None, None, "the order has no dosage instruction")
    mg, problem = _mg(dosages[0], order)
    per_day = _per_day(dosages[0])
    problems = [problem] if problem else []
    if per_day is None:
        problems.append("how often it is taken is not stated")
    return Dose(mg, per_day, "; ".join(problems) or None)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def adjusted_order(order: MedicationOrder, *, mg: float, per_day: float, text: str, ingredient: str,
                   ingredient_code: str, form: str = "", product: str | None = None) -> dict:
    """The COMPLETE MedicationRequest with the new dose (ACT-1: an update carries the whole resource).

    The drug coding is kept when the ordered product already has this strength; otherwise it becomes
    the ingredient (RxNorm IN) with the product written in `text`, so that no clinical-drug code is
    invented: the EHR's pharmacy system picks the product. Route and method of the first dosage are kept.
    """
    resource = copy.deepcopy(dict(order.resource))
    first = next((d for d in resource.get("dosageInstruction") or () if isinstance(d, dict)), {})
    dosage: dict[str, Any] = {k: first[k] for k in ("sequence", "route", "method", "site") if k in first}
    dosage.update({
        "text": text,
        "timing": {"repeat": {"frequency": _number(per_day), "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": _number(mg), "unit": "mg", "system": UCUM, "code": "mg"}}],
    })
    resource["dosageInstruction"] = [dosage]
    if unit_strength_mg(order) != mg:
        system, _, code = ingredient_code.partition("|")
        resource["medicationCodeableConcept"] = {"coding": [{"system": system, "code": code, "display": ingredient}],
                                                 "text": f"{product or ingredient} {_number(mg)} MG {form}".strip()}
        ref = (resource.pop("medicationReference", None) or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            # dom-3: a contained resource must stay referenced; the replaced Medication goes.
            resource["contained"] = [c for c in resource.get("contained") or () if not (isinstance(c, dict) and c.get("id") == ref[1:])]
            if not resource["contained"]:
                del resource["contained"]
    return resource

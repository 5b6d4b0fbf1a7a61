"""The RxNorm products the order services know, by code: the clinical (SCD) and branded (SBD) drugs an EHR
puts in an order instead of the ingredient (the CDS Hooks Sandbox sends rivaroxaban 1114198, metformin 861007).

Only code → name is kept, exactly as RxNorm names the product. Ingredient, strength and dose form are read
from the name, which RxNorm builds from them: `[<n> HR] <ingredient> <strength> <unit> <dose form>` for an
SCD, the same followed by `[<Brand>]` for an SBD (RxNorm Technical Documentation, "Normalized names"). A
name with " / " has several ingredients and no single strength. A product code not in this table still
matches by the ingredient name its display or text carries.

Sources (no RxNav access here: every row comes from a published list, none is typed from memory alone):
- anticoagulants (dabigatran, rivaroxaban, apixaban, edoxaban, warfarin): VSAC value set "Anticoagulants for
  All Indications", OID 2.16.840.1.113762.1.4.1248.22, expansion "eCQM Update 2025-05-08" (its RxNorm codes and
  names);
- metformin and ibuprofen: codes and names found identically in two independent public code listings
  (Synthea's diabetes module for 860975); not checked against an RxNorm release file — a wrong row would show
  as a product whose name disagrees with what the order displays, and `strength_mg` then refuses to guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

PRODUCTS: dict[str, str] = {
    # VSAC 2.16.840.1.113762.1.4.1248.22 (eCQM Update 2025-05-08)
    "1037045": "dabigatran etexilate 150 MG Oral Capsule",
    "1037179": "dabigatran etexilate 75 MG Oral Capsule",
    "1723476": "dabigatran etexilate 110 MG Oral Capsule",
    "1114198": "rivaroxaban 10 MG Oral Tablet",
    "1232082": "rivaroxaban 15 MG Oral Tablet",
    "1232086": "rivaroxaban 20 MG Oral Tablet",
    "1364435": "apixaban 2.5 MG Oral Tablet",
    "1364445": "apixaban 5 MG Oral Tablet",
    "1599543": "edoxaban 15 MG Oral Tablet",
    "1599551": "edoxaban 30 MG Oral Tablet",
    "1599555": "edoxaban 60 MG Oral Tablet",
    "855288": "warfarin sodium 1 MG Oral Tablet",
    "855296": "warfarin sodium 10 MG Oral Tablet",
    "855302": "warfarin sodium 2 MG Oral Tablet",
    "855312": "warfarin sodium 2.5 MG Oral Tablet",
    "855318": "warfarin sodium 3 MG Oral Tablet",
    "855324": "warfarin sodium 4 MG Oral Tablet",
    "855332": "warfarin sodium 5 MG Oral Tablet",
    "855338": "warfarin sodium 6 MG Oral Tablet",
    "855344": "warfarin sodium 7.5 MG Oral Tablet",
    # two public listings each
    "861007": "metformin hydrochloride 500 MG Oral Tablet",
    "861010": "metformin hydrochloride 850 MG Oral Tablet",
    "861004": "metformin hydrochloride 1000 MG Oral Tablet",
    "860975": "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    "860981": "24 HR metformin hydrochloride 750 MG Extended Release Oral Tablet",
    "197806": "ibuprofen 600 MG Oral Tablet",
    # The statin drafts of ascvd-10y-risk (2018 AHA/ACC Table 3 intensities). 617311: several HL7 FHIR implementation-
    # guide examples code "atorvastatin 40 MG Oral Tablet" so; 617310: an Epic FHIR MedicationStatement example codes
    # "atorvastatin 20 MG tablet" so. Neither is checked against an RxNorm release file (no RxNav access here): a site
    # checks both against its formulary before go-live.
    "617310": "atorvastatin 20 MG Oral Tablet",
    "617311": "atorvastatin 40 MG Oral Tablet",
}

_NAME = re.compile(r"^(?:(?:[A-Za-z]+ )?\d+ HR )?(?P<ingredient>[A-Za-z][A-Za-z ,\-]*?) (?P<strength>\d+(?:\.\d+)?) MG "
                   r"(?P<form>[A-Za-z][A-Za-z ]*?)(?: \[(?P<brand>[^\]]+)\])?$")


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str
    ingredient: str  # lower case, salt included ("metformin hydrochloride")
    mg: float        # strength of one unit (tablet, capsule)
    form: str        # RxNorm dose form ("Oral Tablet", "Extended Release Oral Tablet")
    brand: str | None = None  # an SBD's brand ("Lipitor"); None for a clinical drug (SCD)


def parse_name(name: str) -> tuple[str, float, str, str | None] | None:
    """(ingredient, mg per unit, dose form, brand or None) of a single-ingredient RxNorm SCD/SBD name in MG; None otherwise."""
    if " / " in name:
        return None
    m = _NAME.match(name.strip())
    if not m:
        return None
    return m.group("ingredient").strip().lower(), float(m.group("strength")), m.group("form").strip(), m.group("brand")


def product(code: str) -> Product | None:
    """The product an RxNorm code names, when this table knows it."""
    name = PRODUCTS.get(code)
    parsed = parse_name(name) if name else None
    return Product(code, name, *parsed) if name and parsed else None

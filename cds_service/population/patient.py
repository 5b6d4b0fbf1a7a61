"""One patient of a population, scored exactly as a `patient-view` hook call would score them.

Plain Python, no Spark: the Spark job calls `score_patient` once per patient on the executors, and
the unit tests call it directly. The hook's time becomes the index date (`as_of`); the prefetch is
each service template answered from the patient's own resources, as the EHR simulator does
(`ehr.hook_calls.local_prefetch`) over the record as it stood at the index date
(`outcomes.as_known_at`); then `pipeline.invoke` runs the same feature extraction, the same
population check, the same model and the same card builder as `POST /cds-services/{id}`.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from types import MappingProxyType
from typing import Any, Iterable

from cds_service.applicability import Applicability
from cds_service.builders.base import display_value
from cds_service.ehr.contexts import build_context, encounter_for
from cds_service.ehr.hook_calls import local_prefetch
from cds_service.ehr.patients import Patient
from cds_service.errors import CdsError
from cds_service.hook_request import HookRequest
from cds_service.pipeline import BoundService, invoke
from cds_service.population.outcomes import as_known_at
from fhir_adapters.features import US_CORE_ETHNICITY, US_CORE_RACE
from hooks.catalog import HOOKS, INDICATORS

# Hooks whose context a population job can fill from the patient's record: the chart opened, or the
# discharge from the patient's latest stay begun by the index date. Orders and appointments being acted
# on have no population equivalent.
SUPPORTED_HOOKS = ("patient-view", "encounter-discharge")
# The user a population job acts as: the hook requires a userId (HOOK-PV-1); it only ever ends up as
# the requester of a suggested draft order, which a population row does not carry.
POPULATION_USER = "Practitioner/population-job"
_NAMESPACE = uuid.UUID("8d0f3c55-6f0e-4c9e-9a43-0d6f1b4e7a21")

# OMB categories of the US Core race and ethnicity extensions (subgroups of the validation report).
OMB_RACE = {"1002-5": "American Indian or Alaska Native", "2028-9": "Asian", "2054-5": "Black or African American",
            "2076-8": "Native Hawaiian or Other Pacific Islander", "2106-3": "White"}
OMB_ETHNICITY = {"2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino"}
AGE_BANDS = ((0, 18, "<18"), (18, 40, "18-39"), (40, 50, "40-49"), (50, 60, "50-59"), (60, 70, "60-69"),
             (70, 80, "70-79"), (80, 200, "80+"))
NOT_RECORDED = "not recorded"


class UnsupportedService(ValueError):
    pass


def check_supported(bound: BoundService) -> None:
    """Raise `UnsupportedService` for a service whose hook needs more context than a patient."""
    if bound.definition.hook not in SUPPORTED_HOOKS:
        raise UnsupportedService(f"service '{bound.definition.id}' answers '{bound.definition.hook}'; population jobs "
                                 f"run services on {', '.join(SUPPORTED_HOOKS)} (their context is the patient alone)")


def hook_context(hook: str, patient_id: str, resources: Iterable[dict], as_of: datetime) -> dict | None:
    """The context an EHR would send for this patient at `as_of` (`ehr.contexts`, as the simulator and
    `cds-service fire` build it): for encounter-discharge the patient's inpatient stay, else the latest
    encounter, in `resources` (the record as known at `as_of`). None when the hook needs an encounter
    and the patient has none: no such hook would fire."""
    patient = Patient(patient_id, list(resources), POPULATION_USER)
    if "encounterId" in HOOKS[hook].required and encounter_for(patient, hook) is None:
        return None
    return build_context(hook, patient, now=as_of)


def score_patient(bound: BoundService, patient_id: str, resources: list[dict], as_of: datetime) -> dict[str, Any]:
    """One output row: score, band, applicability, every feature with provenance, demographics.

    Never raises for one patient's data: a refusal (a required prefetch key that cannot be answered,
    a model refusing its input) or an unexpected error is recorded in `error` (its type and the
    service's message, which carry no patient data) and the job goes on.
    """
    service = bound.definition
    resources = as_known_at(resources, as_of)
    row: dict[str, Any] = {"patient_id": patient_id, "service_id": service.id, "as_of": as_of,
                           **demographics(_patient(resources, patient_id), as_of),
                           "model_id": bound.model.info.id if bound.model else None,
                           "model_version": bound.model.info.version if bound.model else None, "notes": []}
    context = hook_context(service.hook, patient_id, resources, as_of)
    if context is None:
        return {**row, **_empty(), "error": "no encounter by the index date: nothing to discharge"}
    prefetch, left_out = local_prefetch({k: spec.query for k, spec in service.prefetch.items()}, context, resources)
    row["notes"] = [f"prefetch '{k}' left out: {why}" for k, why in left_out.items()]
    hook_instance = str(uuid.uuid5(_NAMESPACE, f"{service.id}|{patient_id}|{as_of.isoformat()}"))
    request = HookRequest(service.hook, hook_instance, MappingProxyType(context), MappingProxyType(prefetch))
    try:
        response, ctx = invoke(bound, request, now=as_of)
    except CdsError as exc:
        return {**row, **_empty(), "error": f"{type(exc).__name__}: {exc.message}"}
    except Exception as exc:  # noqa: BLE001 — one patient's odd data must not stop a population job
        return {**row, **_empty(), "error": f"{type(exc).__name__} (internal error)"}
    applicability = ctx.applicability
    card = max(response.cards, key=lambda c: INDICATORS.index(c.indicator), default=None)
    # The score the cards report: a decision flow that set the model's result aside (ascvd-10y-risk with a
    # result in the diabetes range and no diagnosis: never a risk computed as if diabetes were absent) gives none.
    reported = [c for c in response.cards if "score" in ((c.extension or {}).get("org.cdsml.prediction") or {})]
    p = ctx.prediction if (reported or not response.cards) else None
    required = set(ctx.model.info.required) if ctx.model else set()
    required |= {c.feature for c in service.population}
    return {
        **row,
        "applicability": applicability.model_status,  # a score is due (the model's own range included)
        "applicability_reasons": reasons(applicability),
        "score": p.score if p else None,
        "indicator": card.indicator if card else None,
        "summary": card.summary if card else None,
        "missing": [f.name for f in ctx.features.features if f.missing and f.name in required],
        "top_factors": [{"name": n, "label": ctx.features[n].label, "value": display_value(ctx, ctx.features[n]),
                         "contribution": v} for n, v in (p.top_raising(service.cards.top_factors) if p else [])],
        "features": [{"name": f.name, "label": f.label, "value": f.value, "unit": f.unit, "date": f.date,
                      "sources": [e.reference for e in f.evidence], "note": f.note, "imputed": f.imputed,
                      "invalid": f.invalid}
                     for f in ctx.features.features],
        "notes": row["notes"] + [f"prefetch '{k}' unavailable: {why}" for k, why in ctx.unavailable.items()],
        "error": None,
    }


def reasons(applicability: Applicability) -> list[str]:
    """Why the service does not apply, or what could not be checked, one sentence per criterion."""
    out = []
    for f in (*applicability.failed, *applicability.model_failed):
        value = f"{f.feature.value:g}" if f.feature.value is not None else "missing"
        out.append(f"outside '{f.criterion.label or f.criterion.feature}' ({f.feature.label} = {value})")
    for f in (*applicability.unknown, *applicability.model_unknown):
        why = f"not available ({', '.join(f.unavailable_keys)})" if f.unavailable_keys else (f.feature.note or "not recorded")
        out.append(f"'{f.criterion.label or f.criterion.feature}' not checked ({f.feature.label}: {why})")
    return out


def _empty() -> dict[str, Any]:
    return {"applicability": None, "applicability_reasons": [], "score": None, "indicator": None, "summary": None,
            "missing": [], "top_factors": [], "features": []}


def _patient(resources: Iterable[dict], patient_id: str) -> dict | None:
    return next((r for r in resources if r.get("resourceType") == "Patient" and r.get("id") == patient_id), None)


def demographics(patient: dict | None, as_of: datetime) -> dict[str, str]:
    """Sex, OMB race and ethnicity (US Core extensions) and age band at `as_of`: the report's subgroups."""
    if patient is None:
        return {"sex": NOT_RECORDED, "race": NOT_RECORDED, "ethnicity": NOT_RECORDED, "age_band": NOT_RECORDED}
    races = _omb(patient, US_CORE_RACE, OMB_RACE)
    ethnicities = _omb(patient, US_CORE_ETHNICITY, OMB_ETHNICITY)
    return {
        "sex": patient.get("gender") or NOT_RECORDED,
        "race": races[0] if len(races) == 1 else "More than one race" if races else NOT_RECORDED,
        "ethnicity": ethnicities[0] if ethnicities else NOT_RECORDED,
        "age_band": _age_band(patient.get("birthDate"), as_of),
    }


def _omb(patient: dict, url: str, names: dict[str, str]) -> list[str]:
    found = []
    for ext in patient.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            for sub in ext.get("extension") or ():
                coding = sub.get("valueCoding") if isinstance(sub, dict) and sub.get("url") == "ombCategory" else None
                if isinstance(coding, dict) and coding.get("code") in names and names[coding["code"]] not in found:
                    found.append(names[coding["code"]])
    return found


def _age_band(birth_date: Any, as_of: datetime) -> str:
    try:
        born = datetime.fromisoformat(str(birth_date)[:10]).date()
    except ValueError:
        return NOT_RECORDED
    on = as_of.date()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return next((label for lo, hi, label in AGE_BANDS if lo <= years < hi), NOT_RECORDED)

"""Answer a rendered prefetch query from one patient's resources, as the EHR would (PREFETCH-2).

The simulator has no FHIR server, so it fills each service's prefetch itself: a read
(`Patient/123`) gives the resource or `null`; a search (`Observation?patient=123&code=…`) gives a
searchset Bundle. Only the search parameters listed in `_FILTERS` are understood; any other
raises `UnsupportedQuery`, and the simulator then leaves that key out rather than send a result
wider than the query asked for.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

_IGNORED = {"_include", "_revinclude", "_elements", "_format"}  # our resources are self-contained


class UnsupportedQuery(ValueError):
    pass


def evaluate(query: str, resources: Iterable[dict]) -> dict | None:
    """The prefetch value for `query`: a resource, None (a read that found nothing), or a Bundle."""
    resources = list(resources)
    path, _, search = query.partition("?")
    parts = path.strip("/").split("/")
    if not search and len(parts) == 2:
        rtype, rid = parts
        return next((r for r in resources if r.get("resourceType") == rtype and r.get("id") == rid), None)
    if len(parts) != 1 or not parts[0]:
        raise UnsupportedQuery(f"not a read or a type-level search: {path}")
    rtype = parts[0]
    matches = [r for r in resources if r.get("resourceType") == rtype]
    sort, count = None, None
    for name, value in parse_qsl(search, keep_blank_values=True):
        if name in _IGNORED:
            continue
        if name == "_sort":
            sort = value
        elif name == "_count":
            try:
                count = int(value)
            except ValueError:
                raise UnsupportedQuery(f"_count={value}") from None
        elif name in _FILTERS:
            test = _FILTERS[name]
            matches = [r for r in matches if test(r, value)]
        else:
            raise UnsupportedQuery(f"search parameter '{name}' is not supported by the simulator")
    if sort:
        for key in reversed(sort.split(",")):
            desc = key.startswith("-")
            if key.lstrip("-") not in ("date", "authoredon", "onset-date", "_lastUpdated"):
                raise UnsupportedQuery(f"_sort={sort}")
            matches.sort(key=lambda r: _date_of(r) or "", reverse=desc)
    if count is not None:
        matches = matches[:count]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
    if matches:  # FHIR JSON has no empty arrays
        bundle["entry"] = [{"fullUrl": f"{r['resourceType']}/{r.get('id')}", "resource": r, "search": {"mode": "match"}}
                           for r in matches]
    return bundle


# ---- search parameters ------------------------------------------------------------------------


def _ref_matches(reference: Any, value: str, default_type: str = "Patient") -> bool:
    if not isinstance(reference, dict):
        return False
    ref = str(reference.get("reference", ""))
    wanted = value if "/" in value else f"{default_type}/{value}"
    return ref == wanted or ref.endswith("/" + wanted)


def _patient(r: dict, value: str) -> bool:
    if r.get("resourceType") == "Patient":
        return r.get("id") == value.removeprefix("Patient/")
    return any(_ref_matches(r.get(field), value) for field in ("subject", "patient"))


def _codings(concept: Any) -> list[dict]:
    if isinstance(concept, list):
        return [c for item in concept for c in _codings(item)]
    return list((concept or {}).get("coding") or []) if isinstance(concept, dict) else []


def _token(codings: list[dict], value: str) -> bool:
    """A token search: comma-separated `system|code`, `code` or `system|` alternatives."""
    for alt in value.split(","):
        system, sep, code = alt.rpartition("|")
        for c in codings:
            if sep and system and c.get("system") != system:
                continue
            if not code or c.get("code") == code:
                return True
    return False


def _primary_code(r: dict) -> Any:
    if r.get("resourceType") in ("MedicationRequest", "MedicationStatement", "MedicationAdministration"):
        return r.get("medicationCodeableConcept")
    return r.get("code")


def _plain(field: str) -> Callable[[dict, str], bool]:
    return lambda r, value: str(r.get(field, "")) in value.split(",")


def _status_concept(field: str) -> Callable[[dict, str], bool]:
    return lambda r, value: _token(_codings(r.get(field)), value)


def _date_of(r: dict) -> str | None:
    for field in ("effectiveDateTime", "issued", "authoredOn", "onsetDateTime", "recordedDate", "start", "date"):
        if r.get(field):
            return str(r[field])
    for field in ("effectivePeriod", "period"):
        if isinstance(r.get(field), dict) and r[field].get("start"):
            return str(r[field]["start"])
    return None


def _date(r: dict, value: str) -> bool:
    """`date=ge2024-01-01` etc.; compared on the ISO text, which orders correctly at equal precision."""
    when = _date_of(r)
    if when is None:
        return False
    prefix, stamp = (value[:2], value[2:]) if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le") else ("eq", value)
    when = when[: len(stamp)]
    return {"eq": when == stamp, "ne": when != stamp, "gt": when > stamp, "lt": when < stamp,
            "ge": when >= stamp, "le": when <= stamp}[prefix]


_FILTERS: dict[str, Callable[[dict, str], bool]] = {
    "patient": _patient,
    "subject": _patient,
    "_id": lambda r, value: r.get("id") in value.split(","),
    "code": lambda r, value: _token(_codings(_primary_code(r)), value),
    "category": lambda r, value: _token(_codings(r.get("category")), value),
    "status": _plain("status"),
    "intent": _plain("intent"),
    "clinical-status": _status_concept("clinicalStatus"),
    "verification-status": _status_concept("verificationStatus"),
    "class": lambda r, value: _token([r.get("class") or {}], value),
    "encounter": lambda r, value: _ref_matches(r.get("encounter"), value, "Encounter"),
    "date": _date,
    "authoredon": _date,
    "onset-date": _date,
}

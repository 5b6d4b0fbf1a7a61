"""Load and check the service files (`hooks/*.toml`) when the app starts (architecture 2.4, habit 10).

Any inconsistency stops start-up with a `ServiceFileError` naming the file, the line (when the field is
written in the file) and the field. Keys no table defines are refused first (`hooks.schema`), with the
known key a misspelt one was probably meant to be.
"""
from __future__ import annotations

import hashlib
import json
import re
import string
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Collection, Mapping

from fhir_adapters import rxnorm_products
from fhir_adapters.features import EXTRACTORS, KIND_CHECKS, FeatureDef
from fhir_adapters.observation_sets import ObservationSetDef

from .alert_policy import parse_alerts
from .catalog import HOOKS, INDICATORS, PREFETCH_TOKEN, SUMMARY_MAX, USER_TOKENS
from .definitions import (
    ROUTES,
    CardPolicy,
    CardRule,
    Criterion,
    Dose,
    OrderDef,
    PrefetchSpec,
    ServiceDefinition,
    SuggestionDef,
)
from .schema import FEATURE_COMMON, RETIRED, unknown_keys
from .toml_text import Path as KeyPath
from .toml_text import did_you_mean, key_lines

_ID = re.compile(r"^[a-z0-9][a-z0-9\-]{1,62}$")
_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# The most rules a risk card may list as the factors raising the risk most.
MAX_TOP_FACTORS = 20
# Placeholders a risk-card summary may use, with the longest text each can produce.
SUMMARY_FIELDS = {"risk": "100.0%"}


class ServiceFileError(ValueError):
    """`<file>:<line>: <field>: <message>`; the line when the field (or the table holding it) is in the file."""

    def __init__(self, path: Path | str, field: str, message: str, line: int | None = None):
        where = f"{Path(path).name}:{line}" if line else Path(path).name
        super().__init__(f"{where}: {field}: {message}")
        self.path, self.field, self.message, self.line = str(path), field, message, line

    def at(self, line: int | None) -> "ServiceFileError":
        """This error with the line of its field (the builders and `check_summary` raise without one)."""
        return self if self.line or not line else ServiceFileError(self.path, self.field, self.message, line)


def unknown_key(path: Path | str, field: str, key: str, known: Collection[str]) -> ServiceFileError:
    """The error for a key no table defines: the known key it was probably meant to be, or where a retired key's
    concern lives now. The loader raises it for the tables of `schema`, a builder for its own `[data]` tables."""
    close = did_you_mean(key, known)
    hint = RETIRED.get(key) or (f"did you mean '{close}'?" if close else f"known here: {', '.join(sorted(known))}")
    return ServiceFileError(path, field, f"unknown key '{key}' ({hint})")


def check_keys(path: Path | str, field: str, table: Mapping[str, Any], known: Collection[str]) -> None:
    """A builder's check of one of its `[data]` tables: no key outside `known` (`field` names the table)."""
    for key in table:
        if key not in known:
            raise unknown_key(path, f"{field}.{key}", key, known)


# A builder checks its own service data; returns the feature names it reads (to detect unused ones).
BuilderCheck = Callable[[ServiceDefinition], set[str]]


# What a service file loads into: its definition, its model (or None) and its secondary models by ref.
LoadedService = tuple[ServiceDefinition, Any, Mapping[str, Any]]


def load_services(directory: Path | str, *, load_model: Callable[[str], Any], builders: Mapping[str, BuilderCheck],
                  card_kinds: Mapping[str, Collection[str]] | None = None) -> list[LoadedService]:
    """Parse every `*.toml` in `directory`; return (definition, model or None, secondary models), sorted by file.
    `card_kinds`: the card kinds each builder can produce (`[alerts] silent_info` must name one of them)."""
    files = sorted(Path(directory).glob("*.toml"))
    loaded = [load_service(path, load_model=load_model, builders=builders, card_kinds=card_kinds) for path in files]
    seen: dict[tuple[str, str], str] = {}
    for service, _, _ in loaded:
        key = (service.id, service.hook)  # DISC-5: an id may repeat only with a different hook
        if key in seen:
            raise ServiceFileError(service.path, "id", f"'{service.id}' for '{service.hook}' is already declared in {seen[key]}")
        seen[key] = Path(service.path).name
    return loaded


def load_service(path: Path, *, load_model: Callable[[str], Any], builders: Mapping[str, BuilderCheck],
                 card_kinds: Mapping[str, Collection[str]] | None = None) -> LoadedService:
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ServiceFileError(path, "(file)", f"not valid TOML: {exc}") from None
    locate = _Locator(raw, text)
    try:
        return _load(path, raw, locate, load_model, builders, card_kinds)
    except ServiceFileError as exc:
        raise exc.at(locate.line(exc.field)) from None


def _load(path: Path, raw: dict, locate: "_Locator", load_model: Callable[[str], Any],
          builders: Mapping[str, BuilderCheck], card_kinds: Mapping[str, Collection[str]] | None) -> LoadedService:
    err = lambda field, msg: ServiceFileError(path, field, msg)  # noqa: E731
    for where, known in unknown_keys(raw):
        raise unknown_key(path, locate.field(where), str(where[-1]), known)

    sid = _str(raw, "id", err)
    if not _ID.match(sid):
        raise err("id", "must be lower-case letters, digits and '-'")
    if Path(path).stem != sid and not Path(path).stem.startswith(sid + "."):
        raise err("id", f"'{sid}' must match the file name '{Path(path).stem}'")
    hook = _str(raw, "hook", err)
    if hook not in HOOKS:
        raise err("hook", f"unknown hook '{hook}' (known: {', '.join(HOOKS)})")
    prefetch = _prefetch(raw.get("prefetch", {}), hook, err)
    sets = _observation_sets(raw.get("observation_sets", {}), prefetch, err)
    sources = set(prefetch) | {s.name for s in sets}
    features = tuple(parse_feature(i, f, sources, err) for i, f in enumerate(raw.get("features", [])))
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise err("features", "feature names must be unique")
    for f in features:
        if f.kind == "observation_set" and f.param("set") not in {s.name for s in sets}:
            raise err(f"features.{f.name}.set", f"'{f.param('set')}' is not declared under [observation_sets]")

    builder = raw.get("builder", "risk")
    if builder not in builders:
        raise err("builder", f"unknown builder '{builder}' (known: {', '.join(sorted(builders))})")
    model_ref, secondary_refs = _model_table(raw.get("model"), err)

    def load(ref: str, field: str):
        try:
            model = load_model(ref)
        except Exception as exc:  # missing file, bad manifest, unknown equation: all stop start-up
            raise err(field, f"cannot load '{ref}': {exc}") from None
        missing = [n for n in model.info.feature_names if n not in names]
        if missing:
            raise err("features", f"model '{ref}' needs features not declared here: {', '.join(missing)}")
        return model

    model = load(model_ref, "model.ref") if model_ref is not None else None
    if model is None and builder == "risk":
        raise err("model.ref", "a risk card needs a model")
    secondary = {ref: load(ref, f"model.secondary[{i}]") for i, ref in enumerate(secondary_refs)}

    suggestions = {k: _suggestion(k, v, names, err) for k, v in (raw.get("suggestions") or {}).items()}
    cards = _cards(path, raw.get("cards"), suggestions, builder, err)
    alerts = parse_alerts(raw.get("alerts"), override_reasons=cards.override_reasons, builder=builder, err=err,
                          kinds=card_kinds.get(builder) if card_kinds is not None else None)
    population = tuple(_criterion(path, i, c, features, cards.on_not_applicable, err) for i, c in enumerate(raw.get("population", [])))
    orders = {}
    for f in raw.get("features", []):
        if "order" in f:
            try:
                orders[f["name"]] = OrderDef.parse(f["order"], f"features.{f['name']}.order")
            except ValueError as exc:
                raise err(f"features.{f['name']}.order", str(exc)) from None

    service = ServiceDefinition(
        id=sid, hook=hook, title=_str(raw, "title", err), description=_str(raw, "description", err),
        prefetch=MappingProxyType(prefetch), features=features, model_ref=model_ref, secondary_refs=secondary_refs, builder=builder,
        population=population, cards=cards, suggestions=MappingProxyType(suggestions),
        usage_requirements=raw.get("usage_requirements"), path=str(path), orders=MappingProxyType(orders),
        data=MappingProxyType(raw.get("data", {})), observation_sets=sets, alerts=alerts,
    )
    try:
        used = builders[builder](service)
    except ServiceFileError:
        raise  # the builder named the field itself (its line is added by load_service)
    except ValueError as exc:
        raise err("data", str(exc)) from None
    for m in (model, *secondary.values()):
        used |= set(m.info.feature_names if m else ())
    used |= {c.feature for c in population} | {c.only_if for c in population if c.only_if} \
        | {s.unless for s in suggestions.values() if s.unless}
    unused = [n for n in names if n not in used]
    if unused:
        raise err("features", f"declared but never used: {', '.join(unused)}")
    return service, model, MappingProxyType(secondary)


# Keys that only word a card or a page; every other key of these tables decides a feature's value or
# whether the service applies to a patient.
_DISPLAY_KEYS = frozenset({"label", "default_note", "not_applicable", "instead", "unknown", "on_not_applicable"})


def data_definitions_sha256(path: Path | str) -> str:
    """sha256 of what in a service file decides the data its feature code produces: `[prefetch]`,
    `[observation_sets]`, `[[features]]` and `[[population]]`, without display text, as canonical JSON.
    A training table built by the service (`population dataset`) records it, so a model card names the
    definitions its data came from, and rewording a label does not make the model stale."""
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))

    def strip(table: Any) -> Any:
        return {k: v for k, v in table.items() if k not in _DISPLAY_KEYS} if isinstance(table, dict) else table

    data = {"prefetch": raw.get("prefetch", {}),
            "observation_sets": {k: strip(v) for k, v in (raw.get("observation_sets") or {}).items()},
            "features": [strip(f) for f in raw.get("features", [])],
            "population": [strip(c) for c in raw.get("population", [])]}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _model_table(raw: Any, err) -> tuple[str | None, tuple[str, ...]]:
    """`[model]`: `ref` (the primary model, run and timed by the pipeline) and `secondary` (models the
    card shows beside it, e.g. HAS-BLED beside CHA2DS2-VASc: also loaded here and run by the pipeline).
    A service whose cards rest on rules rather than on a primary model may declare `secondary` alone
    (the ADA Diabetes Risk Test on diabetes-detection's screening card)."""
    if raw is None:
        return None, ()
    if not isinstance(raw, dict):
        raise err("model", "must be a table: ref = \"equation:<id>\" | \"artifact:<id>/<version>\", optional secondary = [...]")
    ref = raw.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise err("model.ref", "must be a string such as \"equation:<id>\" or \"artifact:<id>/<version>\"")
    secondary = raw.get("secondary", [])
    if not isinstance(secondary, list) or not all(isinstance(r, str) and r for r in secondary):
        raise err("model.secondary", "must be a list of model refs, e.g. [\"equation:qsofa\"]")
    repeated = sorted({r for r in secondary if secondary.count(r) > 1})
    if repeated:
        raise err("model.secondary", f"lists {', '.join(repeated)} more than once")
    return ref, tuple(secondary)


def _str(raw: Mapping, key: str, err) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise err(key, "is required and must be a non-empty string")
    return value


def _prefetch(raw: Any, hook: str, err) -> dict[str, PrefetchSpec]:
    if not isinstance(raw, dict):
        raise err("prefetch", "must be a table of key = { query, on_error }")
    out = {}
    for key, spec in raw.items():
        if isinstance(spec, str):
            spec = {"query": spec}
        query = spec.get("query") if isinstance(spec, dict) else None
        if not isinstance(query, str) or not re.match(r"^[A-Z][A-Za-z]+([/?]|$)", query):
            raise err(f"prefetch.{key}.query", "must be a relative FHIR read or search, e.g. 'Patient/{{context.patientId}}'")
        for token in PREFETCH_TOKEN.findall(query):
            _check_token(token, hook, err, f"prefetch.{key}.query")
        on_error = spec.get("on_error", "fail")
        if on_error not in ("fail", "omit"):
            raise err(f"prefetch.{key}.on_error", "must be 'fail' or 'omit'")
        out[key] = PrefetchSpec(query, on_error)
    return out


def _check_token(token: str, hook: str, err, field: str) -> None:
    """TOKEN-1/2: `context.<top-level primitive field the hook marks as a token>` or a user token."""
    if token in USER_TOKENS:
        return
    name = token.removeprefix("context.")
    if not token.startswith("context.") or name not in HOOKS[hook].tokens:
        allowed = ", ".join([f"context.{t}" for t in HOOKS[hook].tokens] + list(USER_TOKENS))
        raise err(field, f"token '{{{{{token}}}}}' is not allowed for {hook} (allowed: {allowed})")


def _observation_sets(raw: Any, prefetch: Mapping, err) -> tuple[ObservationSetDef, ...]:
    """`[observation_sets.<name>]`: observations taken together, chosen from one prefetch key."""
    if not isinstance(raw, dict):
        raise err("observation_sets", "must be a table of [observation_sets.<name>] tables")
    out = []
    for name, spec in raw.items():
        where = f"observation_sets.{name}"
        if not re.match(r"^[a-z][a-z0-9_]*$", name) or name in prefetch:
            raise err(where, "needs a snake_case name that is not a prefetch key")
        if not isinstance(spec, dict):
            raise err(where, "must be a table: source, codes, tolerance_minutes, lookback_days, panel_codes")
        if spec.get("source") not in prefetch:
            raise err(f"{where}.source", f"'{spec.get('source')}' is not a prefetch key of this service")
        for key in ("codes", "panel_codes"):
            codes = spec.get(key, [])
            if not isinstance(codes, list) or (key == "codes" and not codes) or not all(isinstance(c, str) and "|" in c for c in codes):
                raise err(f"{where}.{key}", "must list codes written 'system|code'")
        numbers = {k: spec.get(k, d) for k, d in (("tolerance_minutes", 15), ("lookback_days", 1))}
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise err(f"{where}.{key}", "must be a positive number")
        out.append(ObservationSetDef(name, spec["source"], tuple(spec["codes"]), float(numbers["tolerance_minutes"]),
                                     float(numbers["lookback_days"]), tuple(spec.get("panel_codes", ()))))
    return tuple(out)


def parse_feature(i: int, raw: Any, sources: Collection[str], err) -> FeatureDef:
    """The `i`-th [[features]] table of a service file checked and made a FeatureDef: `sources` are the
    service's prefetch keys and observation sets; `err(field, message)` builds the ServiceFileError to raise
    (load_service's names the file)."""
    where = f"features[{i}]"
    if not isinstance(raw, dict):
        raise err(where, "must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise err(f"{where}.name", "must be a snake_case name")
    kind = raw.get("kind")
    if kind not in EXTRACTORS:
        raise err(f"features.{name}.kind", f"unknown feature kind '{kind}' (known: {', '.join(sorted(EXTRACTORS))})")
    source = raw.get("source", ())
    source = (source,) if isinstance(source, str) else tuple(source)
    for key in source:
        if key not in sources:
            raise err(f"features.{name}.source", f"'{key}' is not a prefetch key or observation set of this service")
    params = {k: v for k, v in raw.items() if k not in FEATURE_COMMON}  # hooks.schema refused any other key
    _check_window_params(params, f"features.{name}", err)
    for key in [k for k in params if k in ("codes", "answers") or k.endswith("_codes")]:
        for code in params.get(key, ()):
            if not isinstance(code, str) or "|" not in code:
                raise err(f"features.{name}.{key}", f"'{code}' must be written 'system|code'")
    problem = KIND_CHECKS[kind](params) if kind in KIND_CHECKS else None  # value checks a kind declares
    if problem:
        raise err(f"features.{name}", problem)
    default = raw.get("default")
    if default is not None and not isinstance(default, (int, float)):
        raise err(f"features.{name}.default", "must be a number")
    if "plausible" in params:
        params["plausible"] = tuple(params["plausible"])
    return FeatureDef(name=name, kind=kind, source=source, label=raw.get("label", name), unit=raw.get("unit"),
                      params=MappingProxyType(params), default=default, default_note=raw.get("default_note"))


# The longest texts a population summary's placeholders can produce (CARD-2 is checked with these).
POPULATION_FIELDS = {"value": "100.0 years", "detail": "x" * 40}
UNKNOWN_FIELDS = {"why": "not available to the service (no prefetch and no FHIR access)"}


def _criterion(path: Path, i: int, raw: Any, features: tuple[FeatureDef, ...], on_not_applicable: str, err) -> Criterion:
    """One `[[population]]` entry (see `Criterion`): a feature and its bounds, and how a card says the
    patient is outside (`not_applicable`, `instead`) or that it could not be checked (`if_unknown`, `unknown`)."""
    where = f"population[{i}]"
    if not isinstance(raw, dict):
        raise err(where, "must be a table")
    feature = raw.get("feature")
    if not isinstance(feature, str) or feature not in {f.name for f in features}:
        raise err(f"{where}.feature", f"'{feature}' is not a declared feature")
    bounds: dict[str, Any] = {k: raw[k] for k in ("min", "max", "equals") if raw.get(k) is not None}
    if not bounds or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds.values()):
        raise err(where, "needs min, max or equals, as numbers")
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise err(where, f"min {bounds['min']} is above max {bounds['max']}: nobody would be in the population")
    if raw.get("if_unknown", "stop") not in ("stop", "note"):
        raise err(f"{where}.if_unknown", "must be 'stop' (no score when it cannot be checked) or 'note' (score, and say so)")
    if raw.get("on_not_applicable", on_not_applicable) not in ("card", "silent"):
        raise err(f"{where}.on_not_applicable", "must be 'card' or 'silent'")
    if raw.get("scope", "service") == "service" and raw.get("on_not_applicable", on_not_applicable) == "card" \
            and not raw.get("not_applicable"):
        raise err(f"{where}.not_applicable", "is required when the criterion answers with a card (on_not_applicable = 'card')")
    if raw.get("not_applicable") is not None:
        check_summary(path, f"{where}.not_applicable", raw["not_applicable"], POPULATION_FIELDS)
    if raw.get("unknown") is not None:
        check_summary(path, f"{where}.unknown", raw["unknown"], UNKNOWN_FIELDS)
    if raw.get("instead") is not None and (not isinstance(raw["instead"], str) or not raw["instead"].strip()):
        raise err(f"{where}.instead", "must be a sentence saying what to use instead")
    only_if = raw.get("only_if")
    if only_if is not None and only_if not in {f.name for f in features}:
        raise err(f"{where}.only_if", f"'{only_if}' is not a declared feature")
    scope = raw.get("scope", "service")
    if scope not in ("service", "model"):
        raise err(f"{where}.scope", "must be 'service' (who the service is for) or 'model' (where the model's score is valid)")
    if scope == "model" and any(k in raw for k in ("not_applicable", "instead", "unknown", "on_not_applicable")):
        raise err(f"{where}.scope", "a 'model' criterion only stops the model: the builder words its card "
                                    "(not_applicable, instead, unknown and on_not_applicable are for 'service' criteria)")
    return Criterion(feature, raw.get("min"), raw.get("max"), raw.get("equals"), raw.get("label", feature),
                     raw.get("not_applicable"), raw.get("instead"), raw.get("if_unknown", "stop"), raw.get("unknown"),
                     raw.get("on_not_applicable"), only_if, scope)


def _suggestion(name: str, raw: Mapping, names: list[str], err) -> SuggestionDef:
    where = f"suggestions.{name}"
    rtype = raw.get("resource_type")
    if rtype not in ("ServiceRequest", "MedicationRequest"):
        raise err(f"{where}.resource_type", "must be ServiceRequest or MedicationRequest")
    code = raw.get("code", "")
    if "|" not in code or not raw.get("display") or not raw.get("label"):
        raise err(where, "needs label, code = 'system|code' and display")
    if raw.get("unless") is not None and raw["unless"] not in names:
        raise err(f"{where}.unless", f"'{raw['unless']}' is not a declared feature")
    if not isinstance(raw.get("recommended", False), bool):
        raise err(f"{where}.recommended", "must be true or false")
    ingredient, dose = _medication(where, raw, err) if rtype == "MedicationRequest" else (None, None)
    return SuggestionDef(name, raw["label"], rtype, code, raw["display"], raw.get("text", ""), raw.get("category"),
                         raw.get("unless"), bool(raw.get("recommended", False)), str(raw.get("name", "")),
                         ingredient, dose)


def _medication(where: str, raw: Mapping, err) -> tuple[tuple[str, str], Dose]:
    """A medication suggestion an EHR can sign in one click: an RxNorm clinical drug (SCD) the product table knows
    (`fhir_adapters.rxnorm_products`, where each code's source is noted), named as RxNorm names it, its ingredient,
    and a structured dose in whole units of the product (a 20 mg dose of a 20 MG tablet)."""
    system, _, code = raw["code"].partition("|")
    product = rxnorm_products.product(code) if system == rxnorm_products.RXNORM else None
    if product is None or product.brand:
        raise err(f"{where}.code", "must be an RxNorm clinical drug (SCD) listed in fhir_adapters/rxnorm_products.py "
                                   "(an ingredient code is not orderable)")
    if raw["display"] != product.name:
        raise err(f"{where}.display", f"must be the RxNorm name of {code}: '{product.name}'")
    ing = raw.get("ingredient")
    if not (isinstance(ing, Mapping) and str(ing.get("code", "")).startswith(rxnorm_products.RXNORM + "|")
            and isinstance(ing.get("display"), str) and product.ingredient.startswith(ing["display"].lower())):
        raise err(f"{where}.ingredient", f"needs code = '{rxnorm_products.RXNORM}|<ingredient RxCUI>' and the "
                                         f"display of the product's ingredient ({product.ingredient})")
    d = raw.get("dose")
    if not isinstance(d, Mapping):
        raise err(where, "a medication needs a structured dose = { value, unit = \"mg\", times_per_day, route }")
    value, per_day = d.get("value"), d.get("times_per_day")
    if d.get("unit") != "mg" or not isinstance(value, (int, float)) or value <= 0 or (value / product.mg) % 1:
        raise err(f"{where}.dose", f"value must be a whole number of {product.mg:g} mg units, unit = \"mg\"")
    if not isinstance(per_day, int) or not 1 <= per_day <= 6:
        raise err(f"{where}.dose.times_per_day", "must be a whole number from 1 to 6")
    if d.get("route") not in ROUTES:
        raise err(f"{where}.dose.route", f"must be one of {', '.join(ROUTES)}")
    return (ing["code"], ing["display"]), Dose(float(value), "mg", per_day, d["route"])


def _cards(path: Path, raw: Any, suggestions: Mapping, builder: str, err) -> CardPolicy:
    if not isinstance(raw, dict) or not raw.get("source_label"):
        raise err("cards.source_label", "is required (SRC-1)")
    rules = []
    for i, r in enumerate(raw.get("rules", [])):
        where = f"cards.rules[{i}]"
        if r.get("indicator") not in INDICATORS:
            raise err(f"{where}.indicator", f"must be one of {', '.join(INDICATORS)} (CARD-3)")
        summary = r.get("summary", "")
        check_summary(path, f"{where}.summary", summary, SUMMARY_FIELDS)
        for s in r.get("suggestions", []):
            if s not in suggestions:
                raise err(f"{where}.suggestions", f"'{s}' is not declared under [suggestions]")
        min_score = r.get("min_score", 0.0)
        if not _is_number(min_score) or not 0 <= min_score <= 1:
            hint = f"; {min_score} % is written {min_score / 100:g}" if _is_number(min_score) and 1 < min_score <= 100 else ""
            raise err(f"{where}.min_score", f"must be a risk from 0 to 1 (a fraction: 0.2 is 20 %), not {min_score!r}{hint}")
        rules.append(CardRule(float(min_score), r["indicator"], summary, tuple(r.get("suggestions", [])), r.get("advice", "")))
    if [r.min_score for r in rules] != sorted((r.min_score for r in rules), reverse=True):
        raise err("cards.rules", "must be ordered from the highest min_score down")
    if builder == "risk" and not rules:
        raise err("cards.rules", "a risk card needs at least one rule")
    if raw.get("on_missing", "card") not in ("card", "silent"):
        raise err("cards.on_missing", "must be 'card' or 'silent'")
    if raw.get("on_not_applicable", "silent") not in ("card", "silent"):
        raise err("cards.on_not_applicable", "must be 'card' (a short card saying why the service does not apply) or 'silent'")
    top = raw.get("top_factors", 3)
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_FACTORS:
        raise err("cards.top_factors", f"must be a whole number from 0 to {MAX_TOP_FACTORS}, not {top!r}")
    reasons = []
    for i, o in enumerate(raw.get("override_reasons", [])):
        if not (o.get("system") and o.get("code") and o.get("display")):
            raise err(f"cards.override_reasons[{i}]", "needs system, code and display (OVR-1)")
        reasons.append((o["system"], o["code"], o["display"]))
    return CardPolicy(raw["source_label"], raw.get("source_url"), tuple(rules), raw.get("on_missing", "card"),
                      top, tuple(reasons), raw.get("on_not_applicable", "silent"))


def check_summary(path: Path | str, field: str, template: Any, longest: Mapping[str, str]) -> None:
    """CARD-2 at start-up, for every summary template of a service file (card rules and builder data).

    `longest` maps each placeholder the template may use to the longest text it can produce; that
    longest summary must stay under 140 characters. Raises `ServiceFileError` naming file and field.
    """
    if not isinstance(template, str) or not template.strip():
        raise ServiceFileError(path, field, "is required")
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None and name not in longest:
            allowed = ", ".join(sorted(longest)) or "none"
            raise ServiceFileError(path, field, f"unknown placeholder '{{{name}}}' (allowed: {allowed})")
        if spec:
            raise ServiceFileError(path, field, "placeholders take no format spec; their values are already formatted")
    text = template.format(**longest)
    if len(text) > SUMMARY_MAX:
        raise ServiceFileError(path, field, f"can reach {len(text)} characters; a summary must stay under 140 (CARD-2)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_window_params(params: Mapping[str, Any], where: str, err) -> None:
    """Ranges every kind shares: a lookback window is a positive number of days; a plausible range is
    [low, high] with low below high (a reversed range would reject every value)."""
    for key, value in params.items():
        if key == "lookback_days" or key.endswith("_lookback_days"):
            if not _is_number(value) or value <= 0:
                raise err(f"{where}.{key}", f"must be a positive number of days, not {value!r}")
        elif key == "plausible" or key.endswith("_plausible"):
            if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) and value[0] < value[1]):
                raise err(f"{where}.{key}", f"must be [low, high] with low below high, not {value!r}")


class _Locator:
    """Turns the path of a key, or a field as errors name it (`cards.rules[2].min_score`, `features.hdl.source`:
    a feature by its name), into the field text and its line in the file."""

    def __init__(self, raw: Mapping[str, Any], text: str):
        self._raw, self._text = raw, text
        self._lines: dict[KeyPath, int] | None = None  # key_lines(text), on first use

    def field(self, path: tuple) -> str:
        """`("features", 3, "windw")` → `features.sbp.windw` (a feature named by its name), else dotted with [i]."""
        out = ""
        node: Any = self._raw  # a walk down nested TOML tables and arrays
        for i, part in enumerate(path):
            named = i > 0 and path[i - 1] == "features" and isinstance(node, list) and isinstance(part, int)
            name = node[part].get("name") if named and isinstance(node[part], dict) else None
            if isinstance(part, int) and not isinstance(name, str):
                out += f"[{part}]"
            else:
                out += ("." if out else "") + str(name if isinstance(name, str) else part)
            node = node[part] if isinstance(node, (dict, list)) else None
        return out

    def line(self, field: str) -> int | None:
        """The line of `field`, or of the nearest table holding it that is written in the file."""
        if self._lines is None:
            self._lines = key_lines(self._text)
        path: KeyPath = ()
        node: Any = self._raw
        for name, index in _FIELD_PART.findall(field):
            part: str | int = int(index) if index else name
            if isinstance(node, list) and isinstance(part, str):  # features.<name>
                part = next((i for i, f in enumerate(node) if isinstance(f, dict) and f.get("name") == part), part)
            written = (isinstance(node, dict) and part in node
                       or isinstance(node, list) and isinstance(part, int) and part < len(node))
            if not written:
                break
            path, node = path + (part,), node[part]
        while path and path not in self._lines:
            path = path[:-1]
        return self._lines.get(path) if path else None

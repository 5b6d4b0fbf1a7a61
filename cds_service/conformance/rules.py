"""Conformance rules of CDS Hooks 2.0 as pure functions over JSON (`cds-service check`).

Each check takes what a service answered (status, content type, decoded body) and records
findings under the checklist's rule IDs (/work/shared/spec/cds-hooks-checklist.md). Nothing
here does I/O: `cli_check` makes the calls and feeds the answers in, tests feed JSON directly.

Levels: FAIL = a MUST of the spec is broken; WARN = a SHOULD, a deprecated form or one of our
documented choices; PASS = the rule was exercised and held; SKIP = nothing exercised it.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hooks.catalog import ACTION_TYPES, HOOKS, INDICATORS, LINK_TYPES, PREFETCH_TOKEN, SELECTION_BEHAVIORS, SUMMARY_MAX
from hooks.catalog import USER_TOKENS as _USER_TOKENS

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"

# The rules this checker knows, in report order, with the short wording of the checklist.
RULES: dict[str, str] = {
    "GEN-1": "JSON over HTTPS (Content-Type application/json, TLS in production)",
    "GEN-2": "no null or empty members (except cards/services arrays)",
    "GEN-4": "member names exactly as specified (case-sensitive)",
    "DISC-1": "GET /cds-services answers 200 with {\"services\": [...]}",
    "DISC-2": "no services: 200 with an empty services array",
    "DISC-3": "other statuses allowed (MAY; nothing to check)",
    "DISC-4": "descriptor: hook, id, description required; title recommended; prefetch, usageRequirements typed",
    "DISC-5": "duplicate ids only with different hooks",
    "DISC-6": "no empty prefetch object",
    "TOKEN-1": "prefetch tokens are {{context.x}} or a user token",
    "TOKEN-2": "context tokens name top-level primitive fields marked as tokens",
    "REQ-1": "a realistic request for the hook is accepted",
    "REQ-2": "a malformed request is refused with a 4xx",
    "RESP-1": "success is 200 with a cards array",
    "PREFETCH-5": "missing prefetch without FHIR access: 200 or 412",
    "PREFETCH-6": "null prefetch values mean 'no data' (answered 200)",
    "ERR-3": "non-2xx answers carry an OperationOutcome",
    "CARD-1": "card members present and typed (uuid set so feedback can arrive)",
    "CARD-2": "summary non-empty and under 140 characters",
    "CARD-3": "indicator is info, warning or critical",
    "CARD-4": "suggestions come with selectionBehavior at-most-one or any",
    "CARD-5": "at-most-one: at most one recommended suggestion",
    "CARD-6": "no raw HTML in detail",
    "SRC-1": "source.label present",
    "SRC-2": "source.url / icon absolute URLs, topic a Coding",
    "SUGG-1": "suggestion label required, uuid set, isRecommended boolean, actions an array",
    "ACT-1": "action type create/update/delete, description, resource / resourceId",
    "SYSACT-2": "system actions: same as ACT-1, description optional",
    "OVR-1": "every override reason carries display",
    "CODING-1": "Coding has system and code",
    "LINK-1": "link label, absolute url and type absolute/smart",
    "LINK-2": "appContext only on smart links",
    "LINK-3": "autolaunchable is a boolean",
    "EXT-1": "extension is a JSON object",
    "FEEDBACK-1": "feedback endpoint exists (MAY)",
    "FEEDBACK-2": "a valid feedback body is accepted",
    "SEC-2": "calls carry and require a JWT",
    "SEC-10": "a refused JWT gets a bare 401",
    "PERF-1": "answers within about 500 ms",
}

HOOK_NAMES = tuple(HOOKS)
USER_TOKENS = tuple(_USER_TOKENS)  # TOKEN-1
TOKEN_FIELDS = tuple(sorted({t for h in HOOKS.values() for t in h.tokens}))  # TOKEN-2: "Prefetch Token: Yes" fields
SLOW_MS = 500  # PERF-1

_CARD_MEMBERS = {"uuid", "summary", "detail", "indicator", "source", "suggestions", "selectionBehavior",
                 "overrideReasons", "links", "extension"}
_SOURCE_MEMBERS = {"label", "url", "icon", "topic", "extension"}
_SUGGESTION_MEMBERS = {"label", "uuid", "isRecommended", "actions", "actionSelectionBehavior", "extension"}
_ACTION_MEMBERS = {"type", "description", "resource", "resourceId", "extension"}
_LINK_MEMBERS = {"label", "url", "type", "appContext", "autolaunchable", "extension"}
_CODING_MEMBERS = {"system", "code", "display", "extension"}
_DESCRIPTOR_MEMBERS = {"hook", "id", "title", "description", "prefetch", "usageRequirements", "version", "hookVersion",
                       "extension"}
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>")
_RELATIVE_REF = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    level: str  # PASS (a note on a rule that held), WARN or FAIL
    where: str
    message: str

    def to_json(self) -> dict:
        return {"rule": self.rule, "level": self.level, "where": self.where, "message": self.message}


@dataclass
class Findings:
    """What the checks found, plus how often each rule was exercised (to tell PASS from SKIP)."""

    items: list[Finding] = field(default_factory=list)
    exercised: Counter = field(default_factory=Counter)

    def ok(self, rule: str, where: str = "", note: str | None = None) -> None:
        self.exercised[rule] += 1
        if note:
            self.items.append(Finding(rule, PASS, where, note))

    def fail(self, rule: str, where: str, message: str) -> None:
        self.exercised[rule] += 1
        self.items.append(Finding(rule, FAIL, where, message))

    def warn(self, rule: str, where: str, message: str) -> None:
        self.exercised[rule] += 1
        self.items.append(Finding(rule, WARN, where, message))

    def extend(self, other: "Findings") -> None:
        self.items.extend(other.items)
        self.exercised.update(other.exercised)

    def status(self, rule: str) -> str:
        levels = {f.level for f in self.items if f.rule == rule}
        if FAIL in levels:
            return FAIL
        if WARN in levels:
            return WARN
        return PASS if self.exercised[rule] else SKIP

    def failed_rules(self) -> list[str]:
        return [r for r in self.rules() if self.status(r) == FAIL]

    def rules(self) -> list[str]:
        extra = sorted({f.rule for f in self.items} - set(RULES))
        return list(RULES) + extra

    def to_json(self) -> dict:
        rules = [{"rule": r, "title": RULES.get(r, ""), "status": self.status(r), "checked": self.exercised[r],
                  "findings": [f.to_json() for f in self.items if f.rule == r]} for r in self.rules()]
        counts = Counter(r["status"] for r in rules)
        return {"summary": {k: counts.get(k, 0) for k in (PASS, WARN, FAIL, SKIP)}, "rules": rules}


# ---------------------------------------------------------------------------------------- generic

def check_no_empty(value: Any, where: str, f: Findings, allowed: Iterable[str] = ()) -> None:
    """GEN-2: walk `value`; any null, "", [] or {} fails, except at the paths in `allowed`."""
    allowed = set(allowed)
    problems: list[str] = []
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                p = f"{path}.{k}"
                if (v is None or v == "" or v == [] or v == {}) and p not in allowed:
                    problems.append(p)
                stack.append((v, p))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    for p in sorted(problems):
        f.fail("GEN-2", p, "null or empty member; leave optional members out instead")
    if not problems:
        f.ok("GEN-2", where)


def check_content_type(content_type: str | None, where: str, f: Findings) -> None:
    """GEN-1: JSON bodies are served as application/json."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/json":
        f.ok("GEN-1", where)
    elif mime.endswith("+json"):
        f.warn("GEN-1", where, f"Content-Type is {mime}; CDS Hooks JSON is application/json")
    else:
        f.fail("GEN-1", where, f"Content-Type is {mime or 'missing'}, not application/json")


def check_transport(base_url: str, f: Findings) -> None:
    """GEN-1 / SEC-1: TLS on every endpoint in production."""
    if base_url.lower().startswith("https://"):
        f.ok("GEN-1", base_url)
    else:
        f.warn("GEN-1", base_url, "plain http: acceptable for local testing only; production traffic MUST use TLS")


def _unknown_members(obj: dict, known: set[str], where: str, f: Findings) -> None:
    """GEN-4: names are case-sensitive; a near miss (`selectionbehavior`) is a typo the EHR will ignore."""
    for key in obj:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        f.warn("GEN-4", f"{where}.{key}", f"member not defined by the spec{hint}")
    f.ok("GEN-4", where)


def _is_absolute_url(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^https?://[^\s/]+", value) is not None


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_extension(obj: dict, where: str, f: Findings) -> None:
    """EXT-1: `extension` must be a JSON object."""
    if "extension" in obj:
        if isinstance(obj["extension"], dict):
            f.ok("EXT-1", f"{where}.extension")
        else:
            f.fail("EXT-1", f"{where}.extension", "must be a JSON object")


def check_coding(c: Any, where: str, f: Findings, *, need_display: bool = False) -> None:
    """CODING-1 (system and code required), OVR-1 (display required in overrideReasons)."""
    if not isinstance(c, dict):
        f.fail("CODING-1", where, "must be a Coding object")
        return
    _unknown_members(c, _CODING_MEMBERS, where, f)
    missing = [k for k in ("system", "code") if not _nonempty_str(c.get(k))]
    if missing:
        f.fail("CODING-1", where, f"Coding without {' and '.join(missing)}")
    else:
        f.ok("CODING-1", where)
    if "display" in c and not isinstance(c["display"], str):
        f.fail("CODING-1", f"{where}.display", "must be a string")
    if need_display:
        if _nonempty_str(c.get("display")):
            f.ok("OVR-1", where)
        else:
            f.fail("OVR-1", where, "override reason without display (invariant cds-resp-4)")


# -------------------------------------------------------------------------------------- discovery

def check_discovery(status: int, content_type: str | None, body: Any) -> Findings:
    """DISC-1..6, TOKEN-1/2, GEN-1/2 on the answer to GET {base}/cds-services."""
    f = Findings()
    where = "GET /cds-services"
    if status != 200:
        f.fail("DISC-1", where, f"answered HTTP {status}, expected 200")
        return f
    check_content_type(content_type, where, f)
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        f.fail("DISC-1", where, "body is not an object with a 'services' array")
        return f
    f.ok("DISC-1", where)
    services = body["services"]
    check_no_empty(body, "$", f, allowed=("$.services",))
    if not services:
        f.ok("DISC-2", where, "no services advertised (an empty array, as DISC-2 asks)")
    seen: dict[tuple, int] = {}
    for i, d in enumerate(services):
        check_descriptor(d, f"services[{i}]", f)
        if isinstance(d, dict):
            key = (d.get("id"), d.get("hook"))
            if key in seen:
                f.fail("DISC-5", f"services[{i}]", f"id '{d.get('id')}' is advertised twice for the same hook '{d.get('hook')}'")
            else:
                f.ok("DISC-5", f"services[{i}]")
            seen[key] = i
    return f


def check_descriptor(d: Any, where: str, f: Findings) -> None:
    """DISC-4 (required and typed members), DISC-6 (no empty prefetch), TOKEN-1/2 on its templates."""
    if not isinstance(d, dict):
        f.fail("DISC-4", where, "service descriptor must be an object")
        return
    _unknown_members(d, _DESCRIPTOR_MEMBERS, where, f)
    bad = False
    for name in ("hook", "id", "description"):
        if not _nonempty_str(d.get(name)):
            f.fail("DISC-4", f"{where}.{name}", "required string missing or empty")
            bad = True
    if "id" in d and isinstance(d["id"], str) and not re.match(r"^[A-Za-z0-9\-._~]+$", d["id"]):
        f.fail("DISC-4", f"{where}.id", "id must be usable as a URL path segment")
        bad = True
    if "title" not in d:
        f.warn("DISC-4", f"{where}.title", "title is RECOMMENDED")
    elif not isinstance(d["title"], str):
        f.fail("DISC-4", f"{where}.title", "must be a string")
        bad = True
    for name in ("usageRequirements", "version", "hookVersion"):
        if name in d and not isinstance(d[name], str):
            f.fail("DISC-4", f"{where}.{name}", "must be a string")
            bad = True
    hook = d.get("hook")
    if isinstance(hook, str) and hook not in HOOK_NAMES and "." not in hook:
        f.warn("DISC-4", f"{where}.hook", f"'{hook}' is not one of the hooks this checker knows; no synthetic call")
    check_extension(d, where, f)
    if "prefetch" in d:
        prefetch = d["prefetch"]
        if not isinstance(prefetch, dict):
            f.fail("DISC-4", f"{where}.prefetch", "must be an object of key -> query template")
            bad = True
        elif not prefetch:
            f.fail("DISC-6", f"{where}.prefetch", "empty prefetch object; leave the member out (GEN-2)")
        else:
            f.ok("DISC-6", f"{where}.prefetch")
            for key, query in prefetch.items():
                if not isinstance(query, str) or not query.strip():
                    f.fail("DISC-4", f"{where}.prefetch.{key}", "a prefetch template must be a non-empty string")
                    bad = True
                else:
                    check_template(query, f"{where}.prefetch.{key}", f)
    else:
        f.ok("DISC-6", where)
    if not bad:
        f.ok("DISC-4", where)


def check_template(query: str, where: str, f: Findings) -> None:
    """TOKEN-1 (token syntax) and TOKEN-2 (top-level primitive token fields only, in 2.0)."""
    for token in PREFETCH_TOKEN.findall(query):
        if token in USER_TOKENS:
            f.ok("TOKEN-1", where)
        elif token.startswith("context."):
            f.ok("TOKEN-1", where)
            name = token.removeprefix("context.")
            if name in TOKEN_FIELDS:
                f.ok("TOKEN-2", where)
            else:
                f.warn("TOKEN-2", where, f"'{{{{{token}}}}}' is not a 2.0 prefetch token (3.0-ballot FHIRPath at best); "
                                         "clients may leave this key out")
        else:
            f.fail("TOKEN-1", where, f"'{{{{{token}}}}}' is neither context.<field> nor a user token")


# ------------------------------------------------------------------------------- service response

def check_service_response(status: int, content_type: str | None, body: Any, *, where: str,
                           prefetch_omitted: bool = False, latency_ms: float | None = None) -> Findings:
    """RESP-1 and every card/system-action rule on one answer to POST {base}/cds-services/{id}.

    `prefetch_omitted`: the request left out the service's prefetch keys and gave no FHIR access,
    so a 412 is the conformant answer of PREFETCH-5.
    """
    f = Findings()
    if latency_ms is not None:
        if latency_ms > SLOW_MS:
            f.warn("PERF-1", where, f"answered in {latency_ms:.0f} ms (the spec expects about {SLOW_MS} ms)")
        else:
            f.ok("PERF-1", where)
    if status == 412 and prefetch_omitted:
        f.ok("PREFETCH-5", where, "answered 412: required data was neither prefetched nor fetchable, as PREFETCH-5 allows")
        check_error_body(status, content_type, body, where, f)
        return f
    if status != 200:
        if 400 <= status < 500:
            f.fail("REQ-1", where, f"a valid request was refused with HTTP {status}")
        else:
            f.fail("RESP-1", where, f"answered HTTP {status}; success is 200 with a cards array")
        check_error_body(status, content_type, body, where, f)
        return f
    if prefetch_omitted:
        f.ok("PREFETCH-5", where, "answered 200 without prefetch (fetched the data or needs none)")
    f.ok("REQ-1", where)
    check_content_type(content_type, where, f)
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        f.fail("RESP-1", where, "body is not an object with a 'cards' array (required even when empty)")
        return f
    f.ok("RESP-1", where)
    root = f"{where}: $"  # JSON paths inside this answer
    _unknown_members(body, {"cards", "systemActions", "extension"}, root, f)
    check_no_empty(body, root, f, allowed=(f"{root}.cards",))
    for i, card in enumerate(body["cards"]):
        check_card(card, f"{root}.cards[{i}]", f)
    actions = body.get("systemActions")
    if actions is not None:
        if not isinstance(actions, list):
            f.fail("SYSACT-2", f"{root}.systemActions", "must be an array of actions")
        else:
            for i, a in enumerate(actions):
                check_action(a, f"{root}.systemActions[{i}]", f, system=True)
    return f


def check_error_body(status: int, content_type: str | None, body: Any, where: str, f: Findings) -> None:
    """ERR-3 (3.0-ballot SHOULD): non-2xx bodies carry an OperationOutcome; 401 may stay bare (SEC-10)."""
    if status == 401:
        return
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" and isinstance(body.get("issue"), list) \
            and body["issue"]:
        f.ok("ERR-3", where)
    else:
        f.warn("ERR-3", where, f"HTTP {status} without an OperationOutcome body")


def check_card(card: Any, where: str, f: Findings) -> None:
    """CARD-1..6, SRC-1/2, SUGG-1, ACT-1, OVR-1, CODING-1, LINK-1..3, EXT-1 on one card."""
    if not isinstance(card, dict):
        f.fail("CARD-1", where, "a card must be an object")
        return
    _unknown_members(card, _CARD_MEMBERS, where, f)
    card_ok = True
    if "uuid" not in card:
        f.warn("CARD-1", f"{where}.uuid", "no uuid: the EHR cannot send feedback for this card")
    elif not _nonempty_str(card["uuid"]):
        f.fail("CARD-1", f"{where}.uuid", "must be a non-empty string")
        card_ok = False
    summary = card.get("summary")
    if not isinstance(summary, str):
        f.fail("CARD-1", f"{where}.summary", "summary is required and must be a string")
        card_ok = False
    elif not summary.strip() or len(summary) > SUMMARY_MAX:
        f.fail("CARD-2", f"{where}.summary", f"{len(summary)} characters; must be 1-{SUMMARY_MAX} (<140)")
    else:
        f.ok("CARD-2", where)
    if "detail" in card:
        if not isinstance(card["detail"], str):
            f.fail("CARD-1", f"{where}.detail", "must be a markdown string")
            card_ok = False
        elif _HTML_TAG.search(card["detail"]):
            f.warn("CARD-6", f"{where}.detail", "raw HTML in detail; EHRs render GFM subsets differently")
        else:
            f.ok("CARD-6", where)
    indicator = card.get("indicator")
    if indicator is None:
        f.fail("CARD-1", f"{where}.indicator", "indicator is required")
        card_ok = False
    elif indicator not in INDICATORS:
        f.fail("CARD-3", f"{where}.indicator", f"'{indicator}' is not info, warning or critical")
    else:
        f.ok("CARD-3", where)
    check_source(card.get("source"), f"{where}.source", f)
    suggestions = card.get("suggestions")
    behaviour = card.get("selectionBehavior")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            f.fail("CARD-1", f"{where}.suggestions", "must be an array")
            card_ok = False
        else:
            for i, s in enumerate(suggestions):
                check_suggestion(s, f"{where}.suggestions[{i}]", f)
            if behaviour not in SELECTION_BEHAVIORS:
                f.fail("CARD-4", f"{where}.selectionBehavior",
                       "missing" if behaviour is None else f"'{behaviour}' is not at-most-one or any")
            else:
                f.ok("CARD-4", where)
            if behaviour == "at-most-one":
                recommended = sum(1 for s in suggestions if isinstance(s, dict) and s.get("isRecommended") is True)
                if recommended > 1:
                    f.fail("CARD-5", where, f"{recommended} recommended suggestions with selectionBehavior at-most-one")
                else:
                    f.ok("CARD-5", where)
    elif behaviour is not None and behaviour not in SELECTION_BEHAVIORS:
        f.fail("CARD-4", f"{where}.selectionBehavior", f"'{behaviour}' is not at-most-one or any")
    reasons = card.get("overrideReasons")
    if reasons is not None:
        if not isinstance(reasons, list):
            f.fail("OVR-1", f"{where}.overrideReasons", "must be an array of Coding")
        else:
            for i, c in enumerate(reasons):
                check_coding(c, f"{where}.overrideReasons[{i}]", f, need_display=True)
    links = card.get("links")
    if links is not None:
        if not isinstance(links, list):
            f.fail("LINK-1", f"{where}.links", "must be an array")
        else:
            for i, link in enumerate(links):
                check_link(link, f"{where}.links[{i}]", f)
    check_extension(card, where, f)
    if card_ok:
        f.ok("CARD-1", where)


def check_source(src: Any, where: str, f: Findings) -> None:
    if not isinstance(src, dict):
        f.fail("SRC-1", where, "source is required and must be an object")
        return
    _unknown_members(src, _SOURCE_MEMBERS, where, f)
    if _nonempty_str(src.get("label")):
        f.ok("SRC-1", where)
    else:
        f.fail("SRC-1", f"{where}.label", "source.label is required")
    src_ok = True
    for name in ("url", "icon"):
        if name in src and not _is_absolute_url(src[name]):
            f.fail("SRC-2", f"{where}.{name}", "must be an absolute URL")
            src_ok = False
    if "topic" in src:
        check_coding(src["topic"], f"{where}.topic", f)
    check_extension(src, where, f)
    if src_ok:
        f.ok("SRC-2", where)


def check_suggestion(s: Any, where: str, f: Findings) -> None:
    if not isinstance(s, dict):
        f.fail("SUGG-1", where, "a suggestion must be an object")
        return
    _unknown_members(s, _SUGGESTION_MEMBERS, where, f)
    ok = True
    if not _nonempty_str(s.get("label")):
        f.fail("SUGG-1", f"{where}.label", "label is required")
        ok = False
    if "uuid" not in s:
        f.warn("SUGG-1", f"{where}.uuid", "no uuid: accepted suggestions cannot be reported in feedback")
    elif not _nonempty_str(s["uuid"]):
        f.fail("SUGG-1", f"{where}.uuid", "must be a non-empty string")
        ok = False
    if "isRecommended" in s and not isinstance(s["isRecommended"], bool):
        f.fail("SUGG-1", f"{where}.isRecommended", "must be a boolean")
        ok = False
    if "actionSelectionBehavior" in s:
        f.warn("SUGG-1", f"{where}.actionSelectionBehavior", "3.0-ballot member: only for clients that document support (SUGG-3)")
    actions = s.get("actions")
    if actions is not None:
        if not isinstance(actions, list):
            f.fail("SUGG-1", f"{where}.actions", "must be an array")
            ok = False
        else:
            for i, a in enumerate(actions):
                check_action(a, f"{where}.actions[{i}]", f)
    check_extension(s, where, f)
    if ok:
        f.ok("SUGG-1", where)


def check_action(a: Any, where: str, f: Findings, *, system: bool = False) -> None:
    """ACT-1 for suggestion actions; SYSACT-2 for system actions (there `description` is optional)."""
    rule = "SYSACT-2" if system else "ACT-1"
    if not isinstance(a, dict):
        f.fail(rule, where, "an action must be an object")
        return
    _unknown_members(a, _ACTION_MEMBERS, where, f)
    problems = 0
    kind = a.get("type")
    if kind not in ACTION_TYPES:
        f.fail(rule, f"{where}.type", f"'{kind}' is not create, update or delete" if kind is not None else "type is required")
        problems += 1
    if "description" in a and not _nonempty_str(a["description"]):
        f.fail(rule, f"{where}.description", "must be a non-empty string")
        problems += 1
    elif "description" not in a and not system:
        f.fail(rule, f"{where}.description", "description is required on a suggestion action (invariant cds-resp-5)")
        problems += 1
    resource = a.get("resource")
    if kind in ("create", "update"):
        if not (isinstance(resource, dict) and _nonempty_str(resource.get("resourceType"))):
            f.fail(rule, f"{where}.resource", f"'{kind}' needs the complete FHIR resource")
            problems += 1
    elif kind == "delete":
        rid = a.get("resourceId")
        if rid is None and resource is None:
            f.fail(rule, where, "delete names no resource: give resourceId")
            problems += 1
        else:
            if resource is not None:
                f.warn(rule, f"{where}.resource", "delete with 'resource' is deprecated: use resourceId only (invariant cds-resp-2)")
            if rid is not None and not (isinstance(rid, str) and _RELATIVE_REF.match(rid)):
                f.fail(rule, f"{where}.resourceId", "must be a relative reference like 'ServiceRequest/123'")
                problems += 1
            elif rid is None:
                f.warn(rule, f"{where}.resourceId", "delete SHOULD use resourceId")
    check_extension(a, where, f)
    if not problems:
        f.ok(rule, where)


def check_link(link: Any, where: str, f: Findings) -> None:
    if not isinstance(link, dict):
        f.fail("LINK-1", where, "a link must be an object")
        return
    _unknown_members(link, _LINK_MEMBERS, where, f)
    problems = []
    if not _nonempty_str(link.get("label")):
        problems.append("label is required")
    if not _is_absolute_url(link.get("url")):
        problems.append("url is required and must be an absolute URL")
    if link.get("type") not in LINK_TYPES:
        problems.append(f"type '{link.get('type')}' is not absolute or smart" if "type" in link else "type is required")
    for p in problems:
        f.fail("LINK-1", where, p)
    if not problems:
        f.ok("LINK-1", where)
    if "appContext" in link:
        if link.get("type") != "smart":
            f.fail("LINK-2", f"{where}.appContext", "appContext is only allowed on smart links (invariant cds-resp-3)")
        elif not isinstance(link["appContext"], str):
            f.fail("LINK-2", f"{where}.appContext", "must be a string")
        else:
            f.ok("LINK-2", where)
    if "autolaunchable" in link:
        if isinstance(link["autolaunchable"], bool):
            f.ok("LINK-3", where)
        else:
            f.fail("LINK-3", f"{where}.autolaunchable", "must be a boolean")
    check_extension(link, where, f)


# ------------------------------------------------------------------------------ other endpoints

def check_feedback_answer(status: int, where: str, body: Any = None, content_type: str | None = None, *,
                          card_issued: bool = True) -> Findings:
    """FEEDBACK-1/2: a valid FEEDBACK-2 body gets a 2xx; 404/405 means no feedback endpoint (allowed).

    `card_issued` false: the report names a made-up uuid (the service issued no card to report on). A
    service may refuse feedback on a card it never issued, and its 404 cannot be told from a missing
    endpoint, so that answer checks nothing."""
    f = Findings()
    if 200 <= status < 300:
        f.ok("FEEDBACK-1", where)
        f.ok("FEEDBACK-2", where)
    elif status == 404 and not card_issued:
        pass
    elif status in (404, 405):
        f.warn("FEEDBACK-1", where, f"no feedback endpoint (HTTP {status}): the EHR's accept/override reports are lost")
    else:
        f.fail("FEEDBACK-2", where, f"a valid feedback body was refused with HTTP {status}")
        check_error_body(status, content_type, body, where, f)
    return f


def check_malformed_answer(status: int, content_type: str | None, body: Any, where: str) -> Findings:
    """REQ-2 [OUR CHOICE]: a body without hook/hookInstance/context is refused with 4xx (+ ERR-3)."""
    f = Findings()
    if 400 <= status < 500:
        f.ok("REQ-2", where)
        check_error_body(status, content_type, body, where, f)
    elif status < 300:
        f.warn("REQ-2", where, f"a request without hook, hookInstance and context was answered {status}")
    else:
        f.warn("REQ-2", where, f"a malformed request caused HTTP {status} (a server error, not a 4xx)")
        check_error_body(status, content_type, body, where, f)
    return f


def check_unauthenticated(status: int, body_text: str, where: str, *, credentials_given: bool) -> Findings:
    """SEC-2: a call without a JWT is refused; SEC-10: with a bare 401."""
    f = Findings()
    if status == 401:
        f.ok("SEC-2", where)
        if body_text.strip():
            f.warn("SEC-10", where, "401 with a body: best practice is a bare 401 that names no failed check")
        else:
            f.ok("SEC-10", where)
    elif status < 300:
        level = f.fail if credentials_given else f.warn
        level("SEC-2", where, "a call without a JWT was answered; acceptable only with authentication switched off for development")
    else:
        f.warn("SEC-2", where, f"a call without a JWT was answered {status}, not 401")
    return f


def format_report(findings: Findings, *, base_url: str, calls: Iterable[Mapping] = (), verbose: bool = False) -> str:
    """The human-readable report: one line per rule, then the findings under it."""
    out = [f"CDS Hooks conformance check of {base_url}", ""]
    for call in calls:
        out.append(f"  {call['method']:4} {call['path']:50} -> {call['status']}  {call['latency_ms']:.0f} ms  {call.get('note', '')}".rstrip())
    if calls:
        out.append("")
    for rule in findings.rules():
        status = findings.status(rule)
        out.append(f"{status:4}  {rule:11} {RULES.get(rule, '')}")
        for item in findings.items:
            if item.rule == rule and (item.level != PASS or verbose):
                out.append(f"        {item.level}: {item.where}: {item.message}")
    summary = findings.to_json()["summary"]
    out += ["", "  ".join(f"{k} {v}" for k, v in summary.items()),
            "Result: " + ("FAIL (" + ", ".join(findings.failed_rules()) + ")" if findings.failed_rules() else "no rule failed")]
    return "\n".join(out)

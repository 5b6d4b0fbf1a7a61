"""`cds-service fire`: build a realistic hook request, send it to the services answering the hook,
and print their cards the way a clinician would read them (or as JSON).

Also home of what `cds-service check` shares with it: the synthetic context of each of the six
hooks, common draft orders, and request signing with the caller's key (SEC-3/4: a fresh JWT per
call, `aud` = the endpoint called, `exp` = `iat` + 5 min, a random `jti`).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

import requests

from hooks.catalog import HOOKS as _CATALOG

HOOKS = tuple(_CATALOG)  # the six hooks of the Hook Library this project answers
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USER = "Practitioner/example"
DEFAULT_DRAFT = "ibuprofen"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class FireError(Exception):
    """A problem with the command's input (exit code 2), said in one line."""


# ------------------------------------------------------------------------------------------ auth

@dataclass
class Auth:
    """How calls are authenticated: nothing, a fixed bearer token, or a JWT signed per call."""

    static_token: str | None = None
    sign: Callable[[str], str] | None = None  # audience (the endpoint URL) -> a fresh JWT

    @property
    def configured(self) -> bool:
        return bool(self.static_token or self.sign)

    def headers(self, url: str) -> dict[str, str]:
        token = self.static_token or (self.sign(url) if self.sign else None)
        return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class KeySigner:
    """Signs like an EHR (SEC-3/4): `kid`, `typ` JWT and optional `jku` headers; iss, aud, iat,
    exp = iat + 5 min and a random jti, so a replay cache (SEC-8) accepts every call."""

    key: Any
    alg: str
    kid: str
    iss: str
    jku: str | None = None
    sub: str | None = None
    tenant: str | None = None
    lifetime_s: int = 300

    def __call__(self, aud: str) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + self.lifetime_s, "jti": str(uuid.uuid4())}
        claims.update({k: v for k, v in (("sub", self.sub), ("tenant", self.tenant)) if v})
        headers = {"typ": "JWT", "kid": self.kid, **({"jku": self.jku} if self.jku else {})}
        return jwt.encode(claims, self.key, algorithm=self.alg, headers=headers)


def add_auth_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("authentication (SEC-2..4)")
    g.add_argument("--token", help="a fixed bearer token sent as is (a replay cache refuses it after the first call)")
    g.add_argument("--token-key", metavar="FILE|demo",
                   help="sign a fresh JWT per call with this private key: a JWK or JWK Set (JSON, with 'd') or a PEM "
                        "file; 'demo' uses the EHR simulator's demo key (iss {url}/simulator, trusted by config/demo.toml)")
    g.add_argument("--token-iss", metavar="URL", help="the JWT 'iss' (an issuer the service trusts)")
    g.add_argument("--token-kid", help="the JWT 'kid' header (default: the JWK's kid)")
    g.add_argument("--token-alg", help="signing algorithm (default: the JWK's alg, else ES256/ES384/ES512 by curve, RS384 for RSA)")
    g.add_argument("--token-jku", metavar="URL", help="the JWT 'jku' header (the JWK Set URL), if the service expects one")
    g.add_argument("--token-sub", help="the JWT 'sub' claim (optional)")
    g.add_argument("--token-tenant", help="the JWT 'tenant' claim (optional)")


def auth_from_args(args: argparse.Namespace, base_url: str) -> Auth:
    if args.token and args.token_key:
        raise FireError("give --token or --token-key, not both")
    if args.token:
        return Auth(static_token=args.token)
    if not args.token_key:
        return Auth()
    if args.token_key == "demo":
        try:
            from cds_service.ehr.signing import DemoSigner

            signer = DemoSigner()  # the simulator's own signing: iss {base_url}/simulator, jku under it
            return Auth(sign=lambda aud: signer.sign(aud, base_url))
        except (ImportError, OSError) as exc:
            raise FireError(f"--token-key demo: the simulator's demo key is not installed ({exc})") from None
    import jwt

    key = _read_key_file(Path(args.token_key))
    if isinstance(key, dict):
        alg = args.token_alg or key.get("alg") or _alg_for(key)
        try:
            key_obj = jwt.PyJWK(key, algorithm=alg).key
        except jwt.PyJWTError as exc:
            raise FireError(f"{args.token_key}: not a usable private JWK: {exc}") from None
        kid = args.token_kid or key.get("kid")
    else:
        key_obj, alg, kid = key, args.token_alg or _alg_for_pem(key), args.token_kid
    if not args.token_iss:
        raise FireError("--token-key needs --token-iss (an issuer the service trusts)")
    if not kid:
        raise FireError("--token-key needs a kid: put one in the JWK or give --token-kid")
    if alg.upper().startswith("HS") or alg.lower() == "none":
        raise FireError("symmetric and 'none' algorithms are not allowed (SEC-6)")
    return Auth(sign=KeySigner(key_obj, alg, kid, args.token_iss, args.token_jku, args.token_sub, args.token_tenant))


def _read_key_file(path: Path):
    """A private JWK (or a JWK Set holding one) as a dict, or a PEM private key object."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FireError(f"cannot read the key file {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            jwk = json.loads(text)
        except ValueError:
            raise FireError(f"{path}: not valid JSON") from None
        if isinstance(jwk, dict) and "keys" in jwk:
            private = [k for k in jwk["keys"] if isinstance(k, dict) and "d" in k]
            if len(private) != 1:
                raise FireError(f"{path}: a JWK Set must hold exactly one private key to sign with")
            jwk = private[0]
        if not isinstance(jwk, dict) or "d" not in jwk:
            raise FireError(f"{path}: this JWK has no private part ('d'); signing needs the private key")
        return jwk
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise FireError(f"{path}: not a JWK and not an unencrypted PEM private key ({exc})") from None


def _alg_for(jwk: dict) -> str:
    return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(jwk.get("crv", ""), "RS384")


def _alg_for_pem(key) -> str:
    curve = getattr(getattr(key, "curve", None), "name", "")
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(curve, "RS384")


# ---------------------------------------------------------------------------------- the request

@dataclass(frozen=True)
class Patient:
    """Where the patient's data comes from: local resources (prefetch) or the FHIR server (fetch)."""

    id: str
    resources: list[dict] | None = None  # None: the service fetches from fhirServer
    user: str = DEFAULT_USER
    encounter_id: str | None = None


def load_patient(spec: str, *, fhir_server: str | None) -> Patient:
    """`spec` is a file (FHIR Bundle or Patient JSON), a bundled demo patient id (demo-01 …), or,
    with a FHIR server, a patient id the service fetches."""
    path = Path(spec)
    if path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FireError(f"{spec}: not a readable JSON file ({exc})") from None
        if not isinstance(document, dict) or not document.get("resourceType"):
            raise FireError(f"{spec}: not a FHIR resource (no resourceType)")
        return patient_from_resources(localize(document), source=spec)
    if fhir_server:
        if not _FHIR_ID.match(spec):
            raise FireError(f"'{spec}' is neither a file nor a FHIR patient id")
        return Patient(spec)
    demo = _demo_patients()
    if demo is not None and spec in demo:
        return patient_from_resources(demo.resources(spec), source=spec)
    hint = f" or a bundled demo patient ({demo.ids[0]} … {demo.ids[-1]})" if demo is not None and demo.ids else ""
    raise FireError(f"'{spec}' is not a file{hint}; to use a patient id, give --fhir-server so the service can fetch the data")


def _demo_patients():
    """The simulator's bundled patients (dates shifted to recent), when this installation ships them."""
    try:
        from cds_service.ehr.patients import DemoPatients

        return DemoPatients()
    except (ImportError, OSError, ValueError, KeyError):
        return None


def localize(document: dict) -> list[dict]:
    """The resources of a Bundle (or one resource) as a FHIR server stores them: with ids, and
    `urn:uuid:` references (transaction Bundles from carebundle or Synthea) rewritten to `Type/id`."""
    if document.get("resourceType") != "Bundle":
        return [copy.deepcopy(document)]
    resources, full_urls = [], {}
    for i, entry in enumerate(document.get("entry") or []):
        r = copy.deepcopy(entry.get("resource") or {})
        if not r.get("resourceType"):
            continue
        if not r.get("id"):
            tail = str(entry.get("fullUrl") or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            r["id"] = tail if _FHIR_ID.match(tail) else f"{r['resourceType'].lower()}-{i}"
        if entry.get("fullUrl"):
            full_urls[entry["fullUrl"]] = f"{r['resourceType']}/{r['id']}"
        resources.append(r)
    stack: list[Any] = list(resources)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("reference") in full_urls:
                node["reference"] = full_urls[node["reference"]]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return resources


def patient_from_resources(resources: list[dict], *, source: str = "the bundle") -> Patient:
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        raise FireError(f"{source} holds no Patient resource")
    practitioner = next((r for r in resources if r.get("resourceType") in ("Practitioner", "PractitionerRole")), None)
    encounter = next((r for r in resources if r.get("resourceType") == "Encounter"), None)
    user = f"{practitioner['resourceType']}/{practitioner['id']}" if practitioner else DEFAULT_USER
    return Patient(patient["id"], resources, user, encounter["id"] if encounter else None)


def draft_presets() -> dict:
    """The draft orders the simulator's picker offers (one list for the page and the command line)."""
    from cds_service.ehr.hook_calls import DRAFTS_BY_KEY

    return DRAFTS_BY_KEY


def draft_order(spec: str, patient: Patient, *, index: int, now: datetime) -> list[dict]:
    """A preset name (`metformin`, `apixaban`, `ibuprofen`, …) or a file holding a request resource or a Bundle of them."""
    presets = draft_presets()
    if spec in presets:
        order = presets[spec].resource(patient.id, _clinician(patient.user), patient.encounter_id, now.date().isoformat())
        return [order]
    try:
        document = json.loads(Path(spec).read_text(encoding="utf-8"))
    except OSError:
        raise FireError(f"--draft-order {spec}: not a preset ({', '.join(presets)}) and not a readable file") from None
    except ValueError:
        raise FireError(f"--draft-order {spec}: not valid JSON") from None
    if not isinstance(document, dict) or not document.get("resourceType"):
        raise FireError(f"--draft-order {spec}: not a FHIR resource")
    orders = localize(document)
    for i, order in enumerate(orders):
        order.setdefault("id", f"draft-{index}-{i}")
    return orders


def _clinician(user: str) -> str:
    return user if user.split("/")[0] in ("Practitioner", "PractitionerRole") else DEFAULT_USER


def build_context(hook: str, patient: Patient, *, draft_orders: list[dict] | None = None, now: datetime | None = None) -> dict:
    """A valid context for each of the six hooks (Hook Library 1.0.1; HOOK-* required fields)."""
    if hook not in HOOKS:
        raise FireError(f"unknown hook '{hook}' (known: {', '.join(HOOKS)})")
    now = now or datetime.now(timezone.utc)
    # HOOK-OSEL-1, HOOK-OSIGN-1, HOOK-ES-1, HOOK-ED-1: a clinician; patient-view and appointment-book allow any user.
    user = patient.user if hook in ("patient-view", "appointment-book") else _clinician(patient.user)
    context: dict[str, Any] = {"userId": user, "patientId": patient.id}
    if hook in ("encounter-start", "encounter-discharge"):
        context["encounterId"] = patient.encounter_id or "cli-encounter-1"  # HOOK-ES-3 / HOOK-ED-3: required
    elif patient.encounter_id:
        context["encounterId"] = patient.encounter_id
    if hook in ("order-select", "order-sign"):
        orders = draft_orders or draft_order(DEFAULT_DRAFT, patient, index=1, now=now)
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": o} for o in orders]}
        if hook == "order-select":  # HOOK-OSEL-4: the newly selected orders, pointing into draftOrders
            context["selections"] = [f"{orders[-1]['resourceType']}/{orders[-1]['id']}"]
    if hook == "appointment-book":
        start = (now + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
        appointment = {
            "resourceType": "Appointment", "id": "cli-appointment-1", "status": "proposed",
            "serviceType": [{"text": "Follow-up visit"}],
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "participant": [{"actor": {"reference": f"Patient/{patient.id}"}, "required": "required", "status": "needs-action"}],
        }
        # HOOK-AB-4: a Bundle of proposed Appointments (not the bare array of the 1.0.1 examples).
        context["appointments"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appointment}]}
    return context


def build_prefetch(templates: dict[str, str], context: dict, resources: list[dict]) -> tuple[dict, dict[str, str]]:
    """Fill and answer each template from local resources, as an EHR would (PREFETCH-2).

    Rendering is the service's own (TOKEN-1..3); answering is the simulator's in-memory search. A key
    that cannot be answered exactly is left out (PREFETCH-3), never approximated. Returns
    (prefetch, {key: why it was left out}).
    """
    from cds_service.errors import InvalidRequest
    from cds_service.hook_request import HookRequest
    from cds_service.prefetch import render_template
    from cds_service.ehr.fhir_query import UnsupportedQuery, evaluate

    probe = HookRequest("", "", MappingProxyType(dict(context)), MappingProxyType({}))
    prefetch, left_out = {}, {}
    for key, template in (templates or {}).items():
        try:
            prefetch[key] = evaluate(render_template(str(template), probe), resources)
        except (UnsupportedQuery, InvalidRequest) as exc:
            left_out[key] = getattr(exc, "message", None) or str(exc)
    return prefetch, left_out


def hook_request(hook: str, context: dict, *, prefetch: dict | None = None, fhir_server: str | None = None,
                 fhir_token: str | None = None, patient_id: str | None = None) -> dict:
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if fhir_server:
        body["fhirServer"] = fhir_server
        if fhir_token:  # AUTHZ-1
            body["fhirAuthorization"] = {"access_token": fhir_token, "token_type": "Bearer", "expires_in": 300,
                                         "scope": "patient/*.read", "subject": "cds-service-cli"}
            if patient_id:
                body["fhirAuthorization"]["patient"] = patient_id
    if prefetch:
        body["prefetch"] = prefetch
    return body


# ------------------------------------------------------------------------------------ HTTP calls

@dataclass
class Answer:
    status: int
    body: Any
    text: str
    content_type: str | None
    latency_ms: float


def call(session: requests.Session, method: str, url: str, auth: Auth, *, body: Any = None, timeout: float = 10.0,
         headers: dict | None = None) -> Answer:
    """One HTTP call with a timeout; a non-JSON answer keeps `body` None."""
    h = {"Accept": "application/json", **auth.headers(url), **(headers or {})}
    start = time.perf_counter()
    resp = session.request(method, url, json=body, headers=h, timeout=(min(timeout, 5.0), timeout))
    latency = (time.perf_counter() - start) * 1000
    try:
        decoded = resp.json() if resp.content else None
    except ValueError:
        decoded = None
    return Answer(resp.status_code, decoded, resp.text, resp.headers.get("Content-Type"), latency)


def discover(session: requests.Session, base: str, auth: Auth, timeout: float) -> list[dict]:
    answer = call(session, "GET", f"{base}/cds-services", auth, timeout=timeout)
    if answer.status == 401:
        raise FireError(f"{base}/cds-services answered 401: the service requires a JWT (see --token-key)")
    if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("services"), list):
        raise FireError(f"{base}/cds-services answered HTTP {answer.status} without a services list")
    return [d for d in answer.body["services"] if isinstance(d, dict)]


def fire(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout  # looked up per call (tests capture it)
    base = args.url.rstrip("/")
    auth = auth_from_args(args, base)
    patient = load_patient(args.patient, fhir_server=args.fhir_server)
    now = datetime.now(timezone.utc)
    orders = [o for i, spec in enumerate(args.draft_order or [], start=1) for o in draft_order(spec, patient, index=i, now=now)]
    if orders and args.hook not in ("order-select", "order-sign"):
        raise FireError(f"--draft-order applies to order-select and order-sign, not {args.hook}")
    context = build_context(args.hook, patient, draft_orders=orders, now=now)
    session = requests.Session()
    try:
        services = [d for d in discover(session, base, auth, args.timeout) if d.get("hook") == args.hook
                    and (args.service is None or d.get("id") == args.service)]
    except requests.RequestException as exc:
        raise FireError(f"cannot reach {base}: {exc.__class__.__name__}") from None
    if not services:
        which = f"service '{args.service}' for" if args.service else "service answering"
        raise FireError(f"no {which} the '{args.hook}' hook at {base}/cds-services")
    results = []
    for d in services:
        prefetch, left_out = ({}, {})
        if patient.resources is not None:
            prefetch, left_out = build_prefetch(d.get("prefetch") or {}, context, patient.resources)
        body = hook_request(args.hook, context, prefetch=prefetch, fhir_server=args.fhir_server,
                            fhir_token=args.fhir_token or os.environ.get("FHIR_ACCESS_TOKEN"), patient_id=patient.id)
        url = f"{base}/cds-services/{d['id']}"
        try:
            answer = call(session, "POST", url, auth, body=body, timeout=args.timeout)
        except requests.RequestException as exc:
            raise FireError(f"calling {url} failed: {exc.__class__.__name__}") from None
        results.append({"service": d["id"], "hook": args.hook, "hookInstance": body["hookInstance"], "status": answer.status,
                        "latency_ms": round(answer.latency_ms, 1), "prefetch": sorted(prefetch), "left_out": left_out,
                        "response": answer.body if answer.body is not None else answer.text})
    if args.json:  # always a list, one entry per service called
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        colour = _use_colour(out)
        for r in results:
            out.write(render_result(r, colour=colour))
    return 0 if all(r["status"] == 200 for r in results) else 1


# -------------------------------------------------------------------------------------- printing

_COLOURS = {"critical": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;34m"}


def _use_colour(out) -> bool:
    return hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ


def render_result(r: dict, *, colour: bool = False) -> str:
    """One service's answer as a clinician reads it: indicator, summary, detail, suggestions, links."""
    resp = r["response"]
    cards = resp.get("cards", []) if isinstance(resp, dict) else []
    head = f"== {r['service']} ({r['hook']}): HTTP {r['status']} in {r['latency_ms']:.0f} ms"
    lines = [head + (f", {len(cards)} card{'s' if len(cards) != 1 else ''}" if r["status"] == 200 else "")]
    if r.get("prefetch"):
        lines.append(f"   prefetch sent: {', '.join(r['prefetch'])}")
    for key, why in (r.get("left_out") or {}).items():
        lines.append(f"   prefetch left out: {key} ({why})")
    if r["status"] != 200:
        if isinstance(resp, dict) and resp.get("resourceType") == "OperationOutcome":
            for issue in resp.get("issue", []):
                where = f" at {', '.join(issue['expression'])}" if issue.get("expression") else ""
                lines.append(f"   {issue.get('severity', 'error')}: {issue.get('diagnostics', issue.get('code', ''))}{where}")
        elif r["status"] == 401:
            lines.append("   the service refused the call: it requires a valid JWT (see --token-key)")
        elif isinstance(resp, str) and resp.strip():
            lines.append("   " + resp.strip()[:300])
    elif not cards:
        lines.append("   no cards: the service has no advice for this patient")
    for card in cards:
        lines += [""] + _card_lines(card, colour)
    for action in (resp.get("systemActions", []) if isinstance(resp, dict) and r["status"] == 200 else []):
        lines.append(f"   system action: {_action_text(action)}")
    return "\n".join(lines) + "\n\n"


def _card_lines(card: dict, colour: bool) -> list[str]:
    indicator = str(card.get("indicator", "?"))
    tag = f"[{indicator.upper()}]"
    if colour and indicator in _COLOURS:
        tag = f"{_COLOURS[indicator]}{tag}\033[0m"
    lines = [f"{tag} {card.get('summary', '')}"]
    src = card.get("source") or {}
    if src:
        lines.append(f"    source: {src.get('label', '')}" + (f" <{src['url']}>" if src.get("url") else ""))
    if card.get("detail"):
        lines += [""] + ["    " + line if line else "" for line in plain_text(card["detail"]).splitlines()] + [""]
    suggestions = card.get("suggestions") or []
    if suggestions:
        lines.append(f"    suggestions ({card.get('selectionBehavior', '?')}):")
        for s in suggestions:
            mark = " (recommended)" if s.get("isRecommended") else ""
            lines.append(f"      * {s.get('label', '')}{mark}")
            for a in s.get("actions") or []:
                lines.append(f"          {_action_text(a)}")
    for link in card.get("links") or []:
        lines.append(f"    link ({link.get('type', '?')}): {link.get('label', '')} <{link.get('url', '')}>")
    reasons = [r.get("display") or r.get("code", "") for r in card.get("overrideReasons") or []]
    if reasons:
        lines.append(f"    override reasons: {'; '.join(reasons)}")
    if card.get("uuid"):
        lines.append(f"    card uuid: {card['uuid']}")
    return lines


def _action_text(a: dict) -> str:
    resource = a.get("resource") if isinstance(a.get("resource"), dict) else {}
    what = resource.get("resourceType") or a.get("resourceId") or ""
    desc = a.get("description") or ""
    return f"{a.get('type', '?')} {what}: {desc}".rstrip(": ")


def plain_text(markdown: str) -> str:
    """GFM detail as terminal text: emphasis and code marks dropped, links as 'text <url>', tables aligned."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush():
        if table:
            widths = [max(len(row[i]) if i < len(row) else 0 for row in table) for i in range(max(map(len, table)))]
            out.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table)
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [_inline(c.strip()) for c in stripped.strip("|").split("|")]
            if not all(re.match(r"^:?-{3,}:?$", c) for c in cells):
                table.append(cells)
            continue
        flush()
        line = re.sub(r"^(\s*)[*+] ", r"\1- ", line)
        line = re.sub(r"^#{1,6}\s+", "", line)
        out.append(_inline(line))
    flush()
    return "\n".join(out).strip("\n")


def _inline(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 <\2>", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return text.replace("`", "")


def add_fire_parser(sub) -> None:
    p = sub.add_parser("fire", help="send one hook to the services answering it and print their cards",
                       description="Build a realistic request for HOOK, send it to every service answering it "
                                   "(or the one named by --service) and print the cards.")
    p.add_argument("hook", choices=HOOKS)
    p.add_argument("--patient", required=True, metavar="FILE|ID",
                   help="a FHIR Bundle or Patient JSON file (prefetch is built from it by each service's templates), "
                        "or a patient id together with --fhir-server (no prefetch: the service fetches)")
    p.add_argument("--fhir-server", metavar="URL", help="FHIR base URL sent as fhirServer")
    p.add_argument("--fhir-token", help="access token sent as fhirAuthorization (default: $FHIR_ACCESS_TOKEN)")
    p.add_argument("--service", metavar="ID", help="only this service id")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the CDS service's base URL (default {DEFAULT_URL})")
    p.add_argument("--draft-order", action="append", metavar="FILE|NAME",
                   help="order-select/order-sign draft order: a preset of the simulator's picker (metformin, apixaban, "
                        "ibuprofen, …) or a JSON file (a MedicationRequest/ServiceRequest or a Bundle of them); "
                        f"repeatable; default {DEFAULT_DRAFT}")
    p.add_argument("--json", action="store_true", help="print the responses as JSON")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    add_auth_arguments(p)


def run(args: argparse.Namespace) -> int:
    try:
        return fire(args)
    except FireError as exc:
        print(f"cds-service fire: {exc}", file=sys.stderr)
        return 2

"""`cds-service fire`: build a realistic hook request, send it to the services answering the hook,
and print their cards the way a clinician would read them (or as JSON).

The request is the EHR simulator's (`cds_service.ehr`): the same context per hook, draft orders,
prefetch answered from the patient's resources, and signing. Also home of what `cds-service check`
shares with it: authentication and the HTTP calls.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import requests

from hooks.catalog import HOOKS

from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DEFAULT_DRAFT, DRAFTS_BY_KEY, DraftOrder
from cds_service.ehr.errors import EhrInputError
from cds_service.ehr.hook_calls import hook_request, local_prefetch
from cds_service.ehr.patients import FHIR_ID, DemoPatients, Patient, localize, patient_from_resources
from cds_service.ehr.signing import DemoKey, Signer, load_key

DEFAULT_URL = "http://127.0.0.1:8080"


class FireError(Exception):
    """A problem with the command's input (exit code 2), said in one line."""


# ------------------------------------------------------------------------------------------ auth

@dataclass
class Auth:
    static_token: str | None = None
    sign: Callable[[str], str] | None = None  # audience (the endpoint URL) -> a fresh JWT

    @property
    def configured(self) -> bool:
        return bool(self.static_token or self.sign)

    def headers(self, url: str) -> dict[str, str]:
        token = self.static_token or (self.sign(url) if self.sign else None)
        return {"Authorization": f"Bearer {token}"} if token else {}


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
            return Auth(sign=DemoKey().signer(base_url))
        except OSError as exc:
            raise FireError(f"--token-key demo: the simulator's demo key is not installed ({exc})") from None
    key = load_key(Path(args.token_key), alg=args.token_alg, kid=args.token_kid)
    if not args.token_iss:
        raise FireError("--token-key needs --token-iss (an issuer the service trusts)")
    return Auth(sign=Signer(key, args.token_iss, args.token_jku, args.token_sub, args.token_tenant))


# ---------------------------------------------------------------------------------- the request

def load_patient(spec: str, *, fhir_server: str | None) -> Patient:
    """`spec` is a file (FHIR Bundle or Patient JSON), a bundled demo patient id (demo-01 …), or,
    with a FHIR server, a patient id the service fetches."""
    path = Path(spec)
    if path.is_file():
        document = _read_json(path, spec)
        if not isinstance(document, dict) or not document.get("resourceType"):
            raise FireError(f"{spec}: not a FHIR resource (no resourceType)")
        return patient_from_resources(localize(document), source=spec)
    if fhir_server:
        if not FHIR_ID.match(spec):
            raise FireError(f"'{spec}' is neither a file nor a FHIR patient id")
        return Patient(spec)
    demo = DemoPatients()
    if spec in demo:
        return demo.patient(spec)
    raise FireError(f"'{spec}' is not a file or a bundled demo patient ({demo.ids[0]} … {demo.ids[-1]}); "
                   "to use a patient id, give --fhir-server so the service can fetch the data")


def read_draft_orders(spec: str, *, index: int) -> list[DraftOrder | dict]:
    """A preset name (`metformin`, `apixaban`, `ibuprofen`, …) or a file holding a request resource or a Bundle of them."""
    if spec in DRAFTS_BY_KEY:
        return [DRAFTS_BY_KEY[spec]]
    path = Path(spec)
    if not path.is_file():
        raise FireError(f"--draft-order {spec}: not a preset ({', '.join(DRAFTS_BY_KEY)}) and not a readable file")
    document = _read_json(path, f"--draft-order {spec}")
    if not isinstance(document, dict) or not document.get("resourceType"):
        raise FireError(f"--draft-order {spec}: not a FHIR resource")
    orders = localize(document)
    for i, order in enumerate(orders):
        order.setdefault("id", f"draft-{index}-{i}")
    return list(orders)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FireError(f"{what}: not a readable file ({exc.strerror})") from None
    except ValueError:
        raise FireError(f"{what}: not valid JSON") from None


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
    drafts = [d for i, spec in enumerate(args.draft_order or [], start=1) for d in read_draft_orders(spec, index=i)]
    if drafts and "draftOrders" not in HOOKS[args.hook].required:
        raise FireError(f"--draft-order applies to order-select and order-sign, not {args.hook}")
    context = build_context(args.hook, patient, now=datetime.now(timezone.utc), drafts=drafts)
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
            prefetch, left_out = local_prefetch(d.get("prefetch") or {}, context, patient.resources)
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
    p.add_argument("hook", choices=tuple(HOOKS))
    p.add_argument("--patient", required=True, metavar="FILE|ID",
                   help="a FHIR Bundle or Patient JSON file (prefetch is built from it by each service's templates), "
                        "a bundled demo patient (demo-01 …), or a patient id together with --fhir-server "
                        "(no prefetch: the service fetches)")
    p.add_argument("--fhir-server", metavar="URL", help="FHIR base URL sent as fhirServer")
    p.add_argument("--fhir-token", help="access token sent as fhirAuthorization (default: $FHIR_ACCESS_TOKEN)")
    p.add_argument("--service", metavar="ID", help="only this service id")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the CDS service's base URL (default {DEFAULT_URL})")
    p.add_argument("--draft-order", action="append", metavar="FILE|NAME",
                   help="order-select/order-sign draft order: a preset of the simulator's picker (metformin, apixaban, "
                        "ibuprofen, …) or a JSON file (a MedicationRequest/ServiceRequest or a Bundle of them); "
                        f"repeatable; default {DEFAULT_DRAFT.key}")
    p.add_argument("--json", action="store_true", help="print the responses as JSON")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    add_auth_arguments(p)


def run(args: argparse.Namespace) -> int:
    try:
        return fire(args)
    except (FireError, EhrInputError) as exc:
        print(f"cds-service fire: {exc}", file=sys.stderr)
        return 2

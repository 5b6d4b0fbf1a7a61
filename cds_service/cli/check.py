"""`cds-service check <base-url>`: check any CDS service for conformance and report by rule ID.

The calls, in order: discovery (with and, when credentials are given, without a JWT); per service
descriptor, a synthetic request for its hook with no prefetch (200 or 412, PREFETCH-5), with every
prefetch key null (PREFETCH-6), and with prefetch rendered from `--patient` when given; a
malformed request (REQ-2); a valid feedback report (FEEDBACK-2). Every answer goes through the
pure rule checks of `conformance`. Exit code 1 when a rule FAILs, 2 when the check cannot run.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import requests

from cds_service.cli.auth import Auth, add_auth_arguments, auth_from_args
from cds_service.cli.errors import CliError
from cds_service.cli.fire import load_patient
from cds_service.cli.transport import DEFAULT_URL, call
from cds_service.cli.unauthorized import explain_unauthorized
from cds_service.conformance import rules as cf
from cds_service.ehr.contexts import build_context
from cds_service.ehr.errors import EhrInputError
from cds_service.ehr.hook_calls import hook_request, local_prefetch
from cds_service.ehr.patients import Patient
from hooks.catalog import HOOKS

CHECK_PATIENT = Patient("cds-check-patient-1", resources=[], user="Practitioner/cds-check-user")


def run_check(base_url: str, *, auth: Auth, patient: Patient | None = None, feedback: bool = True,
              timeout: float = 10.0, session: requests.Session | None = None,
              config: str | None = None) -> tuple[cf.Findings, list[dict]]:
    """Run every probe against `base_url`; returns the findings and a log of the calls made."""
    base = base_url.rstrip("/")
    session = session or requests.Session()
    findings, calls = cf.Findings(), []

    def do(method: str, path: str, body=None, *, use_auth: bool = True, note: str = ""):
        answer = call(session, method, f"{base}{path}", auth if use_auth else Auth(), body=body, timeout=timeout)
        calls.append({"method": method, "path": path, "status": answer.status, "latency_ms": round(answer.latency_ms, 1),
                      "note": note})
        return answer

    cf.check_transport(base, findings)
    disc = do("GET", "/cds-services")
    if disc.status == 401 and not auth.configured:
        findings.fail("DISC-1", "GET /cds-services", "answered 401: the service requires a JWT; give --token-key (or --token)")
        return findings, calls
    if disc.status == 401:  # a token was sent and refused: say why, as far as can be known here
        why = explain_unauthorized(disc.headers, auth, f"{base}/cds-services", config=config, session=session)
        findings.fail("DISC-1", "GET /cds-services", "answered 401 to the signed call: " + "; ".join(why))
        return findings, calls
    findings.extend(cf.check_discovery(disc.status, disc.content_type, disc.body))
    if auth.configured:
        bare = do("GET", "/cds-services", use_auth=False, note="no JWT")
        findings.extend(cf.check_unauthenticated(bare.status, bare.text, "GET /cds-services without a JWT", credentials_given=True))
    elif disc.status == 200:
        findings.extend(cf.check_unauthenticated(disc.status, disc.text, "GET /cds-services without a JWT", credentials_given=False))
    if disc.status != 200 or not isinstance(disc.body, dict) or not isinstance(disc.body.get("services"), list):
        return findings, calls

    descriptors, seen = [], set()
    for d in disc.body["services"]:  # one round of calls per (id, hook); a duplicate is DISC-5's to report
        if isinstance(d, dict) and isinstance(d.get("id"), str) and d.get("hook") in HOOKS and (d["id"], d["hook"]) not in seen:
            seen.add((d["id"], d["hook"]))
            descriptors.append(d)
    now = datetime.now(timezone.utc)
    for d in descriptors:
        sid, hook, templates = d["id"], d["hook"], d.get("prefetch")
        templates = templates if isinstance(templates, dict) else {}
        path = f"/cds-services/{sid}"
        cards: list[dict] = []

        def service_call(body, where, note, omitted=False):
            answer = do("POST", path, body, note=note)
            findings.extend(cf.check_service_response(answer.status, answer.content_type, answer.body, where=where,
                                                      prefetch_omitted=omitted, latency_ms=answer.latency_ms))
            if answer.status == 200 and isinstance(answer.body, dict) and isinstance(answer.body.get("cards"), list):
                cards.extend(c for c in answer.body["cards"] if isinstance(c, dict))
            return answer

        context = build_context(hook, CHECK_PATIENT, now=now)
        # PREFETCH-5: no prefetch and no FHIR access; 200 (needs no data) or 412 are conformant.
        service_call(hook_request(hook, context), f"{sid} ({hook}) without prefetch", f"{hook}, no prefetch",
                     omitted=bool(templates))
        if templates:
            nulls = hook_request(hook, context, prefetch={k: None for k in templates})
            answer = service_call(nulls, f"{sid} ({hook}) prefetch all null", f"{hook}, prefetch null")
            if answer.status == 200:
                findings.ok("PREFETCH-6", f"{sid} ({hook})")
            else:
                findings.warn("PREFETCH-6", f"{sid} ({hook})", f"every prefetch key null (\"no data\") was answered {answer.status}, not 200")
        if patient is not None:
            pctx = build_context(hook, patient, now=now)
            prefetch, left_out = local_prefetch(templates, pctx, patient.resources or [])
            note = f"{hook}, patient prefetch" + (f" (left out: {', '.join(left_out)})" if left_out else "")
            service_call(hook_request(hook, pctx, prefetch=prefetch), f"{sid} ({hook}) with --patient", note,
                         omitted=bool(left_out))
        if feedback:
            report = _feedback_body(cards)
            fb = do("POST", f"{path}/feedback", report, note=f"{hook}, feedback")
            issued = any(c.get("uuid") == report["feedback"][0]["card"] for c in cards)
            findings.extend(cf.check_feedback_answer(fb.status, f"POST {path}/feedback", fb.body, fb.content_type,
                                                     card_issued=issued))

    if descriptors:
        d = descriptors[0]
        bad = do("POST", f"/cds-services/{d['id']}", {"context": {}}, note="malformed body")
        findings.extend(cf.check_malformed_answer(bad.status, bad.content_type, bad.body, f"POST /cds-services/{d['id']} (malformed)"))
    return findings, calls


def _feedback_body(cards: list[dict]) -> dict:
    """A valid FEEDBACK-2 report: an override of a card we got (with one of its reasons), else of a made-up uuid."""
    card = next((c for c in cards if isinstance(c.get("uuid"), str) and c["uuid"]), None)
    item: dict = {"card": card["uuid"] if card else str(uuid.uuid4()), "outcome": "overridden",
                  "outcomeTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    reasons = [r for r in (card or {}).get("overrideReasons") or [] if isinstance(r, dict) and r.get("code") and r.get("system")]
    reason: dict[str, Any] = {"userComment": "cds-service check: conformance probe, not a clinician's decision"}
    if reasons:
        reason["reason"] = {k: reasons[0][k] for k in ("system", "code", "display") if k in reasons[0]}
    item["overrideReason"] = reason
    return {"feedback": [item]}


def add_check_parser(sub) -> None:
    p = sub.add_parser("check", help="check a CDS service for CDS Hooks 2.0 conformance",
                       description="Check any CDS service: discovery, descriptors, a synthetic call per advertised hook, "
                                   "every card rule, feedback. Prints PASS/WARN/FAIL per checklist rule ID; "
                                   "exit code 1 when a rule fails.")
    p.add_argument("url", nargs="?", default=DEFAULT_URL, metavar="BASE-URL",
                   help=f"the service's base URL, without /cds-services (default {DEFAULT_URL})")
    p.add_argument("--patient", metavar="FILE", help="also call each service with prefetch built from this FHIR Bundle")
    p.add_argument("--no-feedback", action="store_true", help="do not send the feedback probe (it stores one override)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--verbose", action="store_true", help="also list the notes of rules that passed")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    add_auth_arguments(p)


def run(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout  # looked up per call (tests capture it)
    try:
        auth = auth_from_args(args, args.url.rstrip("/"))
        patient = load_patient(args.patient, fhir_server=None) if args.patient else None
        findings, calls = run_check(args.url, auth=auth, patient=patient, feedback=not args.no_feedback, timeout=args.timeout,
                                    config=args.config)
    except (CliError, EhrInputError) as exc:
        print(f"cds-service check: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"cds-service check: cannot reach {args.url}: {exc.__class__.__name__}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"base_url": args.url, **findings.to_json(), "calls": calls}, out, indent=2)
        out.write("\n")
    else:
        out.write(cf.format_report(findings, base_url=args.url, calls=calls, verbose=args.verbose) + "\n")
    return 1 if findings.failed_rules() else 0

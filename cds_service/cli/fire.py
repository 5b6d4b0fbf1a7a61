"""`cds-service fire`: build a realistic hook request, send it to the services answering the hook,
and print their cards the way a clinician would read them (or as JSON).

The request is the EHR simulator's (`cds_service.ehr`): the same context per hook, draft orders,
prefetch answered from the patient's resources, and signing. It also asks, through a request extension,
why a service gives no card (`cds_service.no_card`); an EHR never asks, and never gets it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from cds_service.cli.auth import add_auth_arguments, auth_from_args
from cds_service.cli.errors import CliError
from cds_service.cli.terminal import render_result, use_colour
from cds_service.cli.transport import DEFAULT_URL, call, discover
from cds_service.cli.unauthorized import explain_unauthorized
from cds_service.ehr.contexts import build_context
from cds_service.ehr.drafts import DEFAULT_DRAFT, DRAFTS_BY_KEY, DraftOrder
from cds_service.ehr.errors import EhrInputError
from cds_service.ehr.hook_calls import hook_request, local_prefetch
from cds_service.ehr.patients import FHIR_ID, DemoPatients, Patient, encounter_list, localize, patient_from_resources
from cds_service.hook_request import NO_CARD_REASON
from hooks.catalog import HOOKS


def load_patient(spec: str, *, fhir_server: str | None) -> Patient:
    """`spec` is a file (FHIR Bundle or Patient JSON), a bundled demo patient id (demo-01 …), or,
    with a FHIR server, a patient id the service fetches."""
    path = Path(spec)
    if path.is_file():
        document = _read_json(path, spec)
        if not isinstance(document, dict) or not document.get("resourceType"):
            raise CliError(f"{spec}: not a FHIR resource (no resourceType)")
        return patient_from_resources(localize(document), source=spec)
    if fhir_server:
        if not FHIR_ID.match(spec):
            raise CliError(f"'{spec}' is neither a file nor a FHIR patient id")
        return Patient(spec)
    demo = DemoPatients()
    if spec in demo:
        return demo.patient(spec)
    raise CliError(f"'{spec}' is not a file or a bundled demo patient ({demo.ids[0]} … {demo.ids[-1]}); "
                   "to use a patient id, give --fhir-server so the service can fetch the data")


def read_draft_orders(spec: str, *, index: int) -> list[DraftOrder | dict]:
    """A preset name (`metformin`, `apixaban`, `ibuprofen`, …) or a file holding a request resource or a Bundle of them."""
    if spec in DRAFTS_BY_KEY:
        return [DRAFTS_BY_KEY[spec]]
    path = Path(spec)
    if not path.is_file():
        raise CliError(f"--draft-order {spec}: not a preset ({', '.join(DRAFTS_BY_KEY)}) and not a readable file")
    document = _read_json(path, f"--draft-order {spec}")
    if not isinstance(document, dict) or not document.get("resourceType"):
        raise CliError(f"--draft-order {spec}: not a FHIR resource")
    orders = localize(document)
    for i, order in enumerate(orders):
        order.setdefault("id", f"draft-{index}-{i}")
    return list(orders)


def check_encounter(encounter_id: str | None, patient: Patient) -> None:
    """`--encounter` must be a FHIR id and, when the patient's data is here, one of their Encounters."""
    if encounter_id is None:
        return
    if not FHIR_ID.match(encounter_id):
        raise CliError(f"--encounter {encounter_id}: not a FHIR id")
    known = encounter_list(patient.resources)
    if patient.resources is not None and encounter_id not in {e[0] for e in known}:
        listed = ", ".join(_encounter_text(e) for e in known) or "none"
        raise CliError(f"--encounter {encounter_id}: not an Encounter of this patient (on record: {listed})")


def encounter_notes(context: dict, patient: Patient, response) -> list[str]:
    """When a call gave no card and the patient has other encounters: which one was sent, and how to choose."""
    sent = context.get("encounterId")
    others = [e for e in encounter_list(patient.resources) if e[0] != sent]
    if not sent or not others or not isinstance(response, dict) or response.get("cards"):
        return []
    mine = next((e for e in encounter_list(patient.resources) if e[0] == sent), (sent, "", ""))
    return [f"encounter sent: {_encounter_text(mine)}; other encounters: {', '.join(map(_encounter_text, others))} "
            "(choose one with --encounter ID)"]


def _encounter_text(e: tuple[str, str, str]) -> str:
    details = ", ".join(x for x in e[1:] if x)
    return f"{e[0]} ({details})" if details else e[0]


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{what}: not a readable file ({exc.strerror})") from None
    except ValueError:
        raise CliError(f"{what}: not valid JSON") from None


def fire(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout  # looked up per call (tests capture it)
    base = args.url.rstrip("/")
    auth = auth_from_args(args, base)
    patient = load_patient(args.patient, fhir_server=args.fhir_server)
    drafts = [d for i, spec in enumerate(args.draft_order or [], start=1) for d in read_draft_orders(spec, index=i)]
    if drafts and "draftOrders" not in HOOKS[args.hook].required:
        raise CliError(f"--draft-order applies to order-select and order-sign, not {args.hook}")
    check_encounter(args.encounter, patient)
    context = build_context(args.hook, patient, now=datetime.now(timezone.utc), drafts=drafts, encounter_id=args.encounter)
    session = requests.Session()
    try:
        services = [d for d in discover(session, base, auth, args.timeout, config=args.config) if d.get("hook") == args.hook
                    and (args.service is None or d.get("id") == args.service)]
    except requests.RequestException as exc:
        raise CliError(f"cannot reach {base}: {exc.__class__.__name__}") from None
    if not services:
        which = f"service '{args.service}' for" if args.service else "service answering"
        raise CliError(f"no {which} the '{args.hook}' hook at {base}/cds-services")
    results = []
    for d in services:
        prefetch: dict[str, Any] = {}
        left_out: dict[str, str] = {}
        if patient.resources is not None:
            prefetch, left_out = local_prefetch(d.get("prefetch") or {}, context, patient.resources)
        body = hook_request(args.hook, context, prefetch=prefetch, fhir_server=args.fhir_server,
                            fhir_token=args.fhir_token or os.environ.get("FHIR_ACCESS_TOKEN"), patient_id=patient.id)
        body["extension"] = {NO_CARD_REASON: True}  # why, when no card results (ignored by other services, EXT-3)
        url = f"{base}/cds-services/{d['id']}"
        try:
            answer = call(session, "POST", url, auth, body=body, timeout=args.timeout)
        except requests.RequestException as exc:
            raise CliError(f"calling {url} failed: {exc.__class__.__name__}") from None
        results.append({"service": d["id"], "hook": args.hook, "hookInstance": body["hookInstance"], "status": answer.status,
                        "latency_ms": round(answer.latency_ms, 1), "prefetch": sorted(prefetch), "left_out": left_out,
                        "response": answer.body if answer.body is not None else answer.text,
                        "notes": encounter_notes(context, patient, answer.body) if answer.status != 401 else
                        explain_unauthorized(answer.headers, auth, url, config=args.config, session=session)})
    if args.json:  # always a list, one entry per service called
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        colour = use_colour(out)
        for r in results:
            out.write(render_result(r, colour=colour))
    return 0 if all(r["status"] == 200 for r in results) else 1


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
    p.add_argument("--encounter", metavar="ID",
                   help="context.encounterId: one of the patient's Encounters (default: the one the hook is about — "
                        "the inpatient stay at discharge, else an encounter in progress, the latest)")
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
    except (CliError, EhrInputError) as exc:
        print(f"cds-service fire: {exc}", file=sys.stderr)
        return 2

"""Orders, results, reports and specimens to ServiceRequest, Observation,
DiagnosticReport and Specimen, linked as the v2-to-FHIR IG's message maps link them:

- an order (ORC with its OBR) is a ServiceRequest (ORC[ServiceRequest],
  OBR[ServiceRequest]) naming the specimens of its OBR;
- a result (OBX) is an Observation (OBX[Observation]) of the order whose OBR it
  follows: based on it in a results message, its supportingInfo in an order message
  (OML_O21, ORM_O01: ServiceRequest.supportingInfo = Observation);
- a report (an OBR of ORU or OUL) is a DiagnosticReport (OBR[DiagnosticReport])
  grouping the Observations after its OBR, based on the order and naming its specimens.

Items link by the place of their OBR in the message (``OBR[2]``); a record without
those places (an older record, or a scope without them) links a result to the order
whose placer or filler number it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from engine.fhir import codes, observations, parties
from engine.fhir.elements import (
    Json,
    absent,
    compact,
    concept,
    items,
    person,
    section,
    status,
    text,
    typed_identifier,
)
from engine.fhir.entries import Context
from engine.fhir.specimens import add_specimens
from engine.fhir.times import fhir_datetime, fhir_instant

__all__ = ["ORDER_CARRIED", "REPORT_CARRIED", "add_orders_and_results"]

ORDER_CARRIED = frozenset({
    "placer_id", "filler_id", "group_id", "status", "priority", "code", "display",
    "ordered_at", "ordering_provider"})
REPORT_CARRIED = frozenset({
    "placer_id", "filler_id", "code", "display", "status", "effective_at", "issued_at",
    "interpreter"})
# Messages whose results are what the order asks about (supportingInfo), not its outcome.
_ORDER_MESSAGES = frozenset({"OML", "ORM", "OMG", "OMB", "OMI", "OMP"})


class _Order(NamedTuple):
    key: str
    fields: Mapping[str, Any]
    reference: Json


def add_orders_and_results(context: Context) -> None:
    entries, record = context.entries, context.record
    refer = {"subject": context.subject, "encounter": context.encounter}
    specimens = add_specimens(entries, record, context.subject)
    orders = [_Order(f"order/{index}", order, {"reference": entries.url(f"order/{index}")})
              for index, order in items(record, "orders") if _carries(order, ORDER_CARRIED)]
    results = [(index, result) for index, result in items(record, "results")
               if _carries(result, observations.CARRIED)]
    asked = text(section(record, "message").get("type")) in _ORDER_MESSAGES
    supporting: dict[str, list[Json]] = {}
    for index, result in results:
        order = _order_of(result, orders)
        reference = {"reference": entries.url(f"result/{index}")}
        if order is not None and asked:
            supporting.setdefault(order.key, []).append(reference)
    for order in orders:
        _add_order(context, order, specimens, supporting.get(order.key, []))
    reported: dict[str, list[Json]] = {}
    for index, result in results:
        order = _order_of(result, orders)
        group = text(result.get("order_segment")) or ""
        entries.add(f"result/{index}", observations.observation(entries, result, {
            **refer,
            "based_on": order.reference if order is not None and not asked else None,
            "specimen": next(iter(specimens.get(group, ())), None) if group else None,
        }))
        reported.setdefault(group, []).append({"reference": entries.url(f"result/{index}")})
    for index, report in items(record, "reports"):
        if _carries(report, REPORT_CARRIED):
            segment = text(report.get("segment")) or ""
            entries.add(f"report/{index}", _report(context, report, {
                **refer,
                "based_on": _order_of_report(report, orders),
                "specimens": specimens.get(segment, []) if segment else [],
                "results": reported.get(segment, []) if segment else [],
            }))


def _carries(item: Mapping[str, Any], fields: frozenset[str]) -> bool:
    return any(item.get(field) not in (None, "", [], {}) for field in fields)


def _order_of(result: Mapping[str, Any], orders: list[_Order]) -> _Order | None:
    segment = text(result.get("order_segment"))
    for order in orders:
        if segment and segment == order.fields.get("request_segment"):
            return order
    for order in orders:
        for result_key, order_key in (("order_placer_id", "placer_id"),
                                      ("order_filler_id", "filler_id")):
            if text(result.get(result_key)) and result.get(result_key) == order.fields.get(
                    order_key):
                return order
    return None


def _order_of_report(report: Mapping[str, Any], orders: list[_Order]) -> Json | None:
    segment = text(report.get("segment"))
    for order in orders:
        if segment and segment == order.fields.get("request_segment"):
            return order.reference
    for order in orders:
        for key in ("placer_id", "filler_id"):
            if text(report.get(key)) and report.get(key) == order.fields.get(key):
                return order.reference
    return None


def _add_order(context: Context, order: _Order, specimens: Mapping[str, list[Json]],
               supporting: list[Json]) -> None:
    fields = order.fields
    segment = text(fields.get("request_segment"))
    context.entries.add(order.key, compact({
        "resourceType": "ServiceRequest",
        "identifier": [typed_identifier(fields.get("placer_id"), "PLAC"),
                       typed_identifier(fields.get("filler_id"), "FILL")],
        "requisition": compact({"value": text(fields.get("group_id"))}),
        **status("ServiceRequest", fields.get("status")),
        "intent": "order",
        "priority": codes.ORDER_PRIORITIES.get(fields.get("priority") or ""),
        "code": concept(fields),
        "subject": context.subject or absent(),
        "encounter": context.encounter,
        "authoredOn": fhir_datetime(fields.get("ordered_at")),
        # ORC-12: the ordering provider's PractitionerRole (the IG's ORC[ServiceRequest]
        # map), named as well, for a receiver that matches people by their number.
        "requester": compact({
            **person(fields.get("ordering_provider"), "PractitionerRole"),
            **(parties.role_of(context.entries, fields.get("ordering_provider"),
                               _ORDERING_PROVIDER) or {})}),
        "supportingInfo": supporting,
        "specimen": specimens.get(segment, []) if segment else [],
    }))


def _report(context: Context, report: Mapping[str, Any], refer: Mapping[str, Any]) -> Json:
    start, end = fhir_datetime(report.get("effective_at")), fhir_datetime(
        report.get("effective_end"))
    return compact({
        "resourceType": "DiagnosticReport",
        "identifier": [typed_identifier(report.get("placer_id"), "PLAC"),
                       typed_identifier(report.get("filler_id"), "FILL")],
        "basedOn": [refer.get("based_on")],
        **status("DiagnosticReport", report.get("status")),
        "code": concept(report) or absent(),
        "subject": refer.get("subject"),
        "encounter": refer.get("encounter"),
        "effectiveDateTime": start if not end else None,
        "effectivePeriod": compact({"start": start, "end": end}) if end else None,
        "issued": fhir_instant(report.get("issued_at")),
        "resultsInterpreter": [parties.practitioner(context.entries, report.get("interpreter"))],
        "specimen": refer.get("specimens"),
        "result": refer.get("results"),
    })


_ORDERING_PROVIDER = {"system": codes.V2 + "0443", "code": "OP"}

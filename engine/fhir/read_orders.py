"""Specimens and DiagnosticReports read back into the canonical record: the inverse of
:mod:`engine.fhir.specimens` and the report half of :mod:`engine.fhir.orders`.

FHIR has one Specimen whether an SPM or an OBR described it: one with what only an OBR
says of its specimen (an accession number, a collector) comes back in
``order_specimens``, any other in ``specimens``.
"""

from __future__ import annotations

from typing import Any

from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import coded, each, number, of_type, person, typed_value
from engine.fhir.times import canonical_time

__all__ = ["order_sections"]

_OBR_ONLY = frozenset({"accession_id", "collector"})
_SPM_ONLY = frozenset({"placer_id", "filler_id", "parent_placer_id", "body_site",
                       "collection_method", "condition"})


def order_sections(resources: list[Resource],
                   references: References) -> dict[str, list[dict[str, Any]]]:
    found = each(lambda s: _specimen(s, references), of_type(resources, "Specimen"))
    return {
        "specimens": [s for s in found if not _of_an_order(s)],
        "order_specimens": [s for s in found if _of_an_order(s)],
        "reports": each(lambda r: _report(r, references),
                        of_type(resources, "DiagnosticReport")),
    }


def _of_an_order(specimen: dict[str, Any]) -> bool:
    """An OBR's specimen (OBR[Specimen]) has an accession number or a collector, and
    nothing only an SPM says (its own numbers, parent, body site, method, condition)."""
    return bool(set(specimen) & _OBR_ONLY) and not set(specimen) & _SPM_ONLY


def _specimen(specimen: Resource, references: References) -> dict[str, Any]:
    collection = specimen.get("collection") or {}
    period = collection.get("collectedPeriod") or {}
    amount = collection.get("quantity") or {}
    return compact({
        "placer_id": typed_value(specimen.get("identifier"), "PLAC"),
        "filler_id": typed_value(specimen.get("identifier"), "FILL"),
        "accession_id": get(specimen, "accessionIdentifier", "value"),
        "type": coded(specimen.get("type")),
        "received_at": canonical_time(specimen.get("receivedTime")),
        "parent_placer_id": typed_value(
            [get(parent, "identifier") for parent in specimen.get("parent") or ()], "PLAC"),
        "collector": person(collection.get("collector"), references),
        "collected_at": canonical_time(collection.get("collectedDateTime")
                                       or period.get("start")),
        "collected_end": canonical_time(period.get("end")),
        "quantity": number(amount.get("value")),
        "quantity_units": amount.get("unit"),
        "collection_method": coded(collection.get("method")),
        "body_site": coded(collection.get("bodySite")),
        "condition": coded(first(specimen.get("condition"))),
    })


def _report(report: Resource, references: References) -> dict[str, Any]:
    coding = first(get(report, "code", "coding")) or {}
    period = report.get("effectivePeriod") or {}
    return compact({
        "placer_id": typed_value(report.get("identifier"), "PLAC"),
        "filler_id": typed_value(report.get("identifier"), "FILL"),
        "code": coding.get("code"),
        "display": coding.get("display") or get(report, "code", "text"),
        "system": coding.get("system"),
        "status": report.get("status"),
        "effective_at": canonical_time(report.get("effectiveDateTime") or period.get("start")),
        "effective_end": canonical_time(period.get("end")),
        "issued_at": canonical_time(report.get("issued")),
        "interpreter": person(first(report.get("resultsInterpreter")), references),
    })

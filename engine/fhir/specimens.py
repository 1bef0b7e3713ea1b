"""Specimens to FHIR Specimen: one per SPM (the v2-to-FHIR IG's SPM[Specimen]) and one
per OBR that describes its specimen (OBR[Specimen]). Each is grouped by the OBR it
belongs to, so the order's ServiceRequest, the report and its Observations refer to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import parties
from engine.fhir.elements import Json, compact, concept, items, number, text, typed_identifier
from engine.fhir.entries import Entries
from engine.fhir.times import fhir_datetime

__all__ = ["CARRIED", "add_specimens"]

# The canonical fields a Specimen carries (the link to its OBR and an accession number
# alone say nothing of a specimen).
CARRIED = frozenset({
    "placer_id", "filler_id", "parent_placer_id", "type", "collection_method", "body_site",
    "quantity", "collected_at", "collected_end", "received_at", "condition", "collector"})


def add_specimens(entries: Entries, record: Mapping[str, Any],
                  subject: Json | None) -> dict[str, list[Json]]:
    """Add the record's Specimens; returns References to them by their OBR's place
    (``OBR[2]``), '' for a specimen linked to no OBR."""
    by_order: dict[str, list[Json]] = {}
    # SPM first: an Observation names its OBR's first specimen, and an SPM says more
    # of it than the OBR does.
    for section in ("specimens", "order_specimens"):
        for index, specimen in items(record, section):
            if not any(specimen.get(field) not in (None, "", [], {}) for field in CARRIED):
                continue
            reference = entries.add(f"{section}/{index}", _specimen(entries, specimen, subject))
            by_order.setdefault(text(specimen.get("order_segment")) or "", []).append(reference)
    return by_order


def _specimen(entries: Entries, specimen: Mapping[str, Any], subject: Json | None) -> Json:
    start, end = (fhir_datetime(specimen.get("collected_at")),
                  fhir_datetime(specimen.get("collected_end")))
    amount = number(specimen.get("quantity"))
    return compact({
        "resourceType": "Specimen",
        "identifier": [typed_identifier(specimen.get("placer_id"), "PLAC"),
                       typed_identifier(specimen.get("filler_id"), "FILL")],
        "accessionIdentifier": compact({"value": text(specimen.get("accession_id"))}),
        "type": concept(specimen.get("type")),
        "subject": subject,
        "receivedTime": fhir_datetime(specimen.get("received_at")),
        "parent": [compact({"identifier": typed_identifier(
            specimen.get("parent_placer_id"), "PLAC")})],
        "collection": compact({
            "collector": parties.practitioner(entries, specimen.get("collector")),
            "collectedDateTime": start if not end else None,
            "collectedPeriod": compact({"start": start, "end": end}) if end else None,
            "quantity": compact({"value": amount, "unit": text(specimen.get("quantity_units"))})
            if amount is not None else None,
            "method": concept(specimen.get("collection_method")),
            "bodySite": concept(specimen.get("body_site")),
        }),
        "condition": [concept(specimen.get("condition"))],
    })

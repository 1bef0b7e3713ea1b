"""A MessageHeader and the event's Provenance read back into the canonical envelope:
the inverse of :mod:`engine.fhir.message_header` (MSH, SFT, EVN).

Only what the header says is read here; the envelope's own keys (source format, type,
control id, when it was sent) belong to the FHIR document as received.
"""

from __future__ import annotations

from typing import Any

from engine.fhir import codes
from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import coded_in, endpoint_id, organization, person, universal_id
from engine.fhir.times import canonical_time

__all__ = ["header_fields"]

_EVENT_SYSTEM = codes.V2 + "0003"
_PROCESSING_SYSTEM = codes.V2 + "0103"
_REASON_SYSTEM = codes.V2 + "0062"


def header_fields(resources: list[Resource], references: References) -> dict[str, Any]:
    """The envelope fields a MessageHeader and a Provenance of the event hold."""
    header = next((r for r in resources if r.get("resourceType") == "MessageHeader"), None)
    provenance = next((r for r in resources if r.get("resourceType") == "Provenance"), None)
    found: dict[str, Any] = {}
    if header is not None:
        found.update(_header(header, references))
    if provenance is not None:
        found.update(_provenance(provenance, references))
    return found


def _header(header: Resource, references: References) -> dict[str, Any]:
    source = header.get("source") or {}
    destination = first(header.get("destination")) or {}
    sender, sender_id = _facility(header.get("sender"), references)
    receiver, receiver_id = _facility(destination.get("receiver"), references)
    meta = header.get("meta") or {}
    return compact({
        "event": get(header, "eventCoding", "code")
        if get(header, "eventCoding", "system") == _EVENT_SYSTEM else None,
        "sending_application": source.get("name"),
        "sending_application_id": endpoint_id(source.get("endpoint")),
        "sending_facility": sender,
        "sending_facility_id": sender_id,
        "receiving_application": destination.get("name")
        or _device_name(destination.get("target"), references),
        "receiving_application_id": endpoint_id(destination.get("endpoint")),
        "receiving_facility": receiver,
        "receiving_facility_id": receiver_id,
        "security": get(first(meta.get("security")), "display"),
        "processing_id": next((tag.get("code") for tag in meta.get("tag") or ()
                               if tag.get("system") == _PROCESSING_SYSTEM), None),
        "software": compact({"product": source.get("software"),
                             "version": source.get("version")}),
    })


def _provenance(provenance: Resource, references: References) -> dict[str, Any]:
    agent = first(provenance.get("agent")) or {}
    who = references.resolve(agent.get("who"))
    facility, facility_id = _facility(agent.get("onBehalfOf"), references)
    return compact({
        "recorded_at": canonical_time(provenance.get("recorded")),
        "event_occurred_at": canonical_time(provenance.get("occurredDateTime")),
        "event_reason": coded_in(provenance.get("reason"), _REASON_SYSTEM),
        # The agent is the operator only when it is a person (EVN-5); otherwise the
        # encoder named the sending application or facility, already in the header.
        "operator": person(agent.get("who"), references)
        if who is not None and who.get("resourceType") == "Practitioner" else None,
        "event_facility": facility,
        "event_facility_id": facility_id,
    })


def _facility(reference: Any, references: References) -> tuple[str | None, str | None]:
    """(name, universal id) of an Organization the header names."""
    target = references.resolve(reference)
    if target is None or target.get("resourceType") != "Organization":
        return None, None
    name, _ = organization(reference, references)
    return name, universal_id(first(target.get("identifier")))


def _device_name(reference: Any, references: References) -> str | None:
    target = references.resolve(reference)
    return get(first(get(target, "deviceName")), "name") if target is not None else None

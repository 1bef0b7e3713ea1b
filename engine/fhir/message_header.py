"""The message envelope (MSH, SFT, EVN) as FHIR: a MessageHeader (the IG's
MSH[MessageHeader] and SFT[MessageHeader] maps), the Organizations and Devices it
names (MSH-4/MSH-6, MSH-3/MSH-5), and a Provenance for the event (EVN[Provenance]).

MessageHeader.source.endpoint and destination.endpoint are required in R4; HL7 v2 has
an application's universal ID at most (MSH-3.2, an OID), so without one the endpoint
carries a data-absent-reason rather than a made-up URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.elements import absent, compact, section, text
from engine.fhir.entries import Context, Json
from engine.fhir.parties import device, organization, practitioner
from engine.fhir.times import fhir_datetime, fhir_instant

__all__ = ["add_message_header", "add_provenance"]

_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_EVENT_SYSTEM = codes.V2 + "0003"
_PROCESSING_SYSTEM = codes.V2 + "0103"


def add_message_header(context: Context) -> None:
    message = section(context.record, "message")
    event = text(message.get("event"))
    if not event and not text(message.get("sending_application")):
        return  # not a message's record (a task outcome, a bare FHIR resource)
    if not context.entries.entries:
        return  # a header heading nothing tells a receiver nothing
    entries = context.entries
    sender = _organization(context, message, "sending_facility")
    receiver = _organization(context, message, "receiving_facility")
    target = _device(context, message, "receiving_application")
    source_device = _device(context, message, "sending_application")
    if source_device:
        context.made["source_device"] = source_device
    if sender:
        context.made["sender"] = sender
    software = section(message, "software")
    header = compact({
        "resourceType": "MessageHeader",
        "meta": compact({
            "security": [compact({"display": text(message.get("security"))})],
            "tag": [compact({"system": _PROCESSING_SYSTEM,
                             "code": text(message.get("processing_id"))})]
            if text(message.get("processing_id")) else None,
        }),
        "eventCoding": compact({"system": _EVENT_SYSTEM, "code": event}) if event else None,
        "destination": [compact({
            "name": text(message.get("receiving_application")),
            "target": target,
            **_endpoint(message.get("receiving_application_id")),
            "receiver": receiver,
        })] if target or receiver else None,
        "sender": sender,
        "source": compact({
            "name": text(message.get("sending_application")),
            "software": text(software.get("product")),
            "version": text(software.get("version")),
            **_endpoint(message.get("sending_application_id")),
        }),
        "focus": [context.subject, context.encounter],
    })
    if "eventCoding" not in header:
        header["eventUri"] = "urn:switchboard:unknown-event"
    context.made["message_header"] = entries.add("message-header", header)


def add_provenance(context: Context) -> None:
    """The event's Provenance: when it was recorded and happened, why, by whom, where;
    its targets are the resources the message made."""
    message = section(context.record, "message")
    operator = practitioner(context.entries, message.get("operator"))
    agent = operator or context.made.get("source_device") or context.made.get("sender")
    targets = [{"reference": entry["fullUrl"]} for entry in context.entries.entries
               if entry["resource"]["resourceType"] not in _NOT_TARGETS]
    occurred = fhir_datetime(message.get("event_occurred_at"))
    recorded = fhir_instant(message.get("recorded_at")) or fhir_instant(message.get("sent_at"))
    reason = text(message.get("event_reason"))
    if not targets or not (occurred or recorded or reason or operator):
        return
    event = text(message.get("event"))
    place = organization(context.entries, message.get("event_facility"),
                         message.get("event_facility_id"))
    context.entries.add("provenance", compact({
        "resourceType": "Provenance",
        "target": targets,
        "occurredDateTime": occurred,
        **({"recorded": recorded} if recorded else {"_recorded": absent()}),
        "activity": compact({"coding": [{"system": _EVENT_SYSTEM, "code": event}]})
        if event else None,
        "reason": [compact({"coding": [{"system": codes.V2 + "0062", "code": reason}]})]
        if reason else None,
        "agent": [compact({"who": agent, "onBehalfOf": place})] if agent
        else [{"who": absent()}],
    }))


# A Provenance says where the message's resources came from; the parties it names and
# the header itself are not what the event made.
_NOT_TARGETS = frozenset({"MessageHeader", "Provenance", "Device", "Organization",
                          "Practitioner", "Location"})


def _organization(context: Context, message: Mapping[str, Any], field: str) -> Json | None:
    number, authority = _universal_id(message.get(f"{field}_id"))
    return organization(context.entries, message.get(field), number, authority)


def _device(context: Context, message: Mapping[str, Any], field: str) -> Json | None:
    number, authority = _universal_id(message.get(f"{field}_id"))
    if not text(message.get(field)):
        return None
    return device(context.entries, message.get(field), authority=authority or None,
                  number=number)


def _universal_id(value: Any) -> tuple[str | None, str | None]:
    """An HD's universal ID as an identifier value and system: an OID as a URN (the
    IG's HD[Organization] map), anything else as sent, with no system."""
    found = text(value)
    if found and _OID.fullmatch(found):
        return f"urn:oid:{found}", "urn:ietf:rfc:3986"
    return found, None


def _endpoint(value: Any) -> Json:
    number, _ = _universal_id(value)
    if number and number.startswith("urn:oid:"):
        return {"endpoint": number}
    return {"_endpoint": absent()}

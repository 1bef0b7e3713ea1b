"""The body for ``hl7v2`` destinations: a minimised canonical record as an ER7 message.

Every canonical leaf goes back to the HL7 position the default mappings
(``rules/mappings/*.yaml``) read it from, so that converting the encoded message again
gives the same canonical values; the tables below read like those mappings reversed.
Where a mapping reads ``first_of`` several positions, the leaf goes to the first.

Minimum necessary: a section, list item or leaf the record does not hold gives no
segment, repetition or value. The only text not taken from the record is what frames
it: the envelope of this new hop (MSH-3 to MSH-7, MSH-10 and MSH-12 from the
arguments, MSH-11 ``P`` when the record has no processing id, MSH-18 when the text is
not ASCII), EVN-1/EVN-2 (event code and recorded time, required in an EVN), sequence
numbers (OBR-1, TXA-1, RGS-1), the PRD-1 role codes the referral mapping relies on,
and OBX-2 ``TX`` for document text.

What cannot come back unchanged, and why, is listed in :data:`NOT_ROUND_TRIPPED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import SwitchboardError
from engine.hl7v2.ack import hl7_timestamp
from engine.hl7v2.escape import escape
from engine.hl7v2.separators import DEFAULT

MEDIA_TYPE = "application/hl7-v2"

SEGMENT_TERMINATOR = "\r"


class EncodeError(SwitchboardError):
    """The record cannot be written as HL7 v2. The text names canonical paths, never
    values (PHI)."""


# ---- value conversion ------------------------------------------------------------------
# A converter turns one canonical leaf into escaped ER7 text; '' means "write nothing".

Convert = Callable[[Any, str], str]

_ESCAPED_NULL = DEFAULT.escape + "X22" + DEFAULT.escape + '"'
# MLLP frames a message between VT and FS, and refuses to send a message holding
# either (engine.hl7v2.mllp.encode_frame): they go as hex escapes, which the toolkit
# reads back as the same characters.
_FRAMING = {ord(char): f"{DEFAULT.escape}X{ord(char):02X}{DEFAULT.escape}" for char in "\x0b\x1c"}
# The characters the toolkit's escape() rewrites, and the framing ones. Most values
# hold none, and a regex finds that in a third of the time translate() takes.
_NEEDS_ESCAPE = re.compile(
    "[" + re.escape("".join(DEFAULT.escape_table)) + "\x0b\x1c]"
)
# The schema's datetime pattern: anything that passes holds only digits, '-', ':', 'T',
# '.' and '+', so the DTM built from it needs no escaping.
_ISO = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?([+-]\d{2}:\d{2})?)?)?)?"
)


def _escape(text: str) -> str:
    if text.isalnum():
        return text  # most codes and ids: no delimiter, and not the null '""'
    if _NEEDS_ESCAPE.search(text) is not None:
        return escape(text, DEFAULT).translate(_FRAMING)
    # '""' alone is HL7's explicit null ("delete the value"), so a value of two quote
    # characters would arrive as an instruction: write its first quote as a hex escape.
    return _ESCAPED_NULL if text == '""' else text


def _text(value: Any, where: str) -> str:
    if type(value) is str:
        return _escape(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    raise EncodeError(f"{where} must be text", hint="Check the mapping that produced it")


def _number(value: Any, where: str) -> str:
    """A number (NM); text is kept as text (the mapping keeps a non-number NM so)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    return _text(value, where)


def _number_text(value: float) -> str:
    text = repr(value)
    # NM has no exponent: 1e-05 is written 0.00001, 1e+16 as its digits.
    return format(Decimal(text), "f") if "e" in text else text


def _dtm(value: Any, where: str) -> str:
    """ISO 8601 (as hl7_to_iso writes it) back to DTM: 1988-08-18T11:26+02:15 ->
    198808181126+0215."""
    if type(value) is not str or _ISO.fullmatch(value) is None:
        raise EncodeError(
            f"{where} is not an ISO 8601 date/time",
            hint="Expected YYYY[-MM[-DD[Thh[:mm[:ss[.f]]][+hh:mm]]]] as the schema says",
        )
    day, _, time = value.partition("T")
    return day.replace("-", "") + time.replace(":", "")


def _yes_no(value: Any, where: str) -> str:
    if type(value) is bool:
        return "Y" if value else "N"
    raise EncodeError(f"{where} must be true or false")


def _code_of(table: Mapping[str, str]) -> Convert:
    """A normalised value back to the HL7 code it came from; nothing when the table has
    no code for it (writing a guess would be data the record does not hold)."""

    def convert(value: Any, where: str) -> str:
        code = table.get(value) if type(value) is str else None
        return _escape(code) if code else ""

    return convert


# The official v2-to-FHIR concept maps (rules/mappings/concept-maps/) inverted: for each
# normalised value, the first HL7 code that maps to it. Used only when the record kept
# the normalised value without the code as sent (a scope with patient.gender but not
# patient.sex_code); a test checks these against the maps themselves.
REVERSE_TABLES: Mapping[str, Mapping[str, str]] = {
    "administrative-sex": {"female": "F", "male": "M", "other": "O", "unknown": "U"},
    "patient-class": {
        "EMER": "E", "IMP": "I", "AMB": "O", "PRENC": "P",
        "R": "R", "B": "B", "C": "C", "N": "N", "U": "U",
    },
    "name-type": {
        "old": "BAD", "usual": "D", "official": "L", "maiden": "M",
        "anonymous": "MSK", "nickname": "N", "temp": "NAV",
    },
    "order-status": {
        "revoked": "CA", "completed": "CM", "entered-in-error": "ER",
        "on-hold": "HD", "active": "IP",
    },
    "observation-status": {
        "amended": "A", "corrected": "C", "entered-in-error": "D",
        "final": "F", "preliminary": "P", "cancelled": "X",
    },
    "appointment-status": {
        "pending": "Pending", "waitlist": "Waitlist", "booked": "Booked",
        "checked-in": "Started", "fulfilled": "Complete", "cancelled": "Cancelled",
        "entered-in-error": "Deleted", "noshow": "Noshow",
    },
}

# ---- placement tables ------------------------------------------------------------------
# One row per canonical leaf: (path within the section, HL7 position[, converter]).
# ``[*]`` on both sides makes a repeating field from a list. Rows aimed at the same
# position are alternatives: the first that has a value wins (the code as sent before
# the code recovered from the normalised value).

Row = tuple[str, str] | tuple[str, str, Convert]
_POSITION = re.compile(r"([A-Z][A-Z0-9]{2})-(\d+)(\[\*\])?(?:\.(\d+))?")
_Fields = list[list[list[str]] | None]
"""Indexed by field number: None, or the repetitions, each a list of its components'
escaped text (component n at n - 1). Index 0 is unused: it stands for the segment ID."""
_Placement = tuple[int, int, int, Convert, str, bool]
"""Field; component index (component - 1); how many components the field has in this
table (so a repetition is allocated once); converter; canonical path (for errors);
and whether it is a fallback that gives way to a value already at that position."""


class _Node:
    """What to write for the members of one canonical object. Encoding walks the
    members the record holds, so absent fields cost nothing."""

    __slots__ = ("leaves", "lists", "objects")

    def __init__(self) -> None:
        self.leaves: dict[str, list[_Placement]] = {}
        self.objects: dict[str, tuple[_Node, str]] = {}
        # A list makes a repeating field; a list of scalars has its placements at "".
        self.lists: dict[str, tuple[int, _Node, str]] = {}

    def child(self, key: str, where: str) -> _Node:
        if key not in self.objects:
            self.objects[key] = (_Node(), where)
        return self.objects[key][0]

    def repeat(self, key: str, field: int, where: str) -> _Node:
        if key not in self.lists:
            self.lists[key] = (field, _Node(), where)
        return self.lists[key][1]


class _Spec:
    """One segment's compiled rows, for one canonical section (or list item)."""

    __slots__ = ("root", "segment_id", "width")

    def __init__(self, segment_id: str, section: str, rows: Sequence[Row]) -> None:
        self.segment_id = segment_id
        self.root = _Node()
        parsed = []
        for row in rows:
            path, position = row[0], row[1]
            match = _POSITION.fullmatch(position)
            if match is None or match[1] != segment_id or ("[*]" in path) != bool(match[3]):
                raise ValueError(f"placement row {row[:2]} does not fit {segment_id}")
            convert = row[2] if len(row) == 3 else _text
            parsed.append((path, int(match[2]), int(match[4] or 1), convert))
        sizes: dict[int, int] = {}
        for _, field, component, _ in parsed:
            sizes[field] = max(sizes.get(field, 0), component)
        self.width = max([2, *sizes]) + 1  # room for field 1, which several number
        claimed: dict[tuple[int, int], int] = {}
        for path, field, component, convert in parsed:
            # The first row aimed at a position wins; one later row may be its fallback.
            claims = claimed[field, component] = claimed.get((field, component), 0) + 1
            if claims > 2:
                raise ValueError(f"{segment_id}-{field}.{component} has two fallbacks")
            placement = (field, component - 1, sizes[field], convert, f"{section}.{path}",
                         claims == 2)
            self._place(path, field, section, placement)

    def blank(self) -> _Fields:
        return [None] * self.width

    def _place(self, path: str, field: int, section: str, placement: _Placement) -> None:
        node, where = self.root, section
        list_key, each, rest = path.partition("[*]")
        if each:
            for key in list_key.split(".")[:-1]:
                where += f".{key}"
                node = node.child(key, where)
            last = list_key.split(".")[-1]
            node = node.repeat(last, field, f"{where}.{last}")
            where += f".{last}[*]"
            path = rest.lstrip(".")
        keys = path.split(".")
        for key in keys[:-1]:
            where += f".{key}"
            node = node.child(key, where)
        node.leaves.setdefault(keys[-1], []).append(placement)


def _person(path: str, position: str) -> list[Row]:
    """A person (XCN): id, family, given, suffix, prefix, assigning authority (XCN-9)."""
    return [
        (f"{path}.id", f"{position}.1"),
        (f"{path}.family", f"{position}.2"),
        (f"{path}.given", f"{position}.3"),
        (f"{path}.suffix", f"{position}.5"),
        (f"{path}.prefix", f"{position}.6"),
        (f"{path}.assigning_authority", f"{position}.9"),
    ]


def _coded(path: str, position: str) -> list[Row]:
    """A coded value (CWE/CE): code, display, coding system."""
    return [
        (f"{path}.code", f"{position}.1"),
        (f"{path}.display", f"{position}.2"),
        (f"{path}.system", f"{position}.3"),
    ]


def _identifiers(path: str, position: str) -> list[Row]:
    """A repeating CX: value, assigning authority (CX-4.1), identifier type (CX-5)."""
    return [
        (f"{path}[*].value", f"{position}[*].1"),
        (f"{path}[*].assigning_authority", f"{position}[*].4"),
        (f"{path}[*].type", f"{position}[*].5"),
    ]


_REVERSE = REVERSE_TABLES

EVN = _Spec("EVN", "message", [
    ("event_reason", "EVN-4"),
    *_person("operator", "EVN-5"),
    ("event_occurred_at", "EVN-6", _dtm),
])

PID = _Spec("PID", "patient", [
    *_identifiers("identifiers", "PID-3"),
    ("names[*].family", "PID-5[*].1"),
    ("names[*].given", "PID-5[*].2"),
    ("names[*].middle", "PID-5[*].3"),
    ("names[*].suffix", "PID-5[*].4"),
    ("names[*].prefix", "PID-5[*].5"),
    ("names[*].use_code", "PID-5[*].7"),
    ("names[*].use", "PID-5[*].7", _code_of(_REVERSE["name-type"])),
    ("mothers_maiden_name", "PID-6.1"),
    ("birth_date", "PID-7", _dtm),
    ("sex_code", "PID-8"),
    ("gender", "PID-8", _code_of(_REVERSE["administrative-sex"])),
    *_coded("race", "PID-10"),
    ("addresses[*].line1", "PID-11[*].1"),
    ("addresses[*].line2", "PID-11[*].2"),
    ("addresses[*].city", "PID-11[*].3"),
    ("addresses[*].state", "PID-11[*].4"),
    ("addresses[*].postal_code", "PID-11[*].5"),
    ("addresses[*].country", "PID-11[*].6"),
    ("addresses[*].type", "PID-11[*].7"),
    # The mapping reads PID-13 and PID-14 into one list; PID-13 alone keeps its order.
    ("telecom[*].value", "PID-13[*].1"),
    ("telecom[*].use", "PID-13[*].2"),
    ("telecom[*].equipment", "PID-13[*].3"),
    ("telecom[*].email", "PID-13[*].4"),
    *_coded("language", "PID-15"),
    *_coded("marital_status", "PID-16"),
    *_coded("religion", "PID-17"),
    ("account_number", "PID-18.1"),
    *_coded("ethnicity", "PID-22"),
    ("deceased_at", "PID-29", _dtm),
    ("deceased", "PID-30", _yes_no),
])

PD1 = _Spec("PD1", "patient", [
    ("primary_facility", "PD1-3.1"),
    *_person("primary_care_provider", "PD1-4"),
])

MRG = _Spec("MRG", "merge", [
    *_identifiers("prior_identifiers", "MRG-1"),
    ("prior_account_number", "MRG-3.1"),
    ("prior_visit_number", "MRG-5.1"),
])

_LOCATION = (("point_of_care", 1), ("room", 2), ("bed", 3), ("facility", 4),
             ("building", 7), ("floor", 8), ("description", 9))

PV1 = _Spec("PV1", "encounter", [
    ("class_code", "PV1-2"),
    ("class", "PV1-2", _code_of(_REVERSE["patient-class"])),
    *[(f"location.{key}", f"PV1-3.{n}") for key, n in _LOCATION],
    ("admission_type", "PV1-4"),
    *[(f"prior_location.{key}", f"PV1-6.{n}") for key, n in _LOCATION],
    *_person("attending", "PV1-7"),
    *_person("referring", "PV1-8"),
    ("hospital_service", "PV1-10"),
    ("visit_number", "PV1-19.1"),
    ("discharge_disposition", "PV1-36"),
    ("admit_at", "PV1-44", _dtm),
    ("discharge_at", "PV1-45", _dtm),
])

# An order is an ORC with its OBR: the ORC mapping reads ORC first and the OBR after it.
# The ids go to both, because results find their order through OBR-2 and OBR-3.
ORC = _Spec("ORC", "orders[*]", [
    ("control", "ORC-1"),
    ("placer_id", "ORC-2.1"),
    ("filler_id", "ORC-3.1"),
    ("group_id", "ORC-4.1"),
    ("status_code", "ORC-5"),
    ("status", "ORC-5", _code_of(_REVERSE["order-status"])),
    ("ordered_at", "ORC-9", _dtm),
    *_person("ordering_provider", "ORC-12"),
    ("ordering_facility", "ORC-21.1"),
])

OBR = _Spec("OBR", "orders[*]", [
    ("placer_id", "OBR-2.1"),
    ("filler_id", "OBR-3.1"),
    ("code", "OBR-4.1"),
    ("display", "OBR-4.2"),
    ("system", "OBR-4.3"),
    ("priority", "OBR-5"),
    ("specimen_collected_at", "OBR-7", _dtm),
])

# A result whose ids match no order in the record: an OBR with just those ids.
RESULT_OBR = _Spec("OBR", "results[*]", [
    ("order_placer_id", "OBR-2.1"),
    ("order_filler_id", "OBR-3.1"),
])

# OBX-2 and OBX-5 come from the result's value: see _value_fields.
OBX = _Spec("OBX", "results[*]", [
    ("set_id", "OBX-1"),
    ("code", "OBX-3.1"),
    ("display", "OBX-3.2"),
    ("system", "OBX-3.3"),
    ("units", "OBX-6.1"),
    ("reference_range", "OBX-7"),
    ("abnormal_flags[*]", "OBX-8[*].1"),
    ("status_code", "OBX-11"),
    ("status", "OBX-11", _code_of(_REVERSE["observation-status"])),
    ("observed_at", "OBX-14", _dtm),
])

SCH = _Spec("SCH", "appointments[*]", [
    ("placer_id", "SCH-1.1"),
    ("filler_id", "SCH-2.1"),
    *_coded("reason", "SCH-6"),
    *_coded("type", "SCH-8"),
    ("duration_minutes", "SCH-9", _number),
    ("start", "SCH-11.4", _dtm),
    ("end", "SCH-11.5", _dtm),
    ("status_code", "SCH-25"),
    ("status", "SCH-25", _code_of(_REVERSE["appointment-status"])),
])

AIL = _Spec("AIL", "appointments[*]", [("location", "AIL-3.1")])
AIP = _Spec("AIP", "appointments[*]", _person("provider", "AIP-3"))

RF1 = _Spec("RF1", "referrals[*]", [
    ("status", "RF1-1.1"),
    ("priority", "RF1-2.1"),
    ("type", "RF1-3.1"),
    ("category", "RF1-5.1"),
    ("id", "RF1-6.1"),
    ("effective_at", "RF1-7", _dtm),
    ("expires_at", "RF1-8", _dtm),
    ("reason", "RF1-10.1"),
    ("external_id", "RF1-11.1"),
])


def _provider(role: str) -> _Spec:
    """PRD: the name (XPN) in PRD-2, the identifier in PRD-7."""
    return _Spec("PRD", f"referrals[*].{role}", [
        ("family", "PRD-2.1"),
        ("given", "PRD-2.2"),
        ("suffix", "PRD-2.4"),
        ("prefix", "PRD-2.5"),
        ("id", "PRD-7.1"),
    ])


# The referral mapping takes the first PRD as the referring provider and the second as
# the one referred to; PRD-1 says so to the receiver too (table 0286).
REFERRAL_PROVIDERS = (("referred_by", "RP", _provider("referred_by")),
                      ("referred_to", "RT", _provider("referred_to")))

TXA = _Spec("TXA", "documents[*]", [
    ("type", "TXA-2.1"),
    ("activity_at", "TXA-4", _dtm),
    ("created_at", "TXA-6", _dtm),
    *_person("author", "TXA-9"),
    ("id", "TXA-12.1"),
    ("filename", "TXA-16"),
    ("status", "TXA-17"),
    ("availability", "TXA-19"),
])

# Message types whose structures carry an EVN (written even when the record holds no
# EVN field, as its EVN-1 and EVN-2 frame the event).
_EVN_TYPES = frozenset({"ADT", "BAR", "DFT", "MDM"})

# ---- what does not come back -----------------------------------------------------------

_UNREAD_PERSON = "written to its standard XCN position, which the mapping does not read"
_UNCODED = ("without the code as sent, not written when the concept map has no HL7 v2 "
            "code for the normalised value")

# What the FHIR breadth work added to the canonical record and this encoder does not
# write yet: whole sections (AL1, DG1, PR1, NK1, GT1, IN1, RXA, RXO, RXE, RXD, SPM,
# ROL...) and new fields of the sections it writes.
NOT_WRITTEN: tuple[str, ...] = (
    "message.sending_application_id", "message.sending_facility_id",
    "message.receiving_application_id", "message.receiving_facility_id", "message.security",
    "message.recorded_at", "message.event_facility", "message.event_facility_id",
    "message.software",
    "patient.ssn", "patient.drivers_license", "patient.birth_place", "patient.multiple_birth",
    "patient.birth_order", "patient.disability_identifiers", "patient.mother_identifiers",
    "patient.account_assigning_authority", "patient.account_number_type",
    "encounter.consulting", "encounter.admitting", "encounter.episode_identifier",
    "orders[*].request_segment",
    "results[*].order_segment", "results[*].units_display", "results[*].units_system",
    "results[*].interpretations", "results[*].observers", "results[*].method",
    "results[*].device_id", "results[*].device_authority", "results[*].body_site",
    "results[*].performing_organization", "results[*].medical_director",
    "results[*].value.repetitions",
    "appointments[*].service_type", "appointments[*].personnel", "appointments[*].places",
    "appointments[*].equipment", "appointments[*].placer_contact",
    "appointments[*].filler_contact",
    "allergies", "diagnoses", "problems", "procedures", "related_persons", "guarantors",
    "coverages", "immunizations", "medication_orders", "pharmacy_orders",
    "medication_dispenses", "specimens", "order_specimens", "reports", "roles",
)

NOT_ROUND_TRIPPED: Mapping[str, str] = {
    **{path: "not written: the HL7 v2 encoder does not write it yet" for path in NOT_WRITTEN},
    "message.source_format": "the mapping sets it to hl7v2: the record now comes from v2",
    "message.control_id": "a new hop: MSH-10 is the control_id argument",
    "message.sent_at": "a new hop: MSH-7 is the sent_at argument",
    "message.sending_application": "a new hop: MSH-3 is an argument",
    "message.sending_facility": "a new hop: MSH-4 is an argument",
    "message.receiving_application": "a new hop: MSH-5 is an argument",
    "message.receiving_facility": "a new hop: MSH-6 is an argument",
    "message.version": "a new hop: MSH-12 is the version argument",
    "message.processing_id": "P when the record has none (MSH-11 is required)",
    "message.accept_ack": "not written: the acknowledgement mode of the new hop belongs "
    "to the outbound connection, not to the sender of the original",
    "message.application_ack": "not written, as accept_ack",
    "message.operator.assigning_authority": _UNREAD_PERSON,
    "patient.primary_care_provider.suffix": _UNREAD_PERSON,
    "patient.primary_care_provider.prefix": _UNREAD_PERSON,
    "patient.primary_care_provider.assigning_authority": _UNREAD_PERSON,
    "patient.telecom[*].value": "an item with an email but no value comes back with the "
    "email as its value (the mapping reads XTN-4 when XTN-1 is empty)",
    "encounter.status": "not written: the mapping derives it from MSH-9.2 for ADT only",
    "encounter.class": _UNCODED + " (FLD, HH, ACUTE, NONAC, OBSENC, SS, VR)",
    "encounter.attending.assigning_authority": _UNREAD_PERSON,
    "encounter.referring.assigning_authority": _UNREAD_PERSON,
    "encounter.prior_location.building": "written to PV1-6.7, which the mapping does not read",
    "encounter.prior_location.floor": "written to PV1-6.8, which the mapping does not read",
    "encounter.prior_location.description": "written to PV1-6.9, which the mapping does "
    "not read",
    "orders": "with no order in the record, a result's order ids (its OBR-2 and OBR-3) "
    "read back as an order of their own (the mapping for an OBR without an ORC)",
    "orders[*].status": _UNCODED,
    "orders[*].ordering_provider.suffix": _UNREAD_PERSON,
    "orders[*].ordering_provider.prefix": _UNREAD_PERSON,
    "orders[*].ordering_provider.assigning_authority": _UNREAD_PERSON,
    "results": "read back only where the results mapping applies (not in MDM, whose OBX "
    "are document text)",
    "results[*].status": _UNCODED,
    "results[*].value": "comes back as its type (OBX-2) reads OBX-5: parts another type "
    "holds (a number in an ST, a comparator in an NM) come back as that type reads "
    "them, and a value without a type as text",
    "results[*].value.attachment.data_at": "an ED's content is never in the record, so "
    "none is written: the value no longer says where it is",
    "appointments": "read back only in SIU messages (the mapping's applies_to)",
    "appointments[*].status": _UNCODED,
    "appointments[*].location": "one AIL, the first appointment's: the mapping reads the "
    "first AIL for every SCH",
    "appointments[*].provider": "one AIP, the first appointment's: the mapping reads the "
    "first AIP for every SCH (and only its id, family and given)",
    "referrals": "read back only in REF messages (the mapping's applies_to)",
    "referrals[*].referred_by": "one PRD pair, the first referral's: the mapping reads "
    "PRD[1] and PRD[2] for every RF1 (and only the family and given names)",
    "referrals[*].referred_to": "as referred_by",
    "documents": "read back only in MDM messages (the mapping's applies_to)",
    "documents[*].text": "the mapping joins every OBX of the message into each "
    "document's text, so only a single document comes back unchanged",
    "documents[*].author.suffix": _UNREAD_PERSON,
    "documents[*].author.prefix": _UNREAD_PERSON,
    "documents[*].author.assigning_authority": _UNREAD_PERSON,
    "merge": "read back only in ADT messages (the mapping's applies_to)",
    "tasks": "not written: no HL7 v2 segment carries Switchboard tasks",
}
"""Canonical paths (``[*]`` for every item) that an encode-and-convert round trip can
change, and why. Anything else comes back exactly, apart from list items with nothing
to write, which the encoder leaves out (no empty repetition or segment)."""

# ---- the message -----------------------------------------------------------------------


def encode_hl7v2(
    record: Mapping[str, Any],
    *,
    control_id: str,
    sent_at: datetime,
    sending_application: str = "SWITCHBOARD",
    sending_facility: str = "",
    receiving_application: str = "",
    receiving_facility: str = "",
    version: str = "2.5.1",
) -> str:
    """The record as an ER7 message: standard separators ``|^~\\&``, every segment
    ended by CR (send it as UTF-8: MSH-18 says so when the text is not ASCII).

    Segments in the order the usual structures put them: MSH, EVN, SCH, RF1, PRD,
    PID, PD1, MRG, PV1, the OBX under no order, ORC/OBR each followed by its OBX, TXA
    with its text, RGS, AIL, AIP. EncodeError names the canonical path of a value
    that cannot be written (never the value).
    """
    message = _section(record, "message")
    message_type = message.get("type")
    if not message_type or type(message_type) is not str:
        raise EncodeError(
            "message.type is missing: an HL7 v2 message needs a message type (MSH-9)",
            hint="Add 'message' to the connection's data scope",
        )
    timestamp = hl7_timestamp(sent_at)
    body: list[str] = []
    _envelope_segments(body, message, message_type, timestamp)
    appointments = _items(record, "appointments")
    referrals = _items(record, "referrals")
    for appointment in appointments:
        _add(body, SCH, appointment)
    _referral_segments(body, referrals)
    patient = _section(record, "patient")
    _add(body, PID, patient)
    _add(body, PD1, patient)
    _add(body, MRG, _section(record, "merge"))
    _add(body, PV1, _section(record, "encounter"))
    _order_segments(body, _items(record, "orders"), _items(record, "results"))
    _document_segments(body, _items(record, "documents"))
    _resource_segments(body, appointments)
    parties = (sending_application, sending_facility, receiving_application,
               receiving_facility)
    header = _msh(message, message_type, timestamp, control_id, version, parties)
    if not (header.isascii() and all(map(str.isascii, body))):
        header += "|" * 6 + "UNICODE UTF-8"  # MSH-13 to MSH-17 empty, then MSH-18
    body.insert(0, header)
    body.append("")
    return SEGMENT_TERMINATOR.join(body)


def _msh(
    message: Mapping[str, Any],
    message_type: str,
    timestamp: str,
    control_id: str,
    version: str,
    parties: tuple[str, str, str, str],
) -> str:
    message_code = [_escape(message_type)]
    for key in ("event", "structure"):
        value = message.get(key)
        message_code.append(_text(value, f"message.{key}") if value else "")
    processing = message.get("processing_id") or "P"
    fields = [
        "MSH", DEFAULT.encoding_characters,
        *(_escape(party) for party in parties),
        timestamp, "", "^".join(message_code).rstrip("^"),
        _escape(control_id), _text(processing, "message.processing_id"), _escape(version),
    ]
    return "|".join(fields)


def _envelope_segments(
    body: list[str], message: Mapping[str, Any], message_type: str, timestamp: str
) -> None:
    fields = _fields(EVN, message)
    if fields is None:
        if message_type not in _EVN_TYPES:
            return
        fields = EVN.blank()
    event = message.get("event")
    if event:
        fields[1] = [[_text(event, "message.event")]]
    fields[2] = [[timestamp]]  # EVN-2, recorded date/time, is required
    body.append(_render("EVN", fields))


def _referral_segments(body: list[str], referrals: list[Any]) -> None:
    for referral in referrals:
        _add(body, RF1, referral)
    if not referrals:
        return
    providers = [
        (role, _fields(spec, _section(referrals[0], key, f"referrals[*].{key}")))
        for key, role, spec in REFERRAL_PROVIDERS
    ]
    if providers[1][1] is None:
        providers.pop()  # no one referred to: no second PRD
        if providers[0][1] is None:
            return
    for (role, fields), (_, _, spec) in zip(providers, REFERRAL_PROVIDERS, strict=False):
        fields = fields or spec.blank()
        fields[1] = [[role]]
        body.append(_render("PRD", fields))


def _document_segments(body: list[str], documents: list[Any]) -> None:
    for number, document in enumerate(documents, start=1):
        fields = _fields(TXA, document)
        text = document.get("text")
        if fields is None:
            if not text:
                continue
            fields = TXA.blank()
        fields[1] = [[str(number)]]
        body.append(_render("TXA", fields))
        if text:
            # One TX observation: the line breaks travel as \.br\, so blank lines and
            # trailing breaks survive, which one OBX per line would not.
            body.append(f"OBX|1|TX|||{_text(text, 'documents[*].text')}")


def _resource_segments(body: list[str], appointments: list[Any]) -> None:
    if not appointments:
        return
    location = _fields(AIL, appointments[0])
    provider = _fields(AIP, appointments[0])
    if location is None and provider is None:
        return
    body.append("RGS|1")
    if location is not None:
        body.append(_render("AIL", location))
    if provider is not None:
        body.append(_render("AIP", provider))


# ---- orders and results ----------------------------------------------------------------


def _order_segments(body: list[str], orders: list[Any], results: list[Any]) -> None:
    """ORC/OBR pairs with each result after the OBR it belongs to, keeping the order of
    both lists. A result names its order by the OBR's placer and filler ids; a result
    whose ids match no order still gets an OBR holding just those ids (nothing else
    is known of it), and a result with no ids goes before the first OBR."""
    written = _OrderWriter(body, orders)
    for result in results:
        if not result:
            continue
        fields = _fields(OBX, result)
        value = _value_fields(result.get("value"))
        if value is not None:
            fields = fields or OBX.blank()
            fields[2], fields[5] = value
        key = (result.get("order_placer_id") or None, result.get("order_filler_id") or None)
        if fields is None:
            if key == (None, None):
                continue
            fields = OBX.blank()  # it says which order has a result, and no more
        written.under(key, result)
        body.append(_render("OBX", fields))
    written.rest()


_VALUE = "results[*].value"
_SN_TEXT = re.compile(r"(-?[0-9.]+)([+.])([0-9]*)")  # 2+ or 1.5, as SN-2, SN-3, SN-4
_RP = ("pointer", "application", "data_type", "subtype")
_ED = ("application", "data_type", "subtype", "encoding")


def _value_fields(value: Any) -> tuple[list[list[str]] | None, list[list[str]]] | None:
    """OBX-2 and OBX-5 for a canonical result value: the components the mapping reads
    back for its type (engine.model.observation_value), escaped; None for no value."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EncodeError(f"{_VALUE} must be an object")
    components = _value_components(value)
    if not any(components):
        return None
    type_code = value.get("type")
    type_field = [[_text(type_code, f"{_VALUE}.type")]] if type_code else None
    return type_field, [components]


def _value_components(value: Mapping[str, Any]) -> list[str]:
    type_code = value.get("type")
    if value.get("number") is not None:
        number = _value_number(value, "number")
        if type_code != "SN":
            return [number]
        return [_text(value.get("comparator") or "", f"{_VALUE}.comparator"), number]
    if value.get("low") is not None or value.get("high") is not None:
        return ["", _value_number(value, "low"), "-", _value_number(value, "high")]
    if value.get("numerator") is not None or value.get("denominator") is not None:
        return ["", _value_number(value, "numerator"), ":",
                _value_number(value, "denominator")]
    if value.get("code") is not None or type_code in ("CWE", "CE", "CNE", "CF"):
        code = _section(value, "code", f"{_VALUE}.code")
        parts = [code.get(key) or "" for key in ("code", "display", "system")]
        return [*(_text(part, f"{_VALUE}.code") for part in parts), *[""] * 5,
                _text(value.get("text") or "", f"{_VALUE}.text")]
    if value.get("datetime") is not None:
        return [_dtm(value["datetime"], f"{_VALUE}.datetime")]
    if value.get("attachment") is not None:
        attachment = _section(value, "attachment", f"{_VALUE}.attachment")
        names = _RP if type_code == "RP" or "pointer" in attachment else _ED
        return [_text(attachment.get(name) or "", f"{_VALUE}.attachment.{name}")
                for name in names]
    text = value.get("text")
    if text is None:
        return []
    sn = _SN_TEXT.fullmatch(text) if type_code == "SN" and type(text) is str else None
    if sn is not None:
        return ["", *sn.groups()]
    return [_text(text, f"{_VALUE}.text")]


def _value_number(value: Mapping[str, Any], key: str) -> str:
    number = value.get(key)
    if number is None:
        return ""  # a range or ratio missing one end
    if not isinstance(number, (int, float)) or isinstance(number, bool):
        raise EncodeError(f"{_VALUE}.{key} must be a number")
    return _number_text(number)


class _OrderWriter:
    """Writes orders as results ask for them; tracks the OBR the next OBX falls under."""

    def __init__(self, body: list[str], orders: list[Any]) -> None:
        self.body = body
        self.orders = [order for order in orders if order]
        self.keys = [
            (order.get("placer_id") or None, order.get("filler_id") or None)
            for order in self.orders
        ]
        self.next = 0  # orders before this index are written
        self.current: tuple[Any, Any] | None = None  # ids of the last OBR; None: no OBR
        self.obr_count = 0

    def under(self, key: tuple[Any, Any], result: Mapping[str, Any]) -> None:
        if self.current == key:
            return
        try:
            found = self.keys.index(key, self.next)
        except ValueError:
            found = -1
        if found >= 0:
            self._write_orders(found + 1)
        elif self.current is None and key == (None, None):
            return  # no order yet: an OBX that belongs to none goes here
        else:
            self._obr(_fields(RESULT_OBR, result) or OBR.blank())
        self.current = key

    def rest(self) -> None:
        self._write_orders(len(self.orders))

    def _write_orders(self, end: int) -> None:
        for order in self.orders[self.next:end]:
            self.body.append(_render("ORC", _fields(ORC, order) or ORC.blank()))
            self._obr(_fields(OBR, order) or OBR.blank())
            self.current = self.keys[self.next]
            self.next += 1

    def _obr(self, fields: _Fields) -> None:
        self.obr_count += 1
        fields[1] = [[str(self.obr_count)]]
        self.body.append(_render("OBR", fields))


# ---- building segments from tables -----------------------------------------------------


def _section(record: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EncodeError(f"{where or key} must be an object")
    return value


def _items(record: Mapping[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    if not value:
        return []
    if type(value) is not list or not all(isinstance(item, Mapping) for item in value):
        raise EncodeError(f"{key} must be a list of objects")
    return value


def _add(body: list[str], spec: _Spec, section: Mapping[str, Any]) -> None:
    fields = _fields(spec, section)
    if fields is not None:
        body.append(_render(spec.segment_id, fields))


def _fields(spec: _Spec, section: Mapping[str, Any]) -> _Fields | None:
    """The section's values in the segment's fields; None when it has none."""
    fields = spec.blank()
    _walk(spec.root, section, fields)
    return fields if any(fields) else None


def _walk(node: _Node, members: Mapping[str, Any], fields: _Fields) -> None:
    leaves, objects, lists = node.leaves, node.objects, node.lists
    for key, value in members.items():
        if value is None or value == "":
            continue
        places = leaves.get(key)
        if places is not None:
            for field, index, size, convert, where, fallback in places:
                if convert is _text and type(value) is str:
                    # The common case, inlined: plain text needs no escaping.
                    text = value if value.isalnum() else _escape(value)
                else:
                    text = convert(value, where)
                if not text:
                    continue
                reps = fields[field]
                if reps is None:
                    components = [""] * size
                    components[index] = text
                    fields[field] = [components]
                else:
                    components = reps[0]
                    if not (fallback and components[index]):
                        components[index] = text
        elif key in objects:
            child, where = objects[key]
            if type(value) is not dict and not isinstance(value, Mapping):
                raise EncodeError(f"{where} must be an object")
            _walk(child, value, fields)
        elif key in lists:
            _repeat(lists[key], value, fields)


def _repeat(target: tuple[int, _Node, str], items: Any, fields: _Fields) -> None:
    field, item_node, where = target
    if type(items) is not list:
        raise EncodeError(f"{where} must be a list")
    reps = []
    for item in items:
        cells: _Fields = [None] * (field + 1)
        is_object = type(item) is dict or isinstance(item, Mapping)
        _walk(item_node, item if is_object else {"": item}, cells)
        found = cells[field]
        if found is not None:
            reps.append(found[0])
    if reps:
        fields[field] = reps


def _render(segment_id: str, fields: _Fields) -> str:
    # Escaped values hold no delimiter, so every trailing one is an empty position.
    parts = [
        "~".join(["^".join(rep).rstrip("^") for rep in reps]) if reps else ""
        for reps in fields
    ]
    parts[0] = segment_id
    text = "|".join(parts).rstrip("|")
    return text if len(text) > 3 else text + "|"  # an empty ORC is "ORC|", not "ORC"

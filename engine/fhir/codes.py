"""Code tables between the canonical record and FHIR R4, read in both directions.

The canonical record keeps HL7 v2 codes where no concept map normalised them (address
and telecom kinds, priorities, document statuses) and FHIR codes where one did (the
statuses of encounters, results, orders and appointments). Each table below is one
such crossing; :func:`reverse` reads it the other way, the first code winning.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)

V2 = "http://terminology.hl7.org/CodeSystem/v2-"
IDENTIFIER_TYPE_SYSTEM = V2 + "0203"
ABNORMAL_FLAG_SYSTEM = V2 + "0078"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

# HL7 v2 coding system names (table 0396) -> FHIR system URIs (after the v2-to-FHIR
# CodingSystem map). FHIR requires an absolute URI, so a local name no table knows
# (``L``, ``XYZ``) is not sent as a system rather than sent as a false one.
CODING_SYSTEMS = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "UCUM": "http://unitsofmeasure.org",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
    "MVX": "http://hl7.org/fhir/sid/mvx",
    "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
}
_HL7_TABLE = re.compile(r"HL7(\d{4})")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")

# Identifier types of HL7 table 0203 that Switchboard sends as codes; any other type
# travels as the identifier type's text, since claiming it in v2-0203 would be false.
IDENTIFIER_TYPES = frozenset({
    "AN", "BR", "DL", "DN", "DR", "EI", "EN", "FILL", "HC", "JHN", "LN", "MA", "MB",
    "MC", "MD", "MR", "NH", "NI", "NIIP", "NPI", "PI", "PLAC", "PN", "PPN", "PRN", "PT",
    "RN", "RRI", "SB", "SN", "SR", "SS", "TAX", "U", "UPIN", "VN", "WC", "XX",
})

# The FHIR R4 value sets of the status elements Switchboard writes; a canonical status
# outside them is not sent. The fallback fills an element FHIR requires: the value
# set's own "unknown" where it has one, else None (a data-absent-reason extension).
STATUSES: dict[str, tuple[frozenset[str], str | None]] = {
    "Encounter": (frozenset({
        "planned", "arrived", "triaged", "in-progress", "onleave", "finished",
        "cancelled", "entered-in-error", "unknown"}), "unknown"),
    "Observation": (frozenset({
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown"}), "unknown"),
    "ServiceRequest": (frozenset({
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
        "unknown"}), "unknown"),
    "DiagnosticReport": (frozenset({
        "registered", "partial", "preliminary", "final", "amended", "corrected",
        "appended", "cancelled", "entered-in-error", "unknown"}), "unknown"),
    "Appointment": (frozenset({
        "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
        "entered-in-error", "checked-in", "waitlist"}), None),
    "Immunization": (frozenset({"completed", "entered-in-error", "not-done"}), None),
    "MedicationRequest": (frozenset({
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
        "unknown"}), "unknown"),
    "MedicationDispense": (frozenset({
        "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error",
        "stopped", "declined", "unknown"}), "unknown"),
    "Task": (frozenset({
        "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
        "in-progress", "on-hold", "failed", "completed", "entered-in-error"}), None),
}

# A task's outcome (task_outcome) -> Task.status: the state chosen on completion when
# it is a Task status or one of these words for one, else what the decision itself was.
# "scheduled": the referral was accepted and its appointment booked, so it is under way.
TASK_STATES = {"declined": "rejected", "scheduled": "in-progress"}
TASK_OUTCOMES = {"completed": "completed", "approved": "accepted", "rejected": "rejected"}

GENDERS = frozenset({"male", "female", "other", "unknown"})
NAME_USES = frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"})

# XAD-7 address type (table 0190) -> (Address element, its code)
ADDRESS_KINDS: dict[str, tuple[str, str]] = {
    "H": ("use", "home"),
    "B": ("use", "work"),
    "O": ("use", "work"),
    "C": ("use", "temp"),
    "BA": ("use", "old"),
    "BI": ("use", "billing"),
    "M": ("type", "postal"),
}

# XTN-3 telecom equipment (table 0202) -> ContactPoint.system. A cell phone is a phone
# whose use is mobile.
TELECOM_SYSTEMS = {
    "PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "Internet": "email",
    "X.400": "email", "TDD": "other", "TTY": "other", "MD": "other",
}
# XTN-2 telecom use (table 0201) -> ContactPoint.use
TELECOM_USES = {"PRN": "home", "ORN": "home", "WPN": "work", "VHN": "temp"}

# Order priority (table 0027) -> ServiceRequest.priority
ORDER_PRIORITIES = {"S": "stat", "A": "asap", "R": "routine"}

# TXA-19 availability (table 0050) -> DocumentReference.status and TXA-17 completion
# (table 0271) -> DocumentReference.docStatus (after the v2-to-FHIR maps).
DOCUMENT_AVAILABILITY = {"AV": "current", "OB": "superseded", "CA": "entered-in-error"}
DOCUMENT_COMPLETION = {
    "AU": "final", "LA": "final", "IP": "preliminary", "DI": "preliminary",
    "DO": "preliminary", "IN": "preliminary", "PA": "preliminary",
}

# Encounter participant roles (v3 ParticipationType) for the canonical people.
# Encounter participants by their v3 ParticipationType (the IG's PV1[Encounter] map).
ENCOUNTER_ROLES = {"attending": "ATND", "referring": "REF", "consulting": "CON",
                   "admitting": "ADM"}
US_SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"


def reverse(table: Mapping[K, V]) -> dict[V, K]:
    """``table`` read from value to key; where codes share a value the first wins."""
    found: dict[V, K] = {}
    for key, value in table.items():
        found.setdefault(value, key)
    return found


def system_uri(name: str) -> str | None:
    """The FHIR system URI for an HL7 v2 coding system name, or None when there is
    none; a name that already is an absolute URI is kept."""
    if name in CODING_SYSTEMS:
        return CODING_SYSTEMS[name]
    table = _HL7_TABLE.fullmatch(name)
    if table:
        return V2 + table.group(1)
    return name if _ABSOLUTE_URI.fullmatch(name) else None


def is_absolute_uri(text: str) -> bool:
    return _ABSOLUTE_URI.fullmatch(text) is not None

"""FHIR in, acceptance over the whole corpus: each message's record, encoded as a Bundle
by Switchboard and read back by read_fhir and to_canonical, gives back the record's
content in every section, apart from what FHIR has no place for or the encoder folds
(NOT_ROUND_TRIPPED, and the value-by-value folds of ``as_fhir_keeps``)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.fhir import codes, read_fhir, to_canonical
from engine.fhir.bundle import encode_bundle
from engine.fhir.clinical import entity_identifier
from engine.fhir.concept_maps import mapped_coding
from engine.fhir.times import canonical_time, fhir_date, fhir_datetime, fhir_instant
from engine.model.canonical import canonical_errors
from tests.engine.fhir.corpus import convert
from tests.samples import CORPUS_FILES, corpus_ids

RECEIVED_AT = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)

_V2_CODE = "the HL7 v2 code the mapping keeps beside the value it normalises to; FHIR " \
    "carries the normalised value only"
_FOLDED_PLACE = "a PL is one Location whose name joins its parts: the parts cannot be " \
    "told apart again (encounter locations come back as that name, see as_fhir_keeps)"
_NOT_WRITTEN = "the FHIR encoder does not write it (no IG map names it)"
_V2_POSITION = "where a segment is in the HL7 v2 message (OBR[2]); FHIR links the " \
    "resources by reference instead"
_NEW_HOP = "the envelope of the FHIR document as received: a Bundle of its own type, " \
    "identifier and time, read as FHIR, not the HL7 v2 message it was made from"

# Canonical paths (each list item written [*]) that cannot come back from a Bundle,
# with the reason; a path stands for everything below it.
NOT_ROUND_TRIPPED: dict[str, str] = {
    "message.source_format": _NEW_HOP,
    "message.type": _NEW_HOP,
    "message.control_id": _NEW_HOP,
    "message.sent_at": _NEW_HOP + " (the transaction Bundle has no timestamp)",
    "message.version": _NEW_HOP,
    "message.structure": _NEW_HOP,
    "message.accept_ack": _NEW_HOP,
    "message.application_ack": _NEW_HOP,
    "message.software.vendor": "MessageHeader.source has software and version, no vendor",
    "patient.sex_code": _V2_CODE,
    "patient.names[*].use_code": _V2_CODE,
    "patient.race": _NOT_WRITTEN + " (US Core's race extension is a realm's)",
    "patient.ethnicity": _NOT_WRITTEN + " (US Core's ethnicity extension is a realm's)",
    "patient.religion": _NOT_WRITTEN,
    "patient.mothers_maiden_name": _NOT_WRITTEN,
    "patient.telecom": "an XTN's number and email are two ContactPoints, and an unknown "
    "device is 'other': see test_every_telephone_and_email_comes_back",
    "patient.primary_care_provider": "Patient.generalPractitioner names the person by "
    "identifier and one display of the whole name; the identifier comes back",
    "patient.disability_identifiers": "a DB1 identifier of the patient's is one of the "
    "Patient's identifiers (see as_fhir_keeps)",
    "encounter.class_code": _V2_CODE,
    "encounter.location": _FOLDED_PLACE,
    "encounter.prior_location": _FOLDED_PLACE,
    "merge.prior_visit_number": _NOT_WRITTEN,
    "orders[*].control": _V2_CODE + " (ORC-1)",
    "orders[*].status_code": _V2_CODE,
    "orders[*].request_segment": _V2_POSITION,
    "orders[*].ordering_facility": _NOT_WRITTEN,
    "orders[*].specimen_collected_at": "the time its Specimen was collected: with the "
    "Specimen, not the ServiceRequest",
    "results[*].set_id": _V2_POSITION,
    "results[*].status_code": _V2_CODE,
    "results[*].order_segment": _V2_POSITION,
    "results[*].units_system": "Quantity.system is a URI: the HL7 name comes back as one",
    "results[*].units_display": "Quantity.unit is the units' text, else their code: it "
    "comes back as the units (see as_fhir_keeps)",
    "reports[*].segment": _V2_POSITION,
    "reports[*].status_code": _V2_CODE,
    "specimens[*].order_segment": _V2_POSITION,
    "order_specimens[*].order_segment": _V2_POSITION,
    "appointments[*].status_code": _V2_CODE,
    "appointments[*].places": _FOLDED_PLACE,
    "documents[*].author": "DocumentReference.author names the person by identifier and "
    "one display of the whole name: only the identifier comes back",
    "referrals": _NOT_WRITTEN + " (a referral's ServiceRequest is the lead's to add)",
    "allergies[*].category_code": _V2_CODE,
    "allergies[*].severity_code": "AllergyIntolerance has no severity of its own (only "
    "each reaction's), and the IG maps AL1-4 to none",
    "diagnoses[*].set_id": _V2_POSITION,
    "diagnoses[*].type_code": "DG1-6 (admitting, working, final) has no Condition element "
    "in the IG's map",
    "problems[*].action_code": "PRB-1 says what to do with the problem, not what it is",
    "procedures[*].set_id": _V2_POSITION,
    "procedures[*].location": _FOLDED_PLACE,
    "immunizations[*].action_code": "RXA-21 says what to do with the record, not what it is",
    "immunizations[*].completion_status": "RXA-20 becomes Immunization.status, which the "
    "record keeps as its status",
    "immunizations[*].location": _FOLDED_PLACE,
    "medication_orders[*].control": _V2_CODE + " (ORC-1)",
    "pharmacy_orders[*].control": _V2_CODE + " (ORC-1)",
    "medication_dispenses[*].placer_id": "the dispense names its prescription by number, "
    "not the placer order",
    "related_persons[*].sex_code": _V2_CODE,
    "related_persons[*].names[*].use_code": _V2_CODE,
    "related_persons[*].telecom": "see patient.telecom",
    "related_persons[*].work_telecom": "see patient.telecom",
    "guarantors[*].sex_code": _V2_CODE,
    "guarantors[*].names[*].use_code": _V2_CODE,
    "guarantors[*].telecom": "see patient.telecom",
    "guarantors[*].work_telecom": "see patient.telecom",
    "coverages[*].plan.display": "IN1-2 is an Identifier in the IG's map: its code and "
    "system come back, not its text",
    "coverages[*].payer.addresses": _NOT_WRITTEN + " (the payer is named by name and id)",
    "coverages[*].payer.type": _NOT_WRITTEN,
    "coverages[*].subscriber.sex_code": _V2_CODE,
    "coverages[*].subscriber.names[*].use_code": _V2_CODE,
    "coverages[*].subscriber.telecom": "see patient.telecom",
    "roles[*].action": "ROL-2 says what to do with the role; a deleted one is not sent",
    "roles[*].id": "ROL-1, the role instance's id, has no PractitionerRole element",
}

# Messages where the record names two people by one number: a Practitioner is one
# resource per number (engine.fhir.parties), so the second comes back as the first.
ONE_NUMBER_TWO_NAMES = {
    "REF-I12-01.hl7": "diagnoses[*].clinician",
    "REF-I14-01.hl7": "diagnoses[*].clinician",
}

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T")
_INDEX = re.compile(r"\[\d+\]")


def read_back(record: Mapping[str, Any]) -> dict[str, Any]:
    bundle = encode_bundle(record, "message-1")
    return to_canonical(read_fhir(json.dumps(bundle).encode()), received_at=RECEIVED_AT)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_every_section_comes_back(path):
    record = convert(path)
    back = read_back(record)
    assert canonical_errors(back) == []
    skip = ONE_NUMBER_TWO_NAMES.get(path.name)
    expected, found = (comparable(as_fhir_keeps(record), skip), comparable(back, skip))
    for section in sorted({leaf.split(".")[0].split("[")[0] for leaf in expected | found}):
        assert _section(found, section) == _section(expected, section), section


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_every_telephone_and_email_comes_back(path):
    record = convert(path)
    back = read_back(record)
    for sent, returned in _people(record, back):
        values = [point.get(key) for point in sent.get("telecom", []) + sent.get(
            "work_telecom", []) for key in ("value", "email") if point.get(key)]
        came_back = [point.get("value") for point in returned.get("telecom", []) + returned.get(
            "work_telecom", [])]
        assert sorted(set(came_back)) == sorted(set(values))


def _people(record, back):
    yield record["patient"], back["patient"]
    kept = [kin for kin in record.get("related_persons", []) if _is_person(kin)]
    yield from zip(kept, back.get("related_persons", []), strict=True)


def _section(leaves: dict[str, Any], section: str) -> dict[str, Any]:
    return {path: value for path, value in leaves.items()
            if path.split(".")[0].split("[")[0] == section}


def comparable(record: Mapping[str, Any], also_skip: str | None = None) -> dict[str, Any]:
    """Leaves by path, without what cannot come back, with coding systems as FHIR names
    them and times as FHIR can hold them."""
    found = {}
    skipped = [*NOT_ROUND_TRIPPED, *([also_skip] if also_skip else [])]
    for path, value in _leaves(record, ""):
        generic = _INDEX.sub("[*]", path)
        if any(generic == skip or generic.startswith((skip + ".", skip + "["))
               for skip in skipped):
            continue
        if path.endswith(".system") and isinstance(value, str):
            value = codes.system_uri(value)
        elif isinstance(value, str) and _TIME.match(value):
            value = canonical_time(fhir_datetime(value))
        if isinstance(value, str) and not value.strip():
            value = None  # FHIR strings may not be only whitespace
        if value is not None:
            found[path] = value
    return found


def _leaves(node: Any, path: str):
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{path}[{index}]")
    else:
        yield path, node


# --- what the encoder folds, value by value -----------------------------------------


def as_fhir_keeps(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as FHIR can hold it: each fold says which element decides it."""
    kept = copy.deepcopy(dict(record))
    for section in ("results", "reports", "orders", "appointments", "allergies",
                    "diagnoses", "problems", "procedures", "immunizations", "specimens",
                    "order_specimens", "medication_orders", "pharmacy_orders",
                    "medication_dispenses", "related_persons", "guarantors", "coverages",
                    "roles", "documents"):
        kept[section] = [item for item in kept.get(section, []) if item]
    _message(kept)
    _patient(kept)
    _encounter(kept)
    _results(kept)
    _statuses(kept)
    _specimens(kept)
    _clinical(kept)
    _medication(kept)
    _people_around(kept)
    _appointments(kept)
    _uncoded(kept)
    return {key: value for key, value in kept.items() if value not in ({}, [])}


def _uncoded(node):
    """A coded value without a code is a CodeableConcept's text: its system goes."""
    if isinstance(node, dict):
        if "system" in node and "display" in node and not node.get("code"):
            node.pop("system")
        for value in node.values():
            _uncoded(value)
    elif isinstance(node, list):
        for value in node:
            _uncoded(value)


def _message(kept):
    message = kept["message"]
    # Provenance.recorded is EVN-2, else the message's time (MSH-7): an instant.
    recorded = fhir_instant(message.get("recorded_at")) or fhir_instant(message.get("sent_at"))
    message.pop("recorded_at", None)
    if recorded and _any_resource(kept):
        message["recorded_at"] = canonical_time(recorded)
    for field in ("sending_application_id", "receiving_application_id"):
        # MessageHeader endpoints are URLs: an application's universal ID only as an OID.
        if not re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", message.get(field, "")):
            message.pop(field, None)


def _any_resource(kept):
    return any(kept.get(section) for section in kept if section not in ("message", "merge"))


def _patient(kept):
    patient = kept["patient"]
    # A DB1 identifier of the patient's is one of the Patient's identifiers.
    patient["identifiers"] = patient.get("identifiers", []) + [
        {key: value for key, value in found.items() if key != "person"}
        for found in patient.get("disability_identifiers", [])
        if found.get("person") in (None, "PT")]
    if patient.get("birth_date"):
        patient["birth_date"] = fhir_date(patient["birth_date"])  # birthDate is a date
    order = patient.get("birth_order")
    if isinstance(order, int | float) and order >= 1 and order == int(order):
        patient.pop("multiple_birth", None)  # multipleBirthInteger says the order only
    else:
        patient.pop("birth_order", None)  # multipleBirth[x]: a positive integer
    for person in [patient, *kept.get("related_persons", []), *kept.get("guarantors", []),
                   *(coverage.get("subscriber", {}) for coverage in kept.get("coverages", []))]:
        _names_and_addresses(person)


def _names_and_addresses(person):
    for name in person.get("names", []):
        # HumanName.given lists the given names: without a first one, the middle is it.
        if not name.get("given") and name.get("middle"):
            name["given"] = name.pop("middle")
        if name.get("use") not in codes.NAME_USES:
            name.pop("use", None)
    for address in person.get("addresses", []):
        # Address.use and type hold table 0190's kinds FHIR knows; B and O are both work.
        kind = codes.ADDRESS_KINDS.get(address.get("type", ""))
        address.pop("type", None)
        if kind:
            address["type"] = codes.reverse(codes.ADDRESS_KINDS)[kind]
    if person.get("birth_date"):
        person["birth_date"] = fhir_date(person["birth_date"])


def _encounter(kept):
    encounter = kept.get("encounter", {})
    if encounter and not _carries_encounter(encounter):
        kept["encounter"] = {}


def _carries_encounter(encounter):
    from engine.fhir.bundle import CARRIED_FIELDS
    return any(encounter.get(field) not in (None, "", [], {})
               for field in CARRIED_FIELDS["encounter"])


def _results(kept):
    from engine.fhir.orders import ORDER_CARRIED
    orders = {order.get("request_segment", f"#{index}"): order
              for index, order in enumerate(kept.get("orders", []))
              if any(order.get(field) not in (None, "", [], {}) for field in ORDER_CARRIED)}
    for result in kept.get("results", []):
        value = result.get("value", {})
        if value.get("type") in ("RP", "ED"):
            result.pop("value")  # R4's Observation.value[x] has no Attachment
        numeric = any(key in result.get("value", {}) for key in ("number", "low", "high"))
        units = result.get("units_display") or result.get("units")
        result.pop("units", None)
        if numeric and units:
            result["units"] = units  # Quantity.unit: only a quantity has units
        if result.get("interpretations"):
            # Observation.interpretation: the mapped codes, else the flags as sent.
            result["abnormal_flags"] = list(result["interpretations"])
        if value.get("type") in ("CE", "CNE", "CF"):
            value["type"] = "CWE"  # each is a CodeableConcept
        if set(value) == {"type", "text"}:
            value["type"] = "ST"  # TX, FT, FN...: text alone is a valueString
        if value.get("type") in ("DT", "DTM"):
            value["type"] = "TS"  # each is a dateTime
        if value.get("type") == "SN" and "number" in value and value.get("comparator") in (
                None, "="):
            value["type"] = "NM"  # a Quantity without a comparator is a number
            value.pop("comparator", None)
        # basedOn the order, or its supportingInfo: the result names the numbers of
        # the order written for it, and no others.
        order = _order_of(result, orders)
        for ours, theirs in (("order_placer_id", "placer_id"), ("order_filler_id", "filler_id")):
            result.pop(ours, None)
            if order is not None and order.get(theirs):
                result[ours] = order[theirs]


def _order_of(result, orders):
    """The order engine.fhir.orders links a result to: by its OBR's place, else by
    the placer or filler number."""
    if result.get("order_segment") in orders:
        return orders[result["order_segment"]]
    return next((order for order in orders.values() if any(
        result.get(ours) and result.get(ours) == order.get(theirs)
        for ours, theirs in (("order_placer_id", "placer_id"),
                             ("order_filler_id", "filler_id")))), None)


def _statuses(kept):
    """FHIR requires these statuses: a record without one (or one FHIR's value set does
    not have) comes back as the value set's "unknown"."""
    for section, resource_type in (("results", "Observation"), ("orders", "ServiceRequest"),
                                   ("reports", "DiagnosticReport"),
                                   ("immunizations", "Immunization"),
                                   ("appointments", "Appointment")):
        allowed, fallback = codes.STATUSES[resource_type]
        for item in kept.get(section, []):
            if item.get("status") not in allowed:
                item.pop("status", None)
                if fallback:
                    item["status"] = fallback
    encounter = kept.get("encounter")
    if encounter:
        allowed, fallback = codes.STATUSES["Encounter"]
        if encounter.get("status") not in allowed:
            encounter.pop("status", None)
            if fallback:
                encounter["status"] = fallback


_CLINICAL_STATUSES = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
_OBR_ONLY = {"accession_id", "collector"}
_SPM_ONLY = {"placer_id", "filler_id", "parent_placer_id", "body_site", "collection_method",
             "condition"}


def _specimens(kept):
    from engine.fhir.specimens import CARRIED
    every = [s for section in ("specimens", "order_specimens") for s in kept.get(section, [])
             if any(s.get(field) not in (None, "", [], {}) for field in CARRIED)]
    kept["order_specimens"] = [s for s in every if set(s) & _OBR_ONLY and not set(s) & _SPM_ONLY]
    kept["specimens"] = [s for s in every if s not in kept["order_specimens"]]


def _clinical(kept):
    has_encounter = bool(kept.get("encounter"))
    for diagnosis in kept.get("diagnoses", []):
        _entity(diagnosis, "identifier")
        _entity(diagnosis, "parent")
        if not diagnosis.get("parent", {}).get("value"):
            diagnosis.pop("parent", None)  # a parent is named by its EI-1
        if diagnosis.get("action_code") != "D":
            diagnosis.pop("action_code", None)  # only D (entered-in-error) has a status
        if not has_encounter:
            # Encounter.diagnosis holds the role and rank: no visit, no place for them.
            diagnosis.pop("role", None)
            diagnosis.pop("priority", None)
    for section in ("allergies", "problems", "procedures"):
        for item in kept.get(section, []):
            _entity(item, "identifier")
            _entity(item, "parent")
            if not item.get("parent", {}).get("value"):
                item.pop("parent", None)
    for problem in kept.get("problems", []):
        # Condition.clinicalStatus: the status's code where FHIR has it; an abated
        # problem without one is inactive (con-4).
        state = (problem.pop("life_cycle_status", {}).get("code") or "").lower()
        if state not in _CLINICAL_STATUSES and fhir_datetime(problem.get("resolved_at")):
            state = "inactive"
        if state in _CLINICAL_STATUSES:
            problem["life_cycle_status"] = {"code": state}
    for procedure in kept.get("procedures", []):
        if "T" not in (fhir_datetime(procedure.get("performed_at")) or ""):
            procedure.pop("minutes", None)  # performedPeriod needs a start time


def _entity(item, field):
    """An EI as :func:`engine.fhir.clinical.entity_identifier` writes it."""
    found = item.get(field)
    if not isinstance(found, Mapping):
        return
    written = entity_identifier(found)
    system = written.get("system", "")
    back = {"value": written.get("value"),
            "namespace": written.get("assigner", {}).get("display")}
    for prefix, kind in (("urn:oid:", "ISO"), ("urn:uuid:", "UUID")):
        if system.startswith(prefix):
            back.update(universal_id=system[len(prefix):], universal_id_type=kind)
    if system and "universal_id" not in back:
        back.update(universal_id=system, universal_id_type="URI")
    item[field] = {key: value for key, value in back.items() if value}


def _medication(kept):
    for section, fields in (("medication_orders", ("dose_units", "dispense_units")),
                            ("pharmacy_orders", ("dose_units", "dispense_units")),
                            ("medication_dispenses", ("units",)),
                            ("immunizations", ("dose_units",))):
        for item in kept.get(section, []):
            for field in fields:
                if isinstance(item.get(field), Mapping):
                    item[field] = _quantity_units(item[field])
    for given in kept.get("immunizations", []):
        source = given.get("information_source", {})
        # RXA-9 in NIP001 only: 00 is primarySource, another code reportOrigin.
        if source.get("system") != "NIP001":
            given.pop("information_source", None)
        elif source.get("code") == "00":
            given["information_source"] = {"code": "00", "system": "NIP001"}


def _as_sent(coded, table, sheet):
    """A coded value as mapped_concept writes it: a code sent without its system is one
    of the field's own HL7 table; where the concept map gives that very coding, its
    display is the map's."""
    if not coded.get("code"):
        return
    coded.setdefault("system", table)
    mapped = mapped_coding(sheet, coded["code"])
    if mapped and (mapped["system"], mapped["code"]) == (codes.system_uri(coded["system"]),
                                                         coded["code"]):
        coded.pop("display", None)
        if mapped.get("display"):
            coded["display"] = mapped["display"]


def _quantity_units(units):
    """A Quantity's unit is the units' text, else their code; their code and system
    travel only when the system is one FHIR names by URI."""
    system = codes.system_uri(units.get("system", "")) if units.get("system") else None
    if system and units.get("code"):
        return {"code": units["code"], "display": units.get("display") or units["code"],
                "system": units["system"]}
    found = units.get("display") or units.get("code")
    return {"code": found} if found else {}


def _is_person(kin):
    # NK1-3 EMR, E, F, I, S: an employer or agency, no RelatedPerson (IG ADT_A01 row 15.1)
    return (kin.get("relationship", {}).get("code") not in {"EMR", "E", "F", "I", "S"}
            and any(key not in ("relationship", "contact_role") for key in kin))


def _people_around(kept):
    kept["related_persons"] = [kin for kin in kept.get("related_persons", [])
                               if _is_person(kin)]
    for kin in kept["related_persons"]:
        # A code sent without its system is one of the field's own HL7 table.
        for field, table, sheet in (("relationship", "HL70063", "relationship"),
                                    ("contact_role", "HL70131", "contact-role")):
            _as_sent(kin.get(field, {}), table, sheet)
    guarantors = []
    for guarantor in kept.get("guarantors", []):
        relationship = guarantor.get("relationship", {})
        period = {key: guarantor[key] for key in ("start", "end") if key in guarantor}
        if (guarantor.get("organization_name") or "").strip():
            guarantors.append({**period, "organization_name": guarantor["organization_name"]})
        elif guarantor.get("organization_name"):
            continue  # GT1-21 only whitespace names no Organization, and no party
        elif relationship.get("code") == "SEL":
            # The patient is the guarantor: Account.guarantor.party is the Patient.
            guarantors.append({**period, "relationship": {"code": "SEL"}})
        else:
            guarantor.pop("organization_name", None)
            _as_sent(relationship, "HL70063", "relationship")
            guarantors.append(guarantor)
    kept["guarantors"] = guarantors
    for coverage in kept.get("coverages", []):
        subscriber = coverage.get("subscriber", {})
        relationship = subscriber.get("relationship", {})
        _as_sent(relationship, "HL70063", "relationship")
        if relationship.get("code") == "SEL":
            # The patient is the insured: only the subscriber's identifiers stay.
            coverage["subscriber"] = {key: subscriber[key] for key in (
                "identifiers", "relationship") if key in subscriber}
    kept["roles"] = [role for role in kept.get("roles", []) if role.get("action") != "DE"]


def _appointments(kept):
    for appointment in kept.get("appointments", []):
        if appointment.get("places"):
            appointment.pop("location", None)  # the places are the participants
        for time in ("start", "end"):
            if appointment.get(time):  # Appointment.start and end are instants
                instant = fhir_instant(appointment[time])
                appointment[time] = canonical_time(instant) if instant else None


# --- a resource alone ---------------------------------------------------------------

_SUBJECT = {"identifier": {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-7731"}}
_CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}


@pytest.mark.parametrize("document, section, expected", [
    ({"resourceType": "Condition", "subject": _SUBJECT, "code": _CODE},
     "diagnoses", {"code": {"code": "38341003", "system": "http://snomed.info/sct"}}),
    ({"resourceType": "Condition", "subject": _SUBJECT, "code": _CODE, "category": [
        {"coding": [{"code": "problem-list-item"}]}]},
     "problems", {"code": {"code": "38341003", "system": "http://snomed.info/sct"}}),
    ({"resourceType": "AllergyIntolerance", "patient": _SUBJECT, "criticality": "high"},
     "allergies", {"criticality": "high"}),
    ({"resourceType": "Procedure", "status": "completed", "subject": _SUBJECT,
      "performedDateTime": "2026-11-02T10:00:00+01:00"},
     "procedures", {"performed_at": "2026-11-02T10:00:00+01:00"}),
    ({"resourceType": "Immunization", "status": "completed", "patient": _SUBJECT,
      "vaccineCode": {"text": "flu"}, "occurrenceDateTime": "2026-11-02"},
     "immunizations", {"status": "completed", "vaccine": {"display": "flu"},
                       "administered_at": "2026-11-02"}),
    ({"resourceType": "MedicationRequest", "status": "active", "intent": "filler-order",
      "subject": _SUBJECT, "medicationCodeableConcept": _CODE},
     "pharmacy_orders", {"status": "active",
                         "medication": {"code": "38341003", "system": "http://snomed.info/sct"}}),
    ({"resourceType": "MedicationRequest", "status": "stopped", "intent": "order",
      "subject": _SUBJECT, "medicationCodeableConcept": _CODE},
     "medication_orders", {"status": "revoked",
                           "medication": {"code": "38341003",
                                          "system": "http://snomed.info/sct"}}),
    ({"resourceType": "MedicationDispense", "status": "completed", "subject": _SUBJECT,
      "medicationCodeableConcept": _CODE, "whenHandedOver": "2026-11-03"},
     "medication_dispenses", {"dispensed_at": "2026-11-03", "medication": {
         "code": "38341003", "system": "http://snomed.info/sct"}}),
    ({"resourceType": "Specimen", "subject": _SUBJECT, "receivedTime": "2026-11-04"},
     "specimens", {"received_at": "2026-11-04"}),
    ({"resourceType": "RelatedPerson", "patient": _SUBJECT, "gender": "female"},
     "related_persons", {"gender": "female"}),
    ({"resourceType": "Coverage", "status": "active", "beneficiary": _SUBJECT,
      "payor": [{"display": "Plan"}], "class": [{"type": {"coding": [{
          "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
          "code": "group"}]}, "value": "G-1"}]},
     "coverages", {"group_number": "G-1"}),
    ({"resourceType": "PractitionerRole", "practitioner": {"identifier": {"value": "1134"}},
      "code": [{"text": "attending"}]},
     "roles", {"person": {"id": "1134"}, "role": {"display": "attending"}}),
])
def test_a_resource_alone_comes_to_its_section(document, section, expected):
    record = to_canonical(read_fhir(json.dumps(document).encode()), received_at=RECEIVED_AT)
    assert canonical_errors(record) == []
    assert record[section] == [expected]


def test_a_message_header_names_the_event_and_the_applications():
    bundle = {"resourceType": "Bundle", "type": "message", "entry": [
        {"fullUrl": "urn:uuid:0f5c1d0e-0000-4000-8000-000000000001", "resource": {
            "resourceType": "MessageHeader",
            "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                            "code": "A08"},
            "source": {"name": "EPIC", "software": "Hyperspace", "version": "2024",
                       "endpoint": "urn:oid:1.2.840.114350"},
            "destination": [{"name": "SWITCHBOARD", "endpoint": "https://sb.example/in"}]}}]}
    record = to_canonical(read_fhir(json.dumps(bundle).encode()), received_at=RECEIVED_AT)
    assert canonical_errors(record) == []
    assert record["message"] == {
        "source_format": "fhir-r4", "type": "Bundle", "event": "A08",
        "sent_at": RECEIVED_AT.isoformat(), "sending_application": "EPIC",
        "sending_application_id": "1.2.840.114350", "receiving_application": "SWITCHBOARD",
        "software": {"product": "Hyperspace", "version": "2024"}}

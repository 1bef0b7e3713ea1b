"""FHIR R4 datatypes read back as canonical values: the inverse of
:mod:`engine.fhir.elements`, shared by the section readers (``read_*``).

Each reader returns an empty dict (or None) where the FHIR element holds nothing, so
that :func:`engine.fhir.elements.compact` leaves the canonical field out. A coding
system comes back as the URI it is in FHIR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.document import References, Resource, authority, first, get, strings
from engine.fhir.elements import compact

_ADDRESS_CODES = codes.reverse(codes.ADDRESS_KINDS)
_TELECOM_USE_CODES = codes.reverse(codes.TELECOM_USES)
# "other" stands for several devices (TDD, TTY, modem): it names none of them.
_EQUIPMENT_CODES = {system: equipment for system, equipment
                    in codes.reverse(codes.TELECOM_SYSTEMS).items() if system != "other"}
_OID_PREFIX, _RFC_3986 = "urn:oid:", "urn:ietf:rfc:3986"


def each(convert: Callable[[Resource], dict[str, Any]], found: Any) -> list[dict[str, Any]]:
    """``convert`` over a repeating element's objects, without the empty results."""
    converted = (convert(item) for item in found or () if isinstance(item, Mapping))
    return [item for item in converted if item]


def system_name(system: Any) -> str | None:
    """The canonical coding system of a FHIR system: the URI as sent, as the readers of
    every section keep it (HL7 v2 names them, FHIR by URI; routes compare either)."""
    return system if isinstance(system, str) and system else None


def coding(found: Any) -> dict[str, Any]:
    """A canonical coded value (code, display, system) of one Coding."""
    return compact({"code": get(found, "code"), "display": get(found, "display"),
                    "system": system_name(get(found, "system"))})


def coded(concept: Any) -> dict[str, Any]:
    """A canonical coded value of a CodeableConcept: its first coding, else its text as
    the display (what :func:`engine.fhir.elements.concept` makes of a display alone)."""
    found = first(get(concept, "coding"))
    if found is not None:
        return coding(found)
    return compact({"display": get(concept, "text")})


def code_or_text(concept: Any) -> str | None:
    found = get(first(get(concept, "coding")), "code") or get(concept, "text")
    return str(found) if found else None


def codes_of(concepts: Any) -> Iterable[str]:
    """Every coding's code in a list of CodeableConcepts."""
    for concept in concepts or ():
        for found in get(concept, "coding") or ():
            if isinstance(found, Mapping) and found.get("code"):
                yield found["code"]


def coded_in(concepts: Any, system: str) -> str | None:
    """The code of the first coding in ``system`` among a list of CodeableConcepts."""
    for concept in concepts or ():
        for found in get(concept, "coding") or ():
            if isinstance(found, Mapping) and found.get("system") == system:
                return found.get("code")
    return None


def typed_value(identifiers: Any, type_code: str) -> str | None:
    """The value of the identifier of HL7 table 0203's type ``type_code``."""
    for found in identifiers or ():
        if isinstance(found, Mapping) and type_code in codes_of([found.get("type")]):
            value = found.get("value")
            return str(value) if value else None
    return None


def identifier(found: Resource) -> dict[str, Any]:
    """A canonical identifier (CX) of an Identifier."""
    return compact({"value": found.get("value"), "assigning_authority": authority(found),
                    "type": code_or_text(found.get("type"))})


def universal_id(found: Any) -> str | None:
    """An HD's universal ID as the encoder wrote it: an OID as ``urn:oid:`` value of
    system urn:ietf:rfc:3986, anything else as the value alone."""
    value = get(found, "value")
    if not isinstance(value, str) or not value:
        return None
    if get(found, "system") == _RFC_3986 and value.startswith(_OID_PREFIX):
        return value[len(_OID_PREFIX):]
    return value


def endpoint_id(endpoint: Any) -> str | None:
    """An application's universal ID (an OID) of a MessageHeader endpoint."""
    if isinstance(endpoint, str) and endpoint.startswith(_OID_PREFIX):
        return endpoint[len(_OID_PREFIX):]
    return None


def name(found: Resource) -> dict[str, Any]:
    """A canonical name (XPN, XCN) of a HumanName: the first given name, the others
    as the middle."""
    given = strings(found.get("given"))
    return compact({
        "family": found.get("family"),
        "given": given[0] if given else None,
        "middle": " ".join(given[1:]),
        "prefix": " ".join(strings(found.get("prefix"))),
        "suffix": " ".join(strings(found.get("suffix"))),
        "use": found.get("use"),
    })


def address(found: Resource) -> dict[str, Any]:
    lines = strings(found.get("line"))
    return compact({
        "line1": lines[0] if lines else None,
        "line2": ", ".join(lines[1:]),
        "city": found.get("city"),
        "state": found.get("state"),
        "postal_code": found.get("postalCode"),
        "country": found.get("country"),
        "type": _ADDRESS_CODES.get(("use", str(found.get("use"))))
        or _ADDRESS_CODES.get(("type", str(found.get("type")))),
    })


def telecom(contact: Resource) -> dict[str, Any]:
    system, use = contact.get("system"), contact.get("use")
    return compact({
        "value": contact.get("value"),
        "use": looked_up(_TELECOM_USE_CODES, use),
        "equipment": "CP" if system == "phone" and use == "mobile"
        else looked_up(_EQUIPMENT_CODES, system),
        "email": contact.get("value") if system == "email" else None,
    })


def telecoms(points: Any) -> list[dict[str, Any]]:
    """Canonical telecoms of ContactPoints, one each: an XTN's number and email are two
    ContactPoints in FHIR, and nothing says which email went with which number."""
    return each(telecom, points)


def person(reference: Any, references: References | None = None) -> dict[str, Any]:
    """A canonical person (XCN) from a Reference: the Practitioner it points at inside
    the document (directly, or through the PractitionerRole it points at), else its
    own identifier."""
    target = references.resolve(reference) if references is not None else None
    if target is not None and target.get("resourceType") == "PractitionerRole":
        role = target
        target = references.resolve(role.get("practitioner")) if references else None
        if target is None:
            reference = role.get("practitioner")
    if target is not None and target.get("resourceType") == "Practitioner":
        return practitioner(target)
    found = get(reference, "identifier") or {}
    return compact({"id": found.get("value"),
                    "assigning_authority": authority(found) if found else None})


def practitioner(resource: Resource) -> dict[str, Any]:
    found = first(resource.get("identifier")) or {}
    named = name(first(resource.get("name")) or {})
    named.pop("use", None)
    return compact({"id": found.get("value"),
                    "assigning_authority": authority(found) if found else None, **named})


def organization(reference: Any, references: References) -> tuple[str | None, str | None]:
    """(name, identifier value) of the Organization a Reference points at."""
    target = references.resolve(reference)
    if target is None or target.get("resourceType") != "Organization":
        return None, None
    return target.get("name"), get(first(target.get("identifier")), "value")


def entity_identifier(found: Any) -> dict[str, Any]:
    """A canonical EI of an Identifier (the inverse of
    :func:`engine.fhir.clinical.entity_identifier`)."""
    if not isinstance(found, Mapping):
        return {}
    system = found.get("system")
    universal, kind = None, None
    if isinstance(system, str) and system.startswith(_OID_PREFIX):
        universal, kind = system[len(_OID_PREFIX):], "ISO"
    elif isinstance(system, str) and system.startswith("urn:uuid:"):
        universal, kind = system[len("urn:uuid:"):], "UUID"
    elif isinstance(system, str) and system:
        universal, kind = system, "URI"
    return compact({"value": found.get("value"),
                    "namespace": get(found, "assigner", "display"),
                    "universal_id": universal, "universal_id_type": kind})


def quantity(found: Any) -> tuple[int | float | None, dict[str, Any]]:
    """(value, canonical coded units) of a Quantity written by
    :func:`engine.fhir.medication.quantity`."""
    if not isinstance(found, Mapping):
        return None, {}
    code = found.get("code")
    units = compact({"code": code or found.get("unit"),
                     "display": found.get("unit") if code else None,
                     "system": system_name(found.get("system"))})
    return number(found.get("value")), units


def number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def looked_up(table: Mapping[str, str], code: object) -> str | None:
    return table.get(code) if isinstance(code, str) else None


def referenced(resources: Iterable[Resource]) -> set[str]:
    """Every reference (``urn:uuid:...``, ``Type/id``) the resources make."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("reference"), str):
                found.add(node["reference"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for resource in resources:
        walk(resource)
    return found


def of_type(resources: Iterable[Resource], resource_type: str) -> list[Resource]:
    return [r for r in resources if r.get("resourceType") == resource_type]

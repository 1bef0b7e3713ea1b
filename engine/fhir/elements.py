"""Canonical values to FHIR R4 datatypes, as plain dicts.

Every builder returns None (or an empty dict, which :func:`compact` drops) when the
record holds nothing for it, so a field the record does not have never reaches FHIR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.fhir import codes

Json = dict[str, Any]


# What compact drops, compared by ``in`` (identity, then equality: 0 and False stay).
# A constant, since it runs for every element of every Bundle; never mutated.
_EMPTY: tuple[Any, ...] = (None, "", {}, [])


def compact(values: Mapping[str, Any]) -> Json:
    """``values`` without None, empty strings, lists and objects (FHIR JSON has no
    empty elements, and the canonical record leaves empty values out); lists lose their
    empty items too."""
    found = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = [item for item in value if item not in _EMPTY]
            if value:
                found[key] = value
        elif value not in _EMPTY:
            found[key] = value
    return found


def absent() -> Json:
    """The content of an element FHIR requires and the record does not hold."""
    return {"extension": [{"url": codes.DATA_ABSENT_REASON, "valueCode": "unknown"}]}


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def code(value: Any) -> str | None:
    """A FHIR code: no leading, trailing or repeated whitespace."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def section(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = record.get(name)
    return value if isinstance(value, Mapping) else {}


def items(record: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    """(position, item) of a list's non-empty objects: a minimised list keeps its
    positions with empty placeholders, and the position keys each item's fullUrl."""
    value = record.get(name)
    return [(index, item) for index, item in enumerate(value if isinstance(value, list) else ())
            if isinstance(item, Mapping) and item]


def coding(value: Any, display: Any = None, system: Any = None) -> Json:
    return compact({"system": codes.system_uri(system) if text(system) else None,
                    "code": code(value), "display": text(display)})


def concept(coded: Any) -> Json:
    """A CodeableConcept from a canonical code, display and system: a coding when there
    is a code, else the display as text."""
    if not isinstance(coded, Mapping):
        return {}
    if code(coded.get("code")):
        return {"coding": [coding(coded.get("code"), coded.get("display"), coded.get("system"))]}
    return compact({"text": text(coded.get("display"))})


def v2_concept(value: Any, table: str) -> Json:
    """A CodeableConcept holding a code of HL7 table ``table`` (``"0007"``)."""
    found = code(value)
    return {"coding": [{"system": codes.V2 + table, "code": found}]} if found else {}


def identifier(canonical: Any) -> Json:
    """An Identifier. Its assigning authority is the system when it is a URI; otherwise
    it names the assigner, since FHIR systems must be absolute URIs."""
    if not isinstance(canonical, Mapping):
        return {}
    authority = text(canonical.get("assigning_authority"))
    is_system = authority is not None and codes.is_absolute_uri(authority)
    return compact({
        "type": identifier_type(canonical.get("type")),
        "system": authority if is_system else None,
        "value": text(canonical.get("value")),
        "assigner": {"display": authority} if authority and not is_system else None,
    })


def identifier_type(value: Any) -> Json:
    found = code(value)
    if found in codes.IDENTIFIER_TYPES:
        return {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM, "code": found}]}
    return compact({"text": text(value)})


def typed_identifier(value: Any, type_code: str) -> Json:
    """A business identifier of HL7 table 0203's type ``type_code`` (PLAC, FILL, VN)."""
    if not text(value):
        return {}
    return {"type": {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM, "code": type_code}]},
            "value": value}


def human_name(name: Any) -> Json:
    if not isinstance(name, Mapping):
        return {}
    use = name.get("use")
    return compact({
        "use": use if use in codes.NAME_USES else None,
        "family": text(name.get("family")),
        "given": [text(name.get("given")), text(name.get("middle"))],
        "prefix": [text(name.get("prefix"))],
        "suffix": [text(name.get("suffix"))],
    })


def address(canonical: Any) -> Json:
    if not isinstance(canonical, Mapping):
        return {}
    kind = codes.ADDRESS_KINDS.get(canonical.get("type") or "")
    return compact({
        **({kind[0]: kind[1]} if kind else {}),
        "line": [text(canonical.get("line1")), text(canonical.get("line2"))],
        "city": text(canonical.get("city")),
        "state": text(canonical.get("state")),
        "postalCode": text(canonical.get("postal_code")),
        "country": text(canonical.get("country")),
    })


def contact_points(telecom: Any) -> list[Json]:
    """ContactPoints of one canonical telecom: its number, and its email when that is
    another value. FHIR wants a system with every value; an unknown device is "other"."""
    if not isinstance(telecom, Mapping):
        return []
    equipment = telecom.get("equipment") or ""
    value, email = text(telecom.get("value")), text(telecom.get("email"))
    found = []
    if value and value != email:
        found.append(compact({
            "system": codes.TELECOM_SYSTEMS.get(equipment, "other"),
            "value": value,
            "use": "mobile" if equipment == "CP" else codes.TELECOM_USES.get(
                telecom.get("use") or ""),
        }))
    if email:
        found.append({"system": "email", "value": email})
    return found


def person(canonical: Any, resource_type: str = "Practitioner") -> Json:
    """A Reference to a person by business identifier and name, for a receiver to
    match: Switchboard sends no Practitioner resources."""
    if not isinstance(canonical, Mapping):
        return {}
    found = compact({
        "identifier": identifier({"value": canonical.get("id"),
                                  "assigning_authority": canonical.get("assigning_authority")}),
        "display": " ".join(filter(None, (text(canonical.get(part)) for part in (
            "prefix", "given", "family", "suffix")))),
    })
    return {"type": resource_type, **found} if found else {}


def status(resource_type: str, value: Any) -> Json:
    """The status element of ``resource_type``: the record's status when FHIR knows it,
    else the value set's "unknown", else a data-absent-reason."""
    allowed, fallback = codes.STATUSES[resource_type]
    if value in allowed:
        return {"status": value}
    return {"status": fallback} if fallback else {"_status": absent()}

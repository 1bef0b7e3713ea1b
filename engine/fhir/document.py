"""A validated FHIR document read as plain JSON: its resources, the references between
them, the patient it is about, and safe steps into its elements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Resource = Mapping[str, Any]

# Elements by which a resource names its patient, in the order they are looked at.
_PATIENT_REFERENCES = ("subject", "patient")


def resources_of(document: Resource) -> list[Resource]:
    """The resources of a Bundle's entries in order, or the document itself."""
    if document.get("resourceType") != "Bundle":
        return [document]
    return [entry["resource"] for entry in document.get("entry") or ()
            if isinstance(entry.get("resource"), Mapping)]


class References:
    """Resolves references inside one document: by an entry's ``fullUrl`` and by the
    relative ``Type/id`` of its resource. References to other servers stay unresolved."""

    def __init__(self, document: Resource) -> None:
        self._targets: dict[str, Resource] = {}
        if document.get("resourceType") != "Bundle":
            self._add(None, document)
            return
        for entry in document.get("entry") or ():
            if isinstance(entry.get("resource"), Mapping):
                self._add(entry.get("fullUrl"), entry["resource"])

    def _add(self, full_url: str | None, resource: Resource) -> None:
        if full_url:
            self._targets.setdefault(full_url, resource)
        if resource.get("id"):
            self._targets.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)

    def resolve(self, reference: Any) -> Resource | None:
        if not isinstance(reference, Mapping):
            return None
        return self._targets.get(reference.get("reference") or "")


def get(node: Any, *keys: str) -> Any:
    """The value at ``keys`` below ``node``, or None where any step is missing."""
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def first(items: Any) -> Any:
    """The first item of a repeating element, or None."""
    return next((item for item in items or () if item is not None), None)


def strings(items: Any) -> list[str]:
    """A primitive list's values: FHIR JSON may hold nulls in one (placeholders that
    line values up with their extensions)."""
    return [item for item in items or () if isinstance(item, str) and item]


def authority(identifier: Resource) -> str | None:
    """The assigning authority of a FHIR identifier, as the canonical record and the
    journal's patient key use it: its system, else the display of its assigner (where
    Switchboard puts an HL7 authority that is not a URI)."""
    system = identifier.get("system")
    if system:
        return str(system)
    assigner = identifier.get("assigner")
    display = assigner.get("display") if isinstance(assigner, Mapping) else None
    return str(display) if display else None


def patient_identifiers(resources: list[Resource]) -> list[Resource]:
    """The identifiers of the first Patient; without one, the identifier of the first
    logical patient reference (``Observation.subject.identifier``)."""
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            return list(resource.get("identifier") or ())
    for reference in _patient_references(resources):
        identifier = reference.get("identifier")
        if isinstance(identifier, Mapping):
            return [identifier]
    return []


def _patient_references(resources: list[Resource]) -> Iterator[Resource]:
    for resource in resources:
        for element in _PATIENT_REFERENCES:
            reference = resource.get(element)
            if isinstance(reference, Mapping) and _may_be_patient(reference):
                yield reference


def _may_be_patient(reference: Resource) -> bool:
    """A subject may be a Group, Device or Location; only a Patient, or one whose
    type is not said, names the patient."""
    target = reference.get("reference") or ""
    return reference.get("type") in (None, "Patient") and (
        not target or target.startswith(("Patient/", "urn:")) or "/Patient/" in target)

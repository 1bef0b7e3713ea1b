"""Read a FHIR R4 body: decode it, validate it with the R4B models of fhir.resources and
say what the journal needs to know about it (control id, content hash, patient key, and
for a resource filed under its ``Type/id``, the version it says it is).

Error texts never quote the input (see engine.fhir.problems): a message journaled as
rejected, or logged, must not carry PHI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NoReturn, cast

from fhir.resources.R4B import fhirtypes, get_fhir_model_class
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from engine.errors import SwitchboardError
from engine.fhir.document import authority, patient_identifiers, resources_of
from engine.fhir.problems import describe, element_path
from engine.fhir.versions import VERSION_ID_LENGTH, Version, version_of

# The R4 resources Switchboard reads, alone or as the entries of a Bundle of any type.
# fhir.resources' default models are R5: only its R4B models may be named here.
RESOURCE_MODELS: dict[str, type[Resource]] = {
    model.__name__: model
    for model in (Patient, Encounter, Observation, DiagnosticReport, ServiceRequest,
                  Appointment, DocumentReference)
}
# The resources Switchboard's own Bundles carry besides those (the parties a message
# names, its header and provenance, and the clinical resources of its other segments):
# read, so a Bundle of Switchboard's is accepted whole.
RESOURCE_MODELS.update({name: cast(type[Resource], get_fhir_model_class(name)) for name in (
    "Practitioner", "PractitionerRole", "Organization", "Location", "Device",
    "MessageHeader", "Provenance", "RelatedPerson", "Coverage", "Account", "EpisodeOfCare",
    "Condition", "AllergyIntolerance", "Procedure", "Immunization", "Medication",
    "MedicationRequest", "MedicationDispense", "MedicationAdministration", "Specimen",
    "Linkage")})
SUPPORTED = ", ".join(RESOURCE_MODELS)


class FhirError(SwitchboardError):
    """A body is not a FHIR R4 resource or Bundle that Switchboard reads. ``location``
    is a FHIR path such as ``Bundle.entry[0].resource.birthDate``; ``issue`` is the
    OperationOutcome issue type that says what is wrong: ``structure`` (the body is not
    JSON that can be read), ``not-supported`` (a resource type Switchboard does not
    read) or ``invalid`` (a resource that does not validate)."""

    def __init__(self, message: str, *, path: str | None = None,
                 hint: str | None = None, issue: str = "invalid") -> None:
        self.path = path
        self.issue = issue
        super().__init__(message, hint=hint)

    @property
    def location(self) -> str:
        return self.path or ""


@dataclass(frozen=True)
class FhirInput:
    """A FHIR document that validated, with the keys the journal files it under."""

    resource_type: str
    document: Mapping[str, Any]
    """The parsed JSON as received."""
    control_id: str | None
    content_hash: str
    patient_key: str | None
    versioned: bool = False
    """Filed under its ``Type/id``: the same key with other content is a new version of
    the resource, not a conflict (a Bundle's business identifier names one submission)."""
    version: Version = field(default_factory=Version)
    patient_identifier: tuple[str, str] | None = None
    """(value, authority) of the first patient identifier: what its patient key is
    made of, and what a search by patient finds it by."""

    @property
    def resources(self) -> list[Mapping[str, Any]]:
        """The document itself, or the resources of its entries."""
        return resources_of(self.document)

    @property
    def order_key(self) -> str | None:
        """The key its deliveries are ordered by: its patient's; without a patient
        identifier, a resource's own, so that its versions are delivered in order."""
        if self.patient_key is not None or not self.versioned or self.control_id is None:
            return self.patient_key
        digest = hashlib.sha256(f"FHIR resource {self.control_id}".encode())
        return digest.hexdigest()[:32]


def read_fhir(body: bytes) -> FhirInput:
    """Decode and validate one FHIR R4 resource or Bundle; FhirError when it is not one
    Switchboard reads, and nothing else."""
    document = _decode(body)
    resource_type = _supported_type(document)
    _validate(resource_type, document)
    control_id = _control_id(document)
    patient = _patient_identifier(resources_of(document))
    return FhirInput(
        resource_type=resource_type,
        document=document,
        control_id=control_id,
        content_hash=_content_hash(document),
        patient_key=_patient_key(patient),
        versioned=control_id is not None and control_id == _resource_key(document),
        version=_version(resource_type, document),
        patient_identifier=patient,
    )


def _decode(body: bytes) -> dict[str, Any]:
    hint = "Send one FHIR R4 resource or Bundle as application/fhir+json"
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise FhirError("the body is nested too deeply to be read", hint=hint,
                        issue="structure") from None
    except (ValueError, TypeError):
        raise FhirError("the body is not JSON", hint=hint, issue="structure") from None
    if not isinstance(document, dict):
        raise FhirError("the body is JSON but not a FHIR resource: a JSON object is expected",
                        hint=hint)
    return document


def _reject_constant(name: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")  # FHIR JSON is strict JSON


def _supported_type(document: Mapping[str, Any]) -> str:
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirError("the JSON has no resourceType, so it is not a FHIR resource",
                        hint="Send one FHIR R4 resource or Bundle as application/fhir+json")
    if resource_type == "Bundle":
        _check_entries(document)
    elif resource_type not in RESOURCE_MODELS:
        _unsupported(resource_type, None)
    return resource_type


def _check_entries(bundle: Mapping[str, Any]) -> None:
    entries = bundle.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # no resource, or not an object: validation says what is wrong
        path = f"Bundle.entry[{index}].resource"
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not resource_type:
            raise FhirError("the entry's resource has no resourceType", path=path,
                            hint="Give every resource in the Bundle its resourceType")
        if resource_type not in RESOURCE_MODELS:
            _unsupported(resource_type, path)


def _unsupported(resource_type: str, path: str | None) -> NoReturn:
    # Named only when it is a FHIR type name: the text is never a copy of the input.
    named = resource_type if resource_type in _fhir_type_names() else (
        "a resourceType that FHIR R4 does not define")
    raise FhirError(
        f"{named} is not supported: Switchboard reads {SUPPORTED}, and Bundles of them",
        path=path, hint="Send one of the supported resources, or route this feed elsewhere",
        issue="not-supported")


@cache
def _fhir_type_names() -> frozenset[str]:
    return frozenset(name.removesuffix("Type") for name in dir(fhirtypes)
                     if name.endswith("Type") and name[:1].isupper())


def _validate(resource_type: str, document: dict[str, Any]) -> None:
    model = Bundle if resource_type == "Bundle" else RESOURCE_MODELS[resource_type]
    try:
        model.model_validate(document)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        raise FhirError(
            f"invalid FHIR R4 {resource_type}: {describe(resource_type, problems)}",
            path=element_path(resource_type, problems[0]) if problems else resource_type,
            hint="Correct the elements named and send the resource again",
        ) from None
    except RecursionError:
        raise FhirError(f"the {resource_type} is nested too deeply to be validated",
                        path=resource_type,
                        hint="Send the resource without such deep nesting") from None
    except Exception:  # fhir.resources raises KeyError for an unknown nested resourceType
        raise FhirError(
            f"invalid FHIR R4 {resource_type}: a contained resource cannot be read",
            path=resource_type,
            hint="Check the resourceType of every contained resource") from None


def _control_id(document: Mapping[str, Any]) -> str | None:
    """A Bundle's business identifier (``system|value``, or the value alone when it
    has no system), else ``Type/id`` of the document; None when it has neither."""
    if document["resourceType"] == "Bundle":
        identifier = document.get("identifier") or {}
        if identifier.get("value"):
            system = identifier.get("system")
            return f"{system}|{identifier['value']}" if system else str(identifier["value"])
    return _resource_key(document)


def _resource_key(document: Mapping[str, Any]) -> str | None:
    return f"{document['resourceType']}/{document['id']}" if document.get("id") else None


def _version(resource_type: str, document: Mapping[str, Any]) -> Version:
    version = version_of(document)
    if version.version_id is not None and len(version.version_id) > VERSION_ID_LENGTH:
        raise FhirError(
            f"meta.versionId is {len(version.version_id)} characters long; a FHIR id "
            f"holds at most {VERSION_ID_LENGTH}", path=f"{resource_type}.meta.versionId",
            hint="Send the version id the resource's server gave it")
    return version


def _content_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the document as sorted, compact JSON without any ``meta.lastUpdated``:
    a re-send stamped with a new lastUpdated is the same content, as a re-sent HL7
    message with a new MSH-7 is."""
    try:
        text = json.dumps(_without_last_updated(document), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        raise FhirError("the body holds text that is not valid Unicode (a lone surrogate)",
                        hint="Send the resource as valid UTF-8 JSON") from None
    except RecursionError:
        raise FhirError("the body is nested too deeply to be read",
                        hint="Send the resource without such deep nesting") from None


def _without_last_updated(node: Any) -> Any:
    if isinstance(node, dict):
        copied = {}
        for key, value in node.items():
            if key == "meta" and isinstance(value, dict):
                value = {name: item for name, item in value.items()
                         if name not in ("lastUpdated", "_lastUpdated")}
                if not value:
                    continue  # a meta that held only lastUpdated is no content
            copied[key] = _without_last_updated(value)
        return copied
    if isinstance(node, list):
        return [_without_last_updated(item) for item in node]
    return node


def _patient_identifier(resources: list[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(value, authority) of the first patient identifier, when it has a value."""
    identifiers = patient_identifiers(resources)
    value = identifiers[0].get("value") if identifiers else None
    if not value:
        return None
    return str(value), authority(identifiers[0]) or ""


def _patient_key(patient: tuple[str, str] | None) -> str | None:
    """sha256 of ``authority|value`` of the first patient identifier, cut to 32 hex
    digits, as engine.journal keys HL7 patients (PID-3.4|PID-3.1): the index that
    orders deliveries per patient then holds no identifier."""
    if patient is None:
        return None
    value, issuer = patient
    key = f"{issuer}|{value}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]

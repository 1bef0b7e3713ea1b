"""Switchboard's FHIR R4 toolkit, pure (no I/O) and built on fhir.resources' R4B models.

``read_fhir(bytes) -> FhirInput`` validates one resource or a Bundle and gives the
journal its control id, content hash and patient key; ``to_canonical`` normalises it to
the canonical record; ``encode_bundle`` turns a (minimised) canonical record into a
FHIR R4 transaction Bundle. Errors are ``FhirError`` and never quote the input.
"""

from engine.fhir.bundle import encode_bundle
from engine.fhir.normalise import to_canonical
from engine.fhir.read import FhirError, FhirInput, read_fhir

__all__ = ["FhirError", "FhirInput", "encode_bundle", "read_fhir", "to_canonical"]

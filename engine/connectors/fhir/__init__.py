"""FHIR REST servers as a destination, registered as ``fhir``."""

from __future__ import annotations

from engine.connectors.fhir.sink import FhirSink, fhir_sink
from engine.connectors.sink import register_sink

__all__ = ["FhirSink"]

register_sink("fhir", fhir_sink)

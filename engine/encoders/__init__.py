"""Encoders: a minimised canonical record to the body a destination's catalog format
expects (``hl7v2``: :mod:`engine.encoders.hl7v2`; ``fhir-r4``: a transaction Bundle,
:func:`engine.fhir.encode_bundle`; ``canonical-json``:
:mod:`engine.encoders.canonical_json`). Pure functions: no I/O, no rule lookups.

:func:`encode` picks the encoder by format. Everything an outbound message needs that
the record does not hold is derived from the journaled message's id and the
destination, so encoding the same delivery twice gives the same body."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.encoders import canonical_json, hl7v2
from engine.errors import SwitchboardError
from engine.fhir import encode_bundle

FHIR_MEDIA_TYPE = "application/fhir+json"


class UnknownFormatError(SwitchboardError):
    """A destination's catalog format has no encoder."""


@dataclass(frozen=True)
class Encoded:
    media_type: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """What an encoder knows about the delivery besides the record."""

    message_id: str
    destination: str
    sent_at: datetime


def outbound_control_id(message_id: str, destination: str) -> str:
    """MSH-10 for one delivery: 20 characters, the same on every retry, different for
    each destination of one message."""
    return hashlib.sha256(f"{message_id}:{destination}".encode()).hexdigest()[:20].upper()


def _hl7v2(record: Mapping[str, Any], delivery: Delivery) -> Encoded:
    body = hl7v2.encode_hl7v2(
        record, control_id=outbound_control_id(delivery.message_id, delivery.destination),
        sent_at=delivery.sent_at, receiving_application=delivery.destination.upper()[:20])
    return Encoded(hl7v2.MEDIA_TYPE, body)


def _fhir_r4(record: Mapping[str, Any], delivery: Delivery) -> Encoded:
    bundle = encode_bundle(record, f"{delivery.message_id}:{delivery.destination}")
    return Encoded(FHIR_MEDIA_TYPE, canonical_json.encode_canonical_json(bundle))


def _canonical_json(record: Mapping[str, Any], _delivery: Delivery) -> Encoded:
    return Encoded(canonical_json.MEDIA_TYPE, canonical_json.encode_canonical_json(record))


ENCODERS: dict[str, Callable[[Mapping[str, Any], Delivery], Encoded]] = {
    "hl7v2": _hl7v2,
    "fhir-r4": _fhir_r4,
    "canonical-json": _canonical_json,
}


def encode(format_name: str, record: Mapping[str, Any], delivery: Delivery) -> Encoded:
    """``record`` as ``format_name`` says; raises a SwitchboardError that names no
    value when it cannot."""
    encoder = ENCODERS.get(format_name)
    if encoder is None:
        raise UnknownFormatError(
            f"no encoder for format '{format_name}'",
            hint=f"Use one of {', '.join(sorted(ENCODERS))} in the catalog entry")
    return encoder(record, delivery)

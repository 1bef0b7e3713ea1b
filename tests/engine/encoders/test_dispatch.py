"""encode(): the catalog format picks the encoder; what a retry sends is the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.encoders import Delivery, UnknownFormatError, encode, outbound_control_id
from engine.hl7v2 import parse

RECORD = {
    "message": {"type": "ADT", "event": "A04"},
    "patient": {"identifiers": [{"value": "MRN-1", "authority": "RIVERSIDE", "type": "MR"}],
                "birth_date": "1970-01-02", "gender": "female"},
}
DELIVERY = Delivery("5d0c7a52-4f0e-4d53-8f53-0c8d1c0b7e11", "lab-system",
                    datetime(2026, 11, 24, 9, 30, tzinfo=UTC))


def test_each_format_has_its_encoder_and_media_type():
    hl7 = encode("hl7v2", RECORD, DELIVERY)
    assert hl7.media_type == "application/hl7-v2"
    message = parse(hl7.body)
    assert message.get("MSH-10") == outbound_control_id(DELIVERY.message_id, "lab-system")
    assert message.get("PID-3.1") == "MRN-1"
    fhir = encode("fhir-r4", RECORD, DELIVERY)
    assert fhir.media_type == "application/fhir+json"
    assert json.loads(fhir.body)["resourceType"] == "Bundle"
    canonical = encode("canonical-json", RECORD, DELIVERY)
    assert (canonical.media_type, json.loads(canonical.body)) == ("application/json", RECORD)


def test_the_same_delivery_encodes_to_the_same_body():
    for format_name in ("hl7v2", "fhir-r4", "canonical-json"):
        assert encode(format_name, RECORD, DELIVERY) == encode(format_name, RECORD, DELIVERY)


def test_control_ids_differ_per_destination_and_fit_msh_10():
    first = outbound_control_id(DELIVERY.message_id, "lab-system")
    second = outbound_control_id(DELIVERY.message_id, "bed-board")
    assert first != second and len(first) == len(second) == 20


def test_an_unknown_format_is_refused_by_name():
    with pytest.raises(UnknownFormatError) as caught:
        encode("x12", RECORD, DELIVERY)
    assert "x12" in str(caught.value) and "hl7v2" in str(caught.value)

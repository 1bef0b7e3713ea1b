"""Entry ids: uuid5 of the message id and the entry's place, or of a party's identity,
in the Bundle namespace; computed without building UUID objects, so checked against
the standard library's uuid5 here."""

from __future__ import annotations

import uuid

import pytest

from engine.fhir.entries import Entries

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://switchboard.invalid/fhir/bundle")


@pytest.mark.parametrize("message_id, key", [
    ("m-1", "patient"),
    ("m-1", "result/3"),
    ("", ""),
    ("0000123:lab-out", "order/0/specimen/2"),
    ("Müller-Lüdenscheidt", "related_person/mother"),
    ("患者", "document/0"),
])
def test_an_entry_url_is_uuid5_of_message_and_place(message_id, key):
    expected = f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{message_id}/{key}')}"
    assert Entries(message_id).url(key) == expected


@pytest.mark.parametrize("identity", ["NPI|1234567890", "", "Hôpital|ß|4"])
def test_a_shared_party_url_is_uuid5_of_its_type_and_identity(identity):
    reference = Entries("m-1").add_shared(identity, {"resourceType": "Practitioner"})
    assert reference == {
        "reference": f"urn:uuid:{uuid.uuid5(NAMESPACE, f'Practitioner|{identity}')}"}

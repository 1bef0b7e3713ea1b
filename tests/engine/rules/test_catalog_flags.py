"""What compliance should check in the catalog (engine.rules.catalog_flags), pure: an
entry classified a limited data set or de-identified whose data scope lets a direct
identifier through, entries citing one agreement, and which entries hold patient
data; and the shipped catalog's own flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.rules.catalog_entry import Connection, identifiers_beyond_limited_data_set
from engine.rules.catalog_flags import catalog_flags, holds_patient_data

CATALOG = Path(__file__).resolve().parents[3] / "catalog" / "connections"


def connection(id_: str, classification: str | None = "phi", scope: tuple[str, ...] = (),
               agreement: dict | None = None) -> Connection:
    document = {"id": id_, "name": id_.replace("-", " ").title(), "direction": "outbound",
                "transport": "http", "format": "canonical-json",
                "endpoint": {"url": "https://x.example/in", "method": "POST"},
                "data_scope": list(scope)}
    if classification:
        document["classification"] = classification
    if agreement:
        document["agreement"] = agreement
    return Connection.from_dict(document)


def shipped() -> list[Connection]:
    return [Connection.from_dict(yaml.safe_load(path.read_text()))
            for path in sorted(CATALOG.glob("*.yaml"))]


@pytest.mark.parametrize(("scope", "beyond"), [
    (["patient.birth_date", "encounter.admit_at"], []),  # dates may stay in one
    (["patient.addresses[*].city", "patient.addresses[*].postal_code"], []),
    (["patient.addresses"], ["patient.addresses"]),  # the street too
    (["patient.addresses[*].line1"], ["patient.addresses"]),
    (["patient.names[*].family", "patient.identifiers[*].value"],
     ["patient.names", "patient.identifiers"]),
])
def test_a_limited_data_set_keeps_dates_town_and_zip_but_no_other_identifier(scope, beyond):
    assert [identifier for _entry, identifier in
            identifiers_beyond_limited_data_set(scope)] == beyond


def test_a_classification_that_says_less_than_the_scope_lets_through_is_flagged():
    flags = catalog_flags([
        connection("lds", "limited", ("patient.birth_date", "patient.telecom")),
        connection("lds-ok", "limited", ("patient.birth_date", "results")),
        connection("deid", "de-identified", ("patient.birth_date",)),
        connection("phi", "phi", ("patient",)),
    ])
    assert set(flags) == {"lds", "deid"}
    [lds] = flags["lds"]
    assert (lds.kind, lds.identifiers) == ("identifiers-in-limited", ("patient.telecom",))
    assert lds.words == ("Classified as a limited data set, but its data scope lets through "
                         "fields that identify the patient: phone or email. Classify it as "
                         "PHI, or narrow its data scope.")
    [deid] = flags["deid"]  # Safe Harbor removes birth dates too
    assert (deid.kind, deid.identifiers) == ("identifiers-in-de-identified",
                                             ("patient.birth_date",))
    assert "Classified as de-identified" in deid.words and "birth date" in deid.words
    for words in (lds.words, deid.words):
        assert "patient." not in words  # no field paths in the words


def test_entries_citing_one_agreement_are_flagged_each_naming_the_others():
    shared = {"kind": "internal", "reference": "ITS-1", "on_file": True}
    flags = catalog_flags([
        connection("a", agreement=shared),
        connection("b", agreement={**shared, "reference": " its-1 "}),
        connection("c", agreement=shared),
        connection("d", agreement={**shared, "reference": "ITS-2"}),
        connection("e", agreement={"kind": "none"}),
        connection("f", agreement={"kind": "none"}),
    ])
    assert set(flags) == {"a", "b", "c"}
    [flag] = flags["a"]
    assert (flag.kind, flag.reference, flag.others) == ("shared-agreement", "ITS-1",
                                                        ("b", "c"))
    assert flag.words == ("Shares agreement ITS-1 with “B” and “C”: check that the "
                          "agreement covers each of them.")


def test_patient_data_is_a_phi_or_limited_classification_or_an_identifier_let_through():
    assert holds_patient_data(connection("x", "phi"))
    assert holds_patient_data(connection("x", "limited"))
    assert not holds_patient_data(connection("x", "de-identified", ("results",)))
    assert holds_patient_data(connection("x", "de-identified", ("patient.names",)))
    assert not holds_patient_data(connection("x", "operational"))
    assert holds_patient_data(connection("x", None, ("patient",)))


def test_the_shipped_catalog_flags_the_outreach_feed_and_one_shared_agreement():
    flags = catalog_flags(shipped())
    assert {id_: [flag.kind for flag in found] for id_, found in flags.items()} == {
        "patient-outreach": ["identifiers-in-limited"],
        "clinic-south": ["shared-agreement"],
        "ehr-referral-status": ["shared-agreement"],
    }
    assert flags["patient-outreach"][0].identifiers == (
        "patient.identifiers", "patient.names", "patient.telecom")
    assert flags["clinic-south"][0].others == ("ehr-referral-status",)

"""Fixed expectations: where the shipped example configuration sends corpus messages.

Each row is worked out from the routes in rules/routes/ and the message's fields, not
copied from a run: the destinations, which of them are held, and the tasks created.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from engine.hl7v2 import parse
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.source import read_rule_source
from tests.samples import CORPUS

ROOT = Path(__file__).resolve().parents[3]
A = "analytics-warehouse"
MED_REC = ("care-coordination", "medication-reconciliation", "notify")
HOME_HEALTH = ("care-coordination", "home-health-referral", "notify")
FOLLOW_UP = ("scheduling-desk", "follow-up-appointment", "notify")
NURSE = ("nurse-review", "abnormal-result-review", "hold")

EXPECTATIONS = [
    # file, destinations, held destinations, tasks
    ("fhir-converter/ADT-A01-01.hl7", {"lab-system", "bed-board", A}, set(), set()),
    ("fhir-converter/ADT01-23.hl7", {"lab-system", "bed-board", A}, set(), set()),
    ("fhir-converter/ADT-A02-01.hl7", {"bed-board", A}, set(), set()),
    ("fhir-converter/ADT-A03-01.hl7", {"bed-board", "patient-outreach", A}, set(),
     {MED_REC, HOME_HEALTH, FOLLOW_UP}),
    ("fhir-converter/ADT-A04-01.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/ADT04-23.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/ADT-A05-01.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/ADT-A08-01.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/ADT-A11-01.hl7", {"bed-board", A}, set(), set()),
    ("fhir-converter/ADT-A13-01.hl7", {"bed-board", A}, set(), set()),
    ("fhir-converter/ADT-A40-01.hl7", {"lab-system", A}, {"lab-system"},
     {("identity-review", "patient-merge-approval", "hold")}),
    ("fhir-converter/ORU-R01-RMGEAD.hl7", {"ehr-fhir", "clinic-north", A}, {"ehr-fhir"},
     {NURSE}),
    ("python-hl7/sample_oru.hl7", {"ehr-fhir", "clinic-north", A}, {"ehr-fhir"}, {NURSE}),
    ("fhir-converter/ORU-R01-01.hl7", {"ehr-fhir", A}, {"ehr-fhir"}, {NURSE}),
    ("fhir-converter/LAB-ORU-1.hl7", {"ehr-fhir", A}, set(), set()),
    ("fhir-converter/ORM-O01-01.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/OML-O21-01.hl7", {"lab-system", A}, set(), set()),
    ("fhir-converter/REF-I12-01.hl7", {"referral-tool", A}, set(),
     {("referral-intake", "referral-triage", "notify")}),
    ("fhir-converter/REF-I14-01.hl7", {"referral-tool", A}, set(), set()),
    ("fhir-converter/SIU-S12-01.hl7", {"patient-outreach", A}, set(), set()),
    ("fhir-converter/SIU-S14-01.hl7", {"patient-outreach", A}, set(), set()),
    ("fhir-converter/MDM-T02-01.hl7", {"ehr-fhir", A}, set(), set()),
    ("fhir-converter/VXU-V04-01.hl7", {A}, set(), set()),
]


@cache
def example() -> RuleSet:
    return compile_rule_set(read_rule_source(ROOT))


@pytest.mark.parametrize(
    "name, destinations, held, tasks", EXPECTATIONS, ids=[row[0] for row in EXPECTATIONS]
)
def test_example_configuration_routes_corpus_messages(name, destinations, held, tasks):
    outcome = example().process(parse((CORPUS / name).read_bytes()))
    assert {d.destination for d in outcome.deliveries} == destinations
    assert {d.destination for d in outcome.deliveries if d.held_by} == held
    assert {(t.intent.queue, t.intent.kind, t.intent.mode) for t in outcome.tasks} == tasks


def test_the_table_is_long_enough():
    assert len(EXPECTATIONS) >= 15


def test_the_warehouse_never_receives_a_direct_identifier():
    rule_set = example()
    identifying = ("identifiers", "names", "addresses", "telecom", "birth_date",
                   "mothers_maiden_name", "account_number", "visit_number", "prior_")
    for path in sorted(CORPUS.glob("*/*.hl7")):
        outcome = rule_set.process(parse(path.read_bytes()))
        for delivery in outcome.deliveries:
            if delivery.destination == A:
                text = repr(delivery.payload)
                assert not any(f"'{key}" in text for key in identifying), path.name

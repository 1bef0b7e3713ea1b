"""Catalog connections: reading entries, completeness for destinations, direct identifiers
in data scopes, and the connection JSON Schema with its examples."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.model.canonical_path import CanonicalPathError
from engine.rules.catalog_entry import (
    DIRECT_IDENTIFIER_PATHS,
    SAFE_HARBOR_PERMITTED_PATHS,
    Agreement,
    AgreementKind,
    BusinessOwner,
    CatalogError,
    Classification,
    Connection,
    Direction,
    FileEndpoint,
    HttpEndpoint,
    MessageFormat,
    MllpEndpoint,
    Sla,
    TaskAccess,
    TaskQueueEndpoint,
    TechnicalOwner,
    Transport,
    direct_identifiers_admitted,
)
from engine.security.roles import Role
from tests.schema_checks import assert_documented, schema_properties

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "rules" / "schema"
SCHEMA: dict[str, Any] = json.loads((SCHEMA_DIR / "connection.schema.json").read_text("utf-8"))
CANONICAL: dict[str, Any] = json.loads((SCHEMA_DIR / "canonical.schema.json").read_text("utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
DURATION_HINT = "Write a whole number followed by ms, s, m, h or d, e.g. 500ms, 30s, 5m"

LAB_OUT_YAML = """
id: lab-out
name: Reference lab orders (outbound)
description: New and cancelled lab orders sent to the reference lab.
direction: outbound
transport: mllp
endpoint: {host: lab-gateway.example.org, port: 2575, ack_timeout: 45s}
format: hl7v2
business_owner: {name: Dana Whitfield, email: dana.whitfield@example.org}
technical_owner:
  name: Integration on-call
  email: integration@example.org
  pager: integration-oncall
data_scope:
  - message
  - patient.identifiers[*].value
  - orders[*]
classification: phi
recovery_procedure: Check the lab VPN tunnel, then resend dead-lettered orders oldest first.
sla: {availability: 99.9%, max_delivery_minutes: 5, support_hours: 24x7}
agreement: {kind: BAA, reference: LEGAL-2024-117, on_file: true, expires: "2027-06-30"}
tags: [lab, orders]
"""


def lab_out() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(LAB_OUT_YAML)
    return loaded


def draft(**fields: Any) -> dict[str, Any]:
    """The least an entry may hold: a draft with only the required fields."""
    base: dict[str, Any] = {
        "id": "lab-out",
        "name": "Lab orders",
        "direction": "outbound",
        "transport": "mllp",
        "endpoint": {"host": "lab.example.org", "port": 2575},
        "format": "hl7v2",
    }
    base.update(fields)
    return base


# -- reading -----------------------------------------------------------------------------


def test_from_dict_reads_every_field() -> None:
    assert Connection.from_dict(lab_out()) == Connection(
        id="lab-out",
        name="Reference lab orders (outbound)",
        description="New and cancelled lab orders sent to the reference lab.",
        direction=Direction.OUTBOUND,
        transport=Transport.MLLP,
        endpoint=MllpEndpoint("lab-gateway.example.org", 2575, ack_timeout=45.0),
        format=MessageFormat.HL7V2,
        business_owner=BusinessOwner("Dana Whitfield", "dana.whitfield@example.org"),
        technical_owner=TechnicalOwner(
            "Integration on-call", "integration@example.org", pager="integration-oncall"
        ),
        data_scope=("message", "patient.identifiers[*].value", "orders[*]"),
        classification=Classification.PHI,
        recovery_procedure=(
            "Check the lab VPN tunnel, then resend dead-lettered orders oldest first."
        ),
        sla=Sla(99.9, 5, "24x7"),
        agreement=Agreement(AgreementKind.BAA, True, "LEGAL-2024-117", dt.date(2027, 6, 30)),
        tags=("lab", "orders"),
    )


@pytest.mark.parametrize(
    ("transport", "endpoint", "expected"),
    [
        ("mllp", {"host": "h", "port": 2575}, MllpEndpoint("h", 2575, 30.0)),
        ("mllp", {"host": "h", "port": 1, "ack_timeout": "500ms"}, MllpEndpoint("h", 1, 0.5)),
        ("http", {"url": "https://x.example/in"}, HttpEndpoint("https://x.example/in", "POST")),
        (
            "fhir",
            {
                "url": "https://fhir.example/r4",
                "method": "PUT",
                "headers": {"Authorization": {"secret_env": "FHIR_TOKEN"}},
            },
            HttpEndpoint(
                "https://fhir.example/r4", "PUT", headers=(("Authorization", "FHIR_TOKEN"),)
            ),
        ),
        (
            "fhir",
            {"url": "https://fhir.example/r4", "auth_secret_env": "FHIR_TOKEN"},
            HttpEndpoint("https://fhir.example/r4", auth_secret_env="FHIR_TOKEN"),
        ),
        ("file", {"directory": "/srv/out"}, FileEndpoint("/srv/out", "*")),
        ("file", {"directory": "/srv/in", "pattern": "*.hl7"}, FileEndpoint("/srv/in", "*.hl7")),
        ("task-queue", {"queue": "nurse-review"}, TaskQueueEndpoint("nurse-review")),
    ],
)
def test_endpoint_is_typed_by_transport(
    transport: str, endpoint: dict[str, Any], expected: object
) -> None:
    assert Connection.from_dict(draft(transport=transport, endpoint=endpoint)).endpoint == expected


def test_a_draft_reads_with_defaults() -> None:
    connection = Connection.from_dict(draft())
    assert connection.description == ""
    assert connection.data_scope == ()
    assert (connection.business_owner, connection.classification, connection.agreement) == (
        None,
        None,
        None,
    )


def queue(**fields: Any) -> dict[str, Any]:
    """A task-queue draft: the work queue ``review``."""
    return draft(id="review", transport="task-queue", endpoint={"queue": "review"},
                 format="canonical-json", **fields)


def test_a_task_queue_names_the_roles_that_see_read_and_act_on_its_tasks() -> None:
    access = {"see": ["operator"], "payload": ["clinician", "approver"], "act": ["clinician"]}
    connection = Connection.from_dict(queue(task_access=access))
    assert connection.task_access == TaskAccess(
        see=frozenset({Role.OPERATOR}), payload=frozenset({Role.CLINICIAN, Role.APPROVER}),
        act=frozenset({Role.CLINICIAN}))
    # Whoever reads the payload or acts on a task sees it; nobody else but the named.
    assert connection.task_access.seeing == {Role.OPERATOR, Role.CLINICIAN, Role.APPROVER}
    assert Connection.from_dict(queue()).task_access is None
    assert Connection.from_dict(queue(task_access={"act": ["registrar"]})).task_access == (
        TaskAccess(act=frozenset({Role.REGISTRAR})))


@pytest.mark.parametrize(
    ("availability", "percent"), [("99.9%", 99.9), ("100%", 100.0), (99.5, 99.5), (95, 95.0)]
)
def test_availability_is_read_as_percent(availability: object, percent: float) -> None:
    sla = Connection.from_dict(draft(sla={"availability": availability})).sla
    assert sla == Sla(availability=percent)


def test_an_expiry_date_already_parsed_by_yaml_is_accepted() -> None:
    agreement = {"kind": "DUA", "reference": "D-1", "expires": dt.date(2026, 1, 31)}
    connection = Connection.from_dict(draft(agreement=agreement))
    assert connection.agreement == Agreement(AgreementKind.DUA, False, "D-1", dt.date(2026, 1, 31))


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            draft(id="Lab_Out"),
            "connection: id 'Lab_Out' is not lower-case letters, digits and hyphens",
        ),
        ({"name": "x"}, "connection: id None is not lower-case letters, digits and hyphens"),
        ({k: v for k, v in draft().items() if k != "endpoint"}, "lab-out: missing endpoint"),
        (draft(data_scopes=["message"]), "lab-out: unknown key 'data_scopes'"),
        (
            draft(direction="out"),
            "lab-out: direction: 'out' is not one of inbound, outbound, bidirectional",
        ),
        (
            draft(classification="secret"),
            "lab-out: classification: 'secret' is not one of phi, "
            "limited, de-identified, operational",
        ),
        (
            draft(endpoint={"host": "h", "port": 70000}),
            "lab-out: endpoint.port: 70000 is not a port number (1-65535)",
        ),
        (
            draft(endpoint={"host": "h", "port": "2575"}),
            "lab-out: endpoint.port: '2575' is not a port number (1-65535)",
        ),
        (
            draft(endpoint={"host": "h", "port": 2575, "ack_timeout": 30}),
            "lab-out: endpoint.ack_timeout: 30 is not a duration",
        ),
        (draft(endpoint={"url": "https://x.example"}), "lab-out: endpoint: missing host, port"),
        (
            draft(transport="http", endpoint={"url": "https://x.example", "method": "DELETE"}),
            "lab-out: endpoint.method: 'DELETE' is not one of POST, PUT, PATCH, GET",
        ),
        (
            draft(
                transport="http",
                endpoint={
                    "url": "https://x.example",
                    "headers": {"Authorization": "Bearer abc123"},
                },
            ),
            "lab-out: endpoint.headers.Authorization: header values are not written in the catalog",
        ),
        (
            draft(
                transport="http",
                endpoint={
                    "url": "https://x.example",
                    "headers": {"X-Key": {"secret_env": "lower"}},
                },
            ),
            "lab-out: endpoint.headers.X-Key.secret_env: 'lower' is not an environment "
            "variable name",
        ),
        (
            draft(data_scope=["message", "patient..names"]),
            "lab-out: data_scope[1]: 'patient..names' is not a canonical path",
        ),
        (draft(data_scope="patient"), "lab-out: data_scope: expected a list, got str"),
        (draft(tags=["Lab"]), "lab-out: tags[0]: 'Lab' is not allowed here"),
        (
            draft(business_owner={"name": "A", "mail": "a@example.org"}),
            "lab-out: business_owner: unknown key 'mail'",
        ),
        (draft(technical_owner="Sam"), "lab-out: technical_owner: expected a mapping, got str"),
        (draft(sla={"availability": 120}), "lab-out: sla.availability: 120 is not a percentage"),
        (
            draft(sla={"availability": "99.9 %"}),
            "lab-out: sla.availability: '99.9 %' is not a percentage",
        ),
        (
            draft(
                transport="http",
                endpoint={
                    "url": "https://x.example",
                    "auth_secret_env": "TOKEN",
                    "headers": {"authorization": {"secret_env": "OTHER"}},
                },
            ),
            "lab-out: endpoint: Authorization is set by both auth_secret_env and headers",
        ),
        (
            draft(transport="fhir", endpoint={"url": "https://x.example", "auth_secret_env": "t"}),
            "lab-out: endpoint.auth_secret_env: 't' is not an environment variable name",
        ),
        (
            draft(agreement={"kind": "BAA", "expires": "2027-02-30"}),
            "lab-out: agreement.expires: '2027-02-30' is not a date (YYYY-MM-DD)",
        ),
        (
            draft(agreement={"kind": "BAA", "expires": "20270228"}),
            "lab-out: agreement.expires: '20270228' is not a date (YYYY-MM-DD)",
        ),
        (
            draft(agreement={"kind": "BAA", "on_file": "yes"}),
            "lab-out: agreement.on_file: 'yes' is not true or false",
        ),
        (
            draft(recovery_procedure=["restart"]),
            "lab-out: recovery_procedure: ['restart'] is not text",
        ),
        (
            draft(task_access={"act": ["operator"]}),
            "lab-out: task_access: only a task-queue connection has tasks to act on",
        ),
        (
            queue(task_access={"act": ["nurse"]}),
            "review: task_access.act[0]: 'nurse' is not one of analyst, approver, compliance, "
            "operator, admin, clinician, registrar",
        ),
        (queue(task_access={"act": "clinician"}), "review: task_access.act: expected a list, "
         "got str"),
        (queue(task_access={"decide": ["clinician"]}), "review: task_access: unknown key "
         "'decide'"),
    ],
)
def test_from_dict_refuses_malformed_entries(entry: dict[str, Any], reason: str) -> None:
    with pytest.raises(CatalogError) as caught:
        Connection.from_dict(entry)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            draft(
                transport="fhir",
                endpoint={"url": "https://x.example", "headers": {"Authorization": "Bearer abc"}},
            ),
            "lab-out: endpoint.headers.Authorization: header values are not written in the "
            "catalog. Write {secret_env: ENV_VAR_NAME} and set that variable on the server",
        ),
        (
            draft(endpoint={"host": "h", "port": 2575, "ack_timeout": "30 s"}),
            f"lab-out: endpoint.ack_timeout: '30 s' is not a duration. {DURATION_HINT}",
        ),
        (
            draft(data_scope=["patient names"]),
            "lab-out: data_scope[0]: 'patient names' is not a canonical path. Write dotted keys "
            "with [*] to expand lists, e.g. patient.identifiers[*].value",
        ),
    ],
)
def test_errors_say_what_to_do(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        Connection.from_dict(entry)
    assert str(caught.value) == message


# -- completeness ------------------------------------------------------------------------

EVERYTHING = [
    "business owner",
    "technical owner",
    "data scope",
    "classification",
    "recovery procedure",
]


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({}, []),
        (
            {
                "technical_owner": {
                    "name": "Ops",
                    "email": "ops@example.org",
                    "phone": "+1 555 0100",
                }
            },
            [],
        ),
        ({"business_owner": None}, ["business owner"]),
        ({"business_owner": {"name": "Dana"}}, ["business owner"]),
        ({"business_owner": {"email": "dana@example.org"}}, ["business owner"]),
        ({"technical_owner": {"name": "Ops", "email": "ops@example.org"}}, ["technical owner"]),
        ({"technical_owner": {"name": "Ops", "pager": "ops-oncall"}}, ["technical owner"]),
        ({"technical_owner": {"email": "ops@example.org", "pager": "p"}}, ["technical owner"]),
        ({"technical_owner": {"name": "Ops", "email": "", "pager": "p"}}, ["technical owner"]),
        ({"data_scope": []}, ["data scope"]),
        ({"classification": None}, ["classification"]),
        ({"recovery_procedure": "   "}, ["recovery procedure"]),
        ({"business_owner": None, "classification": None}, ["business owner", "classification"]),
        (
            {"recovery_procedure": None, "technical_owner": None, "data_scope": None},
            ["technical owner", "data scope", "recovery procedure"],
        ),
    ],
)
def test_missing_for_destination(change: dict[str, Any], missing: list[str]) -> None:
    entry = {k: v for k, v in {**lab_out(), **change}.items() if v is not None}
    assert Connection.from_dict(entry).missing_for_destination() == missing


def test_a_bare_draft_lacks_everything_in_a_fixed_order() -> None:
    assert Connection.from_dict(draft()).missing_for_destination() == EVERYTHING


@pytest.mark.parametrize(("direction", "missing"), [
    ("outbound", EVERYTHING),
    ("bidirectional", EVERYTHING),
    ("inbound", [need for need in EVERYTHING if need != "data scope"]),
])
def test_a_feed_that_only_sends_needs_no_data_scope(direction: str,
                                                     missing: list[str]) -> None:
    assert Connection.from_dict(draft(direction=direction)).missing() == missing


# -- direct identifiers ------------------------------------------------------------------

PATIENT_IDENTIFIERS = [p for p in DIRECT_IDENTIFIER_PATHS if p.startswith("patient.")]


@pytest.mark.parametrize(
    ("scope", "admitted"),
    [
        (["patient"], [("patient", p) for p in PATIENT_IDENTIFIERS]),
        (
            ["patient.identifiers[*].value"],
            [("patient.identifiers[*].value", "patient.identifiers")],
        ),
        (["patient.identifiers"], [("patient.identifiers", "patient.identifiers")]),
        (["patient.identifiers[*]"], [("patient.identifiers[*]", "patient.identifiers")]),
        (["patient.identifiers[*].type"], [("patient.identifiers[*].type", "patient.identifiers")]),
        (["patient.gender"], []),
        (["patient.birth_date"], [("patient.birth_date", "patient.birth_date")]),
        (["patient.names[*].family"], [("patient.names[*].family", "patient.names")]),
        (["patient.names[*].use"], []),
        (["patient.addresses[*].state", "patient.addresses[*].country"], []),
        (
            ["patient.addresses[*].postal_code"],
            [("patient.addresses[*].postal_code", "patient.addresses")],
        ),
        (
            ["patient.telecom[*].use", "patient.telecom[*].value"],
            [("patient.telecom[*].value", "patient.telecom")],
        ),
        (
            ["patient.primary_care_provider", "encounter.attending", "orders[*].ordering_provider"],
            [],
        ),
        (["encounter"], [("encounter", "encounter.visit_number"),
                         ("encounter", "encounter.episode_identifier")]),
        (
            ["merge"],
            [
                ("merge", "merge.prior_identifiers"),
                ("merge", "merge.prior_account_number"),
                ("merge", "merge.prior_visit_number"),
            ],
        ),
        (
            ["merge.prior_identifiers[*].value"],
            [("merge.prior_identifiers[*].value", "merge.prior_identifiers")],
        ),
        (["message", "results[*]", "orders[*].code"], []),
        (
            ["results[*].value", "patient.account_number", "encounter.visit_number"],
            [
                ("patient.account_number", "patient.account_number"),
                ("encounter.visit_number", "encounter.visit_number"),
            ],
        ),
        ([], []),
    ],
)
def test_direct_identifiers_admitted(scope: list[str], admitted: list[tuple[str, str]]) -> None:
    assert direct_identifiers_admitted(scope) == admitted


def test_patient_admits_every_patient_identifier_and_nothing_about_providers() -> None:
    admitted = {path for _, path in direct_identifiers_admitted(["patient"])}
    assert admitted == {
        "patient.identifiers",
        "patient.names",
        "patient.addresses",
        "patient.telecom",
        "patient.birth_date",
        "patient.mothers_maiden_name",
        "patient.account_number",
        "patient.ssn",
        "patient.drivers_license",
        "patient.birth_place",
        "patient.disability_identifiers",
        "patient.mother_identifiers",
    }


def test_a_malformed_scope_entry_is_refused() -> None:
    with pytest.raises(CanonicalPathError):
        direct_identifiers_admitted(["patient..names"])
    with pytest.raises(CatalogError) as caught:
        direct_identifiers_admitted("patient")
    assert str(caught.value) == "a data scope is a list of canonical paths, not 'patient'"


def _canonical_has(path: str) -> bool:
    node: dict[str, Any] = CANONICAL
    for key in path.replace("[*]", "").split("."):
        while "$ref" in node or "items" in node:
            node = (
                CANONICAL["$defs"][node["$ref"].rsplit("/", 1)[1]]
                if "$ref" in node
                else (node["items"])
            )
        if key not in node.get("properties", {}):
            return False
        node = node["properties"][key]
    return True


@pytest.mark.parametrize("path", [*DIRECT_IDENTIFIER_PATHS, *SAFE_HARBOR_PERMITTED_PATHS])
def test_identifier_paths_exist_in_the_canonical_model(path: str) -> None:
    assert _canonical_has(path)


# -- JSON Schema -------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(("path", "prop"), schema_properties(SCHEMA))
def test_every_property_has_a_description_and_valid_examples(
    path: str, prop: dict[str, Any]
) -> None:
    assert_documented(SCHEMA, path, prop)


@pytest.mark.parametrize(
    ("prop", "enum"),
    [
        ("direction", Direction),
        ("transport", Transport),
        ("format", MessageFormat),
        ("classification", Classification),
    ],
)
def test_schema_enums_match_the_model(prop: str, enum: Any) -> None:
    assert SCHEMA["properties"][prop]["enum"] == list(enum)


def test_the_schemas_roles_are_the_roles_users_hold() -> None:
    assert SCHEMA["$defs"]["roles"]["items"]["enum"] == list(Role)


@pytest.mark.parametrize("entry", [*SCHEMA["examples"], lab_out(), draft()])
def test_examples_are_valid_and_read(entry: dict[str, Any]) -> None:
    assert not list(VALIDATOR.iter_errors(entry))
    assert Connection.from_dict(entry).id == entry["id"]


def test_the_de_identified_example_admits_no_direct_identifier() -> None:
    research = next(e for e in SCHEMA["examples"] if e["classification"] == "de-identified")
    assert direct_identifiers_admitted(research["data_scope"]) == []


def _headers(value: Any) -> dict[str, Any]:
    return {"url": "https://fhir.example/r4", "headers": {"Authorization": value}}


@pytest.mark.parametrize(
    ("change", "path", "validator"),
    [
        ({"endpoint": {"host": "h"}}, ["endpoint"], "required"),
        ({"endpoint": {"host": "h", "port": 0}}, ["endpoint", "port"], "minimum"),
        (
            {"endpoint": {"host": "h", "port": 1, "ack_timeout": "30"}},
            ["endpoint", "ack_timeout"],
            "pattern",
        ),
        (
            {"transport": "fhir", "endpoint": _headers("Bearer abc")},
            ["endpoint", "headers", "Authorization"],
            "type",
        ),
        (
            {"transport": "fhir", "endpoint": _headers({"secret_env": "T", "value": "abc"})},
            ["endpoint", "headers", "Authorization"],
            "additionalProperties",
        ),
        (
            {"transport": "http", "endpoint": {"url": "https://user:pw@x.example/in"}},
            ["endpoint", "url"],
            "pattern",
        ),
        ({"transport": "task-queue", "endpoint": {"directory": "/srv"}}, ["endpoint"], "required"),
        ({"data_scope": ["message", "patient..names"]}, ["data_scope", 1], "pattern"),
        ({"data_scope": ["message", "message"]}, ["data_scope"], "uniqueItems"),
        ({"classification": "secret"}, ["classification"], "enum"),
        ({"recovery_procedure": "  "}, ["recovery_procedure"], "pattern"),
        ({"agreement": {"kind": "BAA", "on_file": True}}, ["agreement"], "required"),
        (
            {"agreement": {"kind": "none", "expires": "June 2027"}},
            ["agreement", "expires"],
            "pattern",
        ),
        (
            {"business_owner": {"name": "D", "email": "not-an-email"}},
            ["business_owner", "email"],
            "pattern",
        ),
        ({"technical_owner": {"pagr": "x"}}, ["technical_owner"], "additionalProperties"),
        (
            {"technical_owner": {"phone": "call Sam"}},
            ["technical_owner", "phone"],
            "pattern",
        ),
        ({"sla": {"availability": "99.9 percent"}}, ["sla", "availability"], "pattern"),
        ({"sla": {"availability": 101}}, ["sla", "availability"], "maximum"),
        ({"sla": {"availability": "100.5%"}}, ["sla", "availability"], "pattern"),
        (
            {"transport": "fhir", "endpoint": {"url": "https://x.example", "auth_secret_env": "t"}},
            ["endpoint", "auth_secret_env"],
            "pattern",
        ),
        ({"id": "Lab_Out"}, ["id"], "pattern"),
        ({"transport": "smtp"}, ["transport"], "enum"),
        ({"task_access": {"act": ["operator"]}}, ["task_access"], "not"),
        (
            {"transport": "task-queue", "endpoint": {"queue": "review"},
             "task_access": {"act": ["nurse"]}},
            ["task_access", "act", 0],
            "enum",
        ),
        (
            {"transport": "task-queue", "endpoint": {"queue": "review"},
             "task_access": {"decide": ["operator"]}},
            ["task_access"],
            "additionalProperties",
        ),
    ],
)
def test_invalid_entries_are_located(
    change: dict[str, Any], path: list[Any], validator: str
) -> None:
    entry = {**copy.deepcopy(draft()), **change}
    errors = [(list(e.absolute_path), e.validator) for e in VALIDATOR.iter_errors(entry)]
    assert (path, validator) in errors


def test_a_draft_without_owners_scope_or_recovery_is_schema_valid() -> None:
    assert not list(VALIDATOR.iter_errors(draft()))


def test_an_inbound_feed_may_name_its_charset() -> None:
    feed = draft(direction="inbound", charset="8859/1")
    assert not list(VALIDATOR.iter_errors(feed))
    assert Connection.from_dict(feed).charset == "8859/1"
    assert Connection.from_dict(draft()).charset is None
    with pytest.raises(CatalogError, match="charset: 'EBCDIC' is not a character set"):
        Connection.from_dict(draft(charset="EBCDIC"))


def test_the_schemas_charsets_are_those_the_parser_knows() -> None:
    from engine.hl7v2.charset import _TABLE_0211

    assert SCHEMA["properties"]["charset"]["enum"] == list(_TABLE_0211)


def test_ordering_is_strict_unless_the_entry_says_skip_dead() -> None:
    """Issue 14, item 2: what a dead letter (or a message failed in the pipeline) does to
    the messages behind it is the connection's to say; strict unless it says otherwise."""
    from engine.rules.catalog_entry import Ordering

    assert SCHEMA["properties"]["ordering"]["enum"] == list(Ordering)
    assert Connection.from_dict(draft()).ordering is Ordering.STRICT
    assert Connection.from_dict(lab_out()).ordering is Ordering.STRICT
    for ordering in ("strict", "skip_dead"):
        entry = draft(ordering=ordering)
        assert not list(VALIDATOR.iter_errors(entry))
        assert Connection.from_dict(entry).ordering == ordering
    assert SCHEMA["properties"]["ordering"]["default"] == "strict"
    with pytest.raises(CatalogError) as caught:
        Connection.from_dict(draft(ordering="loose"))
    assert caught.value.reason == "lab-out: ordering: 'loose' is not one of strict, skip_dead"

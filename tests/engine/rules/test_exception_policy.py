"""Exception policies: duration parsing, backoff sequences, precedence, ambiguity, and the
policies JSON Schema with its examples."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.errors import SwitchboardError
from engine.rules.exception_policy import (
    BUILTIN_DEFAULTS_DOCUMENT,
    DeadLetter,
    DurationError,
    ErrorClass,
    Escalation,
    ExponentialBackoff,
    FixedBackoff,
    Policy,
    PolicyError,
    PolicySet,
    PolicySource,
    Role,
    parse_duration,
)
from tests.schema_checks import assert_documented, schema_properties

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "rules" / "schema" / "policies.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
DURATION_HINT = "Write a whole number followed by ms, s, m, h or d, e.g. 500ms, 30s, 5m"

EXAMPLE_YAML = """
id: default-delivery
policies:
  - connections: ["*"]
    error_classes: [transport_error, timeout]
    max_attempts: 8
    backoff: {kind: exponential, initial: 5s, factor: 2, max_delay: 15m, jitter: 0.2}
    dead_letter: {owner_role: operator}
    escalation: {after: 30m, notify_role: admin, page_technical_owner: true}
  - connections: [lab-out]
    error_classes: ["*"]
    max_attempts: 3
    backoff: {kind: fixed, delay: 30s}
    dead_letter: {owner_role: analyst}
"""


def entry(connections: list[str], classes: list[str], **overrides: Any) -> dict[str, Any]:
    """A valid policy entry covering ``connections`` x ``classes``."""
    base: dict[str, Any] = {
        "connections": connections,
        "error_classes": classes,
        "max_attempts": 3,
        "backoff": {"kind": "fixed", "delay": "30s"},
        "dead_letter": {"owner_role": "operator"},
    }
    base.update(overrides)
    return base


def doc(*entries: dict[str, Any], doc_id: str = "d") -> dict[str, Any]:
    return {"id": doc_id, "policies": list(entries)}


def policy(backoff: FixedBackoff | ExponentialBackoff, max_attempts: int = 10) -> Policy:
    return Policy(max_attempts, backoff, DeadLetter(Role.OPERATOR), PolicySource("t", 0))


# -- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("0s", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("90m", 5400.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "1.5h",
        "1h30m",
        "5 s",
        " 5s",
        "5s ",
        "5S",
        "-5s",
        "05s",
        "5sec",
        "s",
        "５s",
        30,
        1.5,
        None,
        True,
    ],
)
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration. {DURATION_HINT}"
    assert isinstance(caught.value, SwitchboardError)


# -- backoff -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "max_attempts", "expected"),
    [
        (FixedBackoff(30.0), 4, [30.0, 30.0, 30.0]),
        (FixedBackoff(30.0), 1, []),
        (ExponentialBackoff(5.0, 2.0, 900.0), 6, [5.0, 10.0, 20.0, 40.0, 80.0]),
        (ExponentialBackoff(5.0, 2.0, 900.0), 10, [5, 10, 20, 40, 80, 160, 320, 640, 900]),
        (ExponentialBackoff(60.0, 3.0, 300.0), 5, [60.0, 180.0, 300.0, 300.0]),
        (ExponentialBackoff(10.0, 1.5, 60.0), 4, [10.0, 15.0, 22.5]),
        (ExponentialBackoff(10.0, 1.0, 10.0), 3, [10.0, 10.0]),
    ],
)
def test_schedule_without_jitter(
    backoff: FixedBackoff | ExponentialBackoff, max_attempts: int, expected: list[float]
) -> None:
    assert policy(backoff, max_attempts).schedule(random.Random(0)) == expected


def test_a_very_late_retry_waits_max_delay_rather_than_overflowing() -> None:
    backoff = ExponentialBackoff(5.0, 2.0, 900.0, jitter=0.1)
    assert policy(backoff).delay(5000, random.Random(0)) <= 900.0
    assert policy(ExponentialBackoff(5.0, 2.0, 900.0)).delay(5000, random.Random(0)) == 900.0


@pytest.mark.parametrize(
    "backoff",
    [
        ExponentialBackoff(5.0, 2.0, 900.0, jitter=0.2),
        ExponentialBackoff(1.0, 10.0, 60.0, jitter=0.5),
        FixedBackoff(30.0, jitter=0.25),
    ],
)
def test_jitter_stays_within_its_fraction_and_below_max_delay(
    backoff: FixedBackoff | ExponentialBackoff,
) -> None:
    bases = _bases(backoff, 11)
    firsts = []
    for seed in range(500):
        delays = policy(backoff, 12).schedule(random.Random(seed))
        firsts.append(delays[0])
        for base, delay in zip(bases, delays, strict=True):
            assert base * (1 - backoff.jitter) <= delay <= base * (1 + backoff.jitter)
            assert delay <= backoff.max_delay
    assert min(firsts) < bases[0] < max(firsts)  # jitter really spreads the first retry


def _bases(backoff: FixedBackoff | ExponentialBackoff, count: int) -> list[float]:
    without = (
        FixedBackoff(backoff.delay)
        if isinstance(backoff, FixedBackoff)
        else ExponentialBackoff(backoff.initial, backoff.factor, backoff.max_delay)
    )
    return policy(without, count + 1).schedule(random.Random(0))


def test_schedule_is_deterministic_given_the_rng() -> None:
    jittery = policy(ExponentialBackoff(5.0, 2.0, 900.0, jitter=0.2))
    assert jittery.schedule(random.Random(42)) == jittery.schedule(random.Random(42))
    assert jittery.schedule(random.Random(42)) != jittery.schedule(random.Random(43))


@pytest.mark.parametrize(
    ("attempts_made", "expected"), [(0, True), (1, True), (2, True), (3, False), (4, False)]
)
def test_should_retry(attempts_made: int, expected: bool) -> None:
    assert policy(FixedBackoff(1.0), max_attempts=3).should_retry(attempts_made) is expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.delay(0, random.Random(0)), "retry numbers start at 1, not 0"),
        (lambda p: p.should_retry(-1), "attempts made cannot be negative (-1)"),
    ],
)
def test_policy_refuses_nonsense_counts(call: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        call(policy(FixedBackoff(1.0)))
    assert str(caught.value) == message


# -- resolution --------------------------------------------------------------------------

PRECEDENCE = [
    entry(["*"], ["*"], max_attempts=1),
    entry(["*"], ["timeout"], max_attempts=2),
    entry(["lab-out"], ["*"], max_attempts=3),
    entry(["lab-out", "rad-out"], ["timeout"], max_attempts=4),
]


@pytest.mark.parametrize(
    ("connection", "error_class", "index"),
    [
        ("lab-out", "timeout", 3),  # explicit connection + explicit class
        ("rad-out", "timeout", 3),
        ("lab-out", "rejected", 2),  # explicit connection + "*"
        ("adt-out", "timeout", 1),  # "*" + explicit class
        ("adt-out", "rejected", 0),  # "*" + "*"
        ("rad-out", "conflict", 0),
    ],
)
@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_most_specific_policy_wins_whatever_the_order(
    connection: str, error_class: str, index: int, order: list[int]
) -> None:
    policies = PolicySet.from_documents([doc(*(PRECEDENCE[i] for i in order))])
    resolved = policies.resolve(connection, error_class)
    assert resolved.max_attempts == index + 1
    assert resolved.source == PolicySource("d", order.index(index))


@pytest.mark.parametrize(
    ("error_class", "index", "max_attempts"),
    [
        (ErrorClass.TRANSPORT_ERROR, 0, 6),
        (ErrorClass.TIMEOUT, 0, 6),
        (ErrorClass.REJECTED, 1, 1),
        (ErrorClass.VALIDATION, 1, 1),
        (ErrorClass.UNKNOWN_PATIENT, 1, 1),
        (ErrorClass.CONFLICT, 1, 1),
        (ErrorClass.CONFIGURATION, 1, 1),
    ],
)
def test_builtin_default_when_nothing_matches(
    error_class: ErrorClass, index: int, max_attempts: int
) -> None:
    policies = PolicySet.from_documents([doc(entry(["lab-out"], ["timeout"]))])
    resolved = policies.resolve("adt-out", error_class)
    assert resolved.is_builtin
    assert str(resolved.source) == f"built-in-defaults: policies[{index}]"
    assert resolved.max_attempts == max_attempts
    assert resolved.dead_letter == DeadLetter(Role.OPERATOR)
    assert resolved.escalation == Escalation(3600.0, Role.ADMIN, page_technical_owner=False)
    assert PolicySet().resolve("adt-out", error_class) == resolved


def test_builtin_default_retries_transient_failures_for_about_a_quarter_hour() -> None:
    transient = PolicySet().resolve("any", ErrorClass.TIMEOUT)
    assert transient.backoff == ExponentialBackoff(30.0, 2.0, 600.0, jitter=0.2)
    assert 600 < sum(transient.schedule(random.Random(0))) < 1200


def test_resolve_refuses_an_unknown_error_class() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicySet().resolve("lab-out", "timed_out")
    assert str(caught.value) == (
        "'timed_out' is not an error class. Use one of transport_error, rejected, timeout, "
        "validation, unknown_patient, conflict, configuration"
    )


def test_policy_exposes_what_the_delivery_worker_needs() -> None:
    policies = PolicySet.from_documents([yaml.safe_load(EXAMPLE_YAML)])
    resolved = policies.resolve("adt-out", "transport_error")
    assert resolved.max_attempts == 8
    assert resolved.backoff == ExponentialBackoff(5.0, 2.0, 900.0, jitter=0.2)
    assert resolved.dead_letter.owner_role is Role.OPERATOR
    assert resolved.escalation == Escalation(1800.0, Role.ADMIN, page_technical_owner=True)
    assert resolved.connections is None
    assert resolved.error_classes == (ErrorClass.TRANSPORT_ERROR, ErrorClass.TIMEOUT)
    assert policies.resolve("lab-out", "timeout").escalation is None


def test_connection_ids_lists_explicit_ids_with_their_sources() -> None:
    policies = PolicySet.from_documents(
        [
            doc(entry(["*"], ["*"]), entry(["lab-out", "rad-out"], ["timeout"]), doc_id="a"),
            doc(entry(["lab-out"], ["*"]), doc_id="b"),
        ]
    )
    assert policies.connection_ids() == {
        "lab-out": (PolicySource("a", 1), PolicySource("b", 0)),
        "rad-out": (PolicySource("a", 1),),
    }
    assert str(PolicySource("a", 1)) == "a: policies[1]"
    assert PolicySource("a", 1).path == "policies[1]"


# -- ambiguity ---------------------------------------------------------------------------

AMBIGUITY_HINT = "Merge them, or narrow one to other connections or error classes"


@pytest.mark.parametrize(
    ("first", "second", "subject"),
    [
        (entry(["*"], ["*"]), entry(["*"], ["*"]), "every connection and every error class"),
        (
            entry(["*"], ["timeout", "rejected"]),
            entry(["*"], ["rejected"]),
            "every connection and error class 'rejected'",
        ),
        (
            entry(["lab-out"], ["*"]),
            entry(["rad-out", "lab-out"], ["*"]),
            "connection 'lab-out' and every error class",
        ),
        (
            entry(["lab-out", "rad-out"], ["timeout"]),
            entry(["rad-out"], ["conflict", "timeout"]),
            "connection 'rad-out' and error class 'timeout'",
        ),
    ],
)
def test_equally_specific_overlapping_policies_are_refused(
    first: dict[str, Any], second: dict[str, Any], subject: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_documents([doc(first, doc_id="a"), doc(second, doc_id="b")])
    assert str(caught.value) == (
        f"a: policies[0] and b: policies[0] both set the policy for {subject}. {AMBIGUITY_HINT}"
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (entry(["lab-out"], ["timeout"]), entry(["rad-out"], ["timeout"])),
        (entry(["lab-out"], ["timeout"]), entry(["lab-out"], ["rejected"])),
        (entry(["lab-out"], ["*"]), entry(["*"], ["timeout"])),  # different specificity
        (entry(["*"], ["*"]), entry(["lab-out"], ["timeout"])),
    ],
)
def test_disjoint_or_differently_specific_policies_coexist(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert len(PolicySet.from_documents([doc(first, second)]).policies) == 2


# -- malformed documents -----------------------------------------------------------------


def _exp(**overrides: Any) -> dict[str, Any]:
    backoff = {"kind": "exponential", "initial": "30s", "factor": 2, "max_delay": "15m"}
    return {**backoff, **overrides}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            doc(entry(["*"], ["*"], backoff={"kind": "fixed", "delay": "30 s"})),
            f"d: policies[0].backoff.delay: '30 s' is not a duration. {DURATION_HINT}",
        ),
        (
            doc(entry(["*"], ["*"], backoff=_exp(initial=30))),
            f"d: policies[0].backoff.initial: 30 is not a duration. {DURATION_HINT}",
        ),
        (
            doc(entry(["*"], ["*"], backoff=_exp(max_delay="5s"))),
            "d: policies[0].backoff: max_delay (5s) is shorter than initial (30s)",
        ),
        (
            doc(entry(["*"], ["*"], backoff=_exp(factor=0.5))),
            "d: policies[0].backoff: factor 0.5 would shorten the waits; use 1 or more",
        ),
        (
            doc(entry(["*"], ["*"], backoff=_exp(jitter=1))),
            "d: policies[0].backoff: jitter 1.0 is not a fraction from 0 up to (not including) 1",
        ),
        (
            doc(entry(["*"], ["*"], backoff={"kind": "linear", "delay": "5s"})),
            "d: policies[0].backoff.kind: 'linear' is not fixed or exponential",
        ),
        (
            doc(entry(["*"], ["*"], backoff={"kind": "fixed", "delay": "0s"})),
            "d: policies[0].backoff: delay must be longer than 0 seconds, not 0.0",
        ),
        (
            doc(entry(["*"], ["*"], max_attempts=0)),
            "d: policies[0]: max_attempts must be 1 or more, not 0",
        ),
        (
            doc(entry(["*"], ["*"], max_attempts="3")),
            "d: policies[0].max_attempts: '3' is not a whole number",
        ),
        (
            doc(entry(["*", "lab-out"], ["*"])),
            'd: policies[0].connections: "*" means all, so it must stand alone',
        ),
        (
            doc(entry([], ["*"])),
            'd: policies[0].connections: expected a non-empty list, or ["*"] for all',
        ),
        (
            doc(entry(["Lab_Out"], ["*"])),
            "d: policies[0].connections: 'Lab_Out' is not a connection id "
            "(lower-case, digits, hyphens)",
        ),
        (
            doc(entry(["*"], ["timeout", "timeout"])),
            "d: policies[0].error_classes: lists the same value twice",
        ),
        (
            doc(entry(["*"], ["timeouts"])),
            "d: policies[0].error_classes: 'timeouts' is not an error class. Use one of "
            "transport_error, rejected, timeout, validation, unknown_patient, conflict, "
            "configuration",
        ),
        (
            doc(entry(["*"], ["*"], dead_letter={"owner_role": "ops"})),
            "d: policies[0].dead_letter.owner_role: 'ops' is not one of analyst, approver, "
            "compliance, operator, admin, clinician, registrar",
        ),
        (
            doc(
                entry(
                    ["*"],
                    ["*"],
                    escalation={
                        "after": "1h",
                        "notify_role": "admin",
                        "page_technical_owner": "yes",
                    },
                )
            ),
            "d: policies[0].escalation.page_technical_owner: 'yes' is not true or false",
        ),
        (
            doc(entry(["*"], ["*"], max_atempts=3)),
            "d: policies[0]: unknown key 'max_atempts'. Allowed keys: connections, "
            "error_classes, max_attempts, backoff, dead_letter, escalation, description",
        ),
        (
            doc({"connections": ["*"], "error_classes": ["*"]}),
            "d: policies[0]: missing max_attempts, backoff, dead_letter",
        ),
        (doc(), "d: policies must be a non-empty list"),
        (
            {"policies": []},
            "policy document 0: id None is not lower-case letters, digits and hyphens",
        ),
        (
            doc(entry(["*"], ["*"]), doc_id="built-in-defaults"),
            "policy document 0: id 'built-in-defaults' is reserved for the built-in defaults",
        ),
        (["not", "a", "mapping"], "policy document 0: expected a mapping, got list"),
    ],
)
def test_malformed_documents_are_refused_with_their_location(document: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_documents([document])
    assert str(caught.value) == message


def test_two_documents_with_one_id_are_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_documents([doc(entry(["a"], ["*"])), doc(entry(["b"], ["*"]))])
    assert str(caught.value) == (
        "policy documents 0 and 1 both have id 'd'. Give every policy file its own id"
    )


# -- JSON Schema -------------------------------------------------------------------------

VALIDATOR = Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(("path", "prop"), schema_properties(SCHEMA))
def test_every_property_has_a_description_and_valid_examples(
    path: str, prop: dict[str, Any]
) -> None:
    assert_documented(SCHEMA, path, prop)


def test_schema_enums_match_the_model() -> None:
    policy_props = SCHEMA["$defs"]["policy"]["properties"]
    assert policy_props["error_classes"]["items"]["enum"] == [*ErrorClass, "*"]
    assert policy_props["dead_letter"]["properties"]["owner_role"]["enum"] == list(Role)
    assert policy_props["escalation"]["properties"]["notify_role"]["enum"] == list(Role)


@pytest.mark.parametrize(
    "document",
    [*SCHEMA["examples"], yaml.safe_load(EXAMPLE_YAML)],
)
def test_examples_are_valid_and_read(document: dict[str, Any]) -> None:
    assert not list(VALIDATOR.iter_errors(document))
    assert PolicySet.from_documents([document]).policies


def test_builtin_defaults_are_a_valid_policy_document() -> None:
    renamed = {**copy.deepcopy(dict(BUILTIN_DEFAULTS_DOCUMENT)), "id": "renamed"}
    assert not list(VALIDATOR.iter_errors(renamed))
    assert PolicySet.from_documents([renamed]).resolve("x", "timeout").max_attempts == 6


@pytest.mark.parametrize(
    ("change", "path", "validator"),
    [
        (lambda p: p.update(connections=["*", "lab-out"]), ["connections"], "maxItems"),
        (lambda p: p.update(connections=["Lab_Out"]), ["connections", 0], "pattern"),
        (lambda p: p.update(error_classes=["timeouts"]), ["error_classes", 0], "enum"),
        (lambda p: p.update(max_attempts=0), ["max_attempts"], "minimum"),
        (lambda p: p["backoff"].update(initial="5 s"), ["backoff", "initial"], "pattern"),
        (lambda p: p["backoff"].update(initial="0s"), ["backoff", "initial"], "pattern"),
        (lambda p: p["backoff"].update(jitter=1), ["backoff", "jitter"], "exclusiveMaximum"),
        (lambda p: p["backoff"].pop("factor"), ["backoff"], "required"),
        (lambda p: p.update(backoff={"kind": "fixed"}), ["backoff"], "required"),
        (lambda p: p.pop("dead_letter"), [], "required"),
        (
            lambda p: p["dead_letter"].update(owner_role="ops"),
            ["dead_letter", "owner_role"],
            "enum",
        ),
        (lambda p: p["escalation"].update(after="soon"), ["escalation", "after"], "pattern"),
        (lambda p: p.update(max_atempts=3), [], "additionalProperties"),
    ],
)
def test_invalid_documents_are_located(change: Any, path: list[Any], validator: str) -> None:
    document = copy.deepcopy(SCHEMA["examples"][0])
    change(document["policies"][0])
    errors = [(list(e.absolute_path), e.validator) for e in VALIDATOR.iter_errors(document)]
    assert (["policies", 0, *path], validator) in errors

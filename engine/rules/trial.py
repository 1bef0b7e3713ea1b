"""One message tried against a rule set, for the test panel beside the rule editors:
the message read (the HL7 v2 tree with its paths, or the FHIR document), the canonical
record and its issues, every route row of the message's type and event with whether it
fired and what each of its conditions saw, group by group, and what each destination
and task would get. Pure: the caller compiles the rule set and shows the result.

A message that cannot be read is a result too (:class:`Problem`: what is wrong, where,
what to do), never an exception."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from engine.encoders import Delivery as EncoderDelivery
from engine.encoders import encode
from engine.errors import SwitchboardError
from engine.fhir import read_fhir, to_canonical
from engine.hl7v2 import Message, parse, text_error
from engine.hl7v2.tree import Node, message_tree
from engine.journal import FHIR_R4
from engine.model.mapping import Conversion
from engine.rules.conditions import (
    AllOf,
    AnyOf,
    Condition,
    Evidence,
    Leaf,
    Scope,
    evaluate_condition,
)
from engine.rules.route_table import Checkpoint, RouteRow
from engine.rules.rule_set import Outcome, RuleSet, Task

HL7V2 = "hl7v2"
# Encoded bodies derive their control ids from a message id: the panel's is fixed, so
# trying the same message twice gives the same bodies.
TRIAL_MESSAGE_ID = "test-panel"
_LINE_END = re.compile(rb"\r\n|\n")


@dataclass(frozen=True)
class Problem:
    """Why the message could not be tried: ``where`` in it (an HL7 or FHIR path, or a
    segment) when known, and ``hint`` what to do."""

    what: str
    where: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Verdict:
    """A condition's node as evaluated: a group (``all``, ``any``, ``not``) with its
    children, or a leaf with what it saw."""

    kind: Literal["all", "any", "not", "some", "every", "leaf"]
    held: bool
    children: tuple[Verdict, ...] = ()
    evidence: Evidence | None = None
    scope: str | None = None  # some/every: the list whose items are tested


@dataclass(frozen=True)
class RowTrial:
    """A route row the message meets by type and event: fired or not, and why."""

    table: str
    id: str
    description: str | None
    destinations: tuple[str, ...]
    checkpoint: Checkpoint | None
    fired: bool
    condition: Verdict | None  # None: the row has no condition


@dataclass(frozen=True)
class DeliveryTrial:
    """What one destination would get: its minimised payload, encoded, or why not."""

    destination: str
    payload: dict[str, Any]
    held_by: str | None
    media_type: str | None = None
    body: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Trial:
    format: str  # HL7V2 or FHIR_R4
    problem: Problem | None = None
    raw: bytes = b""  # what was tried: HL7 v2 with its segment separators
    message: Message | None = None
    tree: tuple[Node, ...] = ()
    document: Any = None  # the FHIR JSON, as sent
    outcome: Outcome | None = None
    rows: tuple[RowTrial, ...] = ()
    deliveries: tuple[DeliveryTrial, ...] = ()
    skipped_rows: int = 0  # rows of other message types or events

    @property
    def record(self) -> dict[str, Any] | None:
        return None if self.outcome is None else self.outcome.conversion.record

    @property
    def tasks(self) -> tuple[Task, ...]:
        return () if self.outcome is None else self.outcome.tasks

    @property
    def held(self) -> tuple[DeliveryTrial, ...]:
        return tuple(d for d in self.deliveries if d.held_by)


def try_message(rule_set: RuleSet, raw: bytes | str, at: datetime | None = None,
                charset: str | None = None) -> Trial:
    """``raw`` (HL7 v2 with any line ends, or FHIR JSON) through ``rule_set``; ``at``
    stands in for the time it was received and sent on, ``charset`` for the HL7 v2
    character set when MSH-18 names none."""
    at = at or datetime.now(UTC)
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if not data.strip():
        return Trial(HL7V2, Problem("there is no message to try",
                                    hint="Paste an HL7 v2 message or FHIR JSON"))
    if is_json(data):
        return _try_fhir(rule_set, data, at)
    return _try_hl7(rule_set, _segments(data), at, charset)


def is_json(data: bytes) -> bool:
    """FHIR JSON starts with a brace; HL7 v2 with its header segment."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _segments(data: bytes) -> bytes:
    """Pasted text with HL7's segment separator, blank lines and trailing space gone."""
    lines = [line.rstrip() for line in _LINE_END.sub(b"\r", data.strip()).split(b"\r")]
    return b"\r".join(line for line in lines if line)


def _try_hl7(rule_set: RuleSet, data: bytes, at: datetime, charset: str | None) -> Trial:
    try:
        message = parse(data, charset)
        unreadable = text_error(message)
        if unreadable is not None:
            raise unreadable
    except SwitchboardError as error:
        return Trial(HL7V2, _problem(error, "Check the message: it must start with MSH"))
    tree = tuple(message_tree(message))
    try:
        outcome = rule_set.process(message)
    except SwitchboardError as error:
        return Trial(HL7V2, _problem(error), data, message, tree)
    return _tried(rule_set, HL7V2, outcome, at, message=message, tree=tree, raw=data)


def _try_fhir(rule_set: RuleSet, data: bytes, at: datetime) -> Trial:
    try:
        fhir = read_fhir(data)
        record = to_canonical(fhir, received_at=at)
        outcome = rule_set.outcome(Conversion(record, (), True, (FHIR_R4,)))
    except SwitchboardError as error:
        return Trial(FHIR_R4, _problem(error, "Check the FHIR JSON"))
    return _tried(rule_set, FHIR_R4, outcome, at, document=fhir.document, raw=data)


def _problem(error: SwitchboardError, hint: str = "") -> Problem:
    return Problem(error.reason, error.location, error.hint or hint)


def _tried(rule_set: RuleSet, format_name: str, outcome: Outcome, at: datetime,
           **read: Any) -> Trial:
    message: Message | None = read.get("message")
    record = outcome.conversion.record
    fired = {row.id for row in outcome.decision.rows}
    met = met_rows(rule_set, record)
    rows = tuple(_row_trial(row, row.id in fired, record, message) for row in met)
    deliveries = tuple(_delivery(rule_set, delivery.destination, delivery.payload,
                                 delivery.held_by, at) for delivery in outcome.deliveries)
    return Trial(format_name, None, outcome=outcome, rows=rows, deliveries=deliveries,
                 skipped_rows=len(rule_set.routes.rows) - len(met), **read)


def met_rows(rule_set: RuleSet, record: Mapping[str, Any]) -> list[RouteRow]:
    """The rows whose match takes the record's message type and event, in order."""
    header = record.get("message")
    header = header if isinstance(header, dict) else {}
    kind, event = header.get("type"), header.get("event")
    return [row for row in rule_set.routes.rows if row.match.accepts(
        kind if isinstance(kind, str) else None, event if isinstance(event, str) else None)]


def _row_trial(row: RouteRow, fired: bool, record: Mapping[str, Any],
               message: Message | None) -> RowTrial:
    verdict = None if row.condition is None else explain(row.condition, record, message)
    return RowTrial(row.table, row.id, row.description, row.destinations, row.checkpoint,
                    fired, verdict)


def explain(condition: Condition, record: Mapping[str, Any],
            message: Message | None) -> Verdict:
    """Every node of ``condition`` evaluated (no short circuit), with what leaves saw."""
    if isinstance(condition, Leaf):
        seen: list[Evidence] = []
        held = evaluate_condition(condition, record, message, seen)
        return Verdict("leaf", held, evidence=seen[0])
    if isinstance(condition, AllOf | AnyOf):
        children = tuple(explain(child, record, message) for child in condition.children)
        verdicts = [child.held for child in children]
        if isinstance(condition, AllOf):
            return Verdict("all", all(verdicts), children)
        return Verdict("any", any(verdicts), children)
    if isinstance(condition, Scope):
        # The leaves as seen in the item that decided (every item when none did).
        found: list[Evidence] = []
        held = evaluate_condition(condition, record, message, found)
        return Verdict(condition.kind, held,
                       tuple(Verdict("leaf", e.held, evidence=e) for e in found),
                       scope=condition.of)
    child = explain(condition.child, record, message)
    return Verdict("not", not child.held, (child,))


def _delivery(rule_set: RuleSet, destination: str, payload: dict[str, Any],
              held_by: str | None, at: datetime) -> DeliveryTrial:
    connection = rule_set.connections.get(destination)
    if connection is None:
        return DeliveryTrial(destination, payload, held_by,
                             problem=f"'{destination}' is not in the catalog")
    try:
        encoded = encode(str(connection.format), payload,
                         EncoderDelivery(TRIAL_MESSAGE_ID, destination, at))
    except SwitchboardError as error:
        return DeliveryTrial(destination, payload, held_by, problem=str(error))
    return DeliveryTrial(destination, payload, held_by, encoded.media_type, encoded.body)


def expected_outcome(trial: Trial) -> dict[str, Any]:
    """The outcome now, as a rule-test case's ``expect`` writes it."""
    assert trial.outcome is not None
    decision = trial.outcome.decision
    return {
        "rows": [row.id for row in decision.rows],
        "destinations": list(decision.destinations),
        "held": [d.destination for d in trial.outcome.deliveries if d.held_by],
        "tasks": [{"queue": t.queue, "kind": t.kind, "mode": t.mode} for t in decision.tasks],
    }

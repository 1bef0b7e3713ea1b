"""The impact of a draft rule-set version on one message, against the published version:
what a reviewer must see before approving it (routes gained and lost, canonical fields,
each destination's minimised payload, tasks, exceptions), and the counts over many
messages. Pure: the impact preview (engine.impact_preview) feeds it messages from the
journal and the rule tests.

Everything it reports names rows, destinations, canonical paths and error classes,
never a value from a message: the report is kept in the store and shown to people who
may not see PHI. Paths are generalised (``results[*].code``), so one changed field
reads once however many repetitions it has.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.encoders import Delivery as EncoderDelivery
from engine.encoders import encode
from engine.errors import SwitchboardError
from engine.hl7v2 import Message
from engine.model.mapping import Conversion
from engine.model.outcome_event import OutcomeEvent
from engine.rules.rule_set import Outcome, RuleSet
from engine.rules.rule_tests import case_message
from engine.rules.source import RuleSource

NO_ROUTE = "no route row matched: the message goes nowhere"
_INDEX = re.compile(r"\[\d+\]")
# Encoding only checks that a payload can be encoded: the body is thrown away, so the
# delivery it names is a fixed stand-in.
_STAND_IN_SENT_AT = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Unreadable:
    """A message that could not be read (parsed, or read as FHIR). ``error`` is the
    error's class: its text may quote the message."""

    error: str


Replayable = Message | Conversion | OutcomeEvent | Unreadable
"""One message to replay: parsed HL7 v2, a FHIR resource already converted (its
conversion does not depend on the rules), a task's outcome event (its originating
message converted by each version), or why it could not be read."""


@dataclass(frozen=True)
class Changes:
    """Names (paths, routes, codes) only one side has, and, for paths, those whose
    values differ; each sorted."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, list[str]]:
        parts = (("added", self.added), ("removed", self.removed), ("changed", self.changed))
        return {name: list(names) for name, names in parts if names}


NO_CHANGES = Changes()


def set_changes(before: Iterable[str], after: Iterable[str]) -> Changes:
    old, new = set(before), set(after)
    return Changes(tuple(sorted(new - old)), tuple(sorted(old - new)))


@dataclass(frozen=True)
class MessageImpact:
    """How the draft treats one message differently from the baseline. ``before`` and
    ``after`` are the destinations each routes it to, for the counts; ``exceptions``
    are exception items the draft adds (``added``) or no longer raises (``removed``);
    ``issues`` are the conversion's data warnings."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    routes: Changes = NO_CHANGES
    destinations: Changes = NO_CHANGES
    held: Changes = NO_CHANGES
    canonical: Changes = NO_CHANGES
    payloads: tuple[tuple[str, Changes], ...] = ()
    tasks: Changes = NO_CHANGES
    exceptions: Changes = NO_CHANGES
    issues: Changes = NO_CHANGES
    unreadable: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.routes or self.destinations or self.held or self.canonical
                    or self.payloads or self.tasks or self.exceptions or self.issues)

    def as_dict(self) -> dict[str, Any]:
        """The differences, JSON-able, leaving out the kinds with none."""
        found: dict[str, Any] = {}
        for name in ("routes", "destinations", "held", "canonical"):
            changes: Changes = getattr(self, name)
            if changes:
                found[name] = changes.as_dict()
        if self.payloads:
            found["payloads"] = {dest: changes.as_dict() for dest, changes in self.payloads}
        for name in ("tasks", "exceptions", "issues"):
            changes = getattr(self, name)
            if changes:
                found[name] = changes.as_dict()
        return found


# ---- one message -------------------------------------------------------------------------


def compare(baseline: RuleSet, draft: RuleSet, item: Replayable, *,
            same_mapping: bool = False) -> MessageImpact:
    """``item`` through both versions, and what differs. With ``same_mapping`` (see
    :func:`same_mapping`) an HL7 v2 message is converted once, by the baseline: the
    conversion is most of the work, and the draft's would be the same."""
    if isinstance(item, Unreadable):
        # Neither version can read it: the same exception either way, nothing to report.
        return MessageImpact((), (), unreadable=True)
    before = evaluate(baseline, item)
    if same_mapping and isinstance(item, Message) and isinstance(before, Outcome):
        after = evaluate(draft, before.conversion, item)
    else:
        after = evaluate(draft, item)
    if isinstance(before, str) or isinstance(after, str):
        return _failure_impact(baseline, before, draft, after)
    return _outcome_impact(baseline, before, draft, after)


def evaluate(rule_set: RuleSet, item: Message | Conversion | OutcomeEvent,
             message: Message | None = None, *, explain: bool = False) -> Outcome | str:
    """The outcome of ``item`` under ``rule_set``, or the exception it raises instead,
    named by its error class (the pipeline's error text can quote the message). A
    conversion is routed as it is, with ``message`` for raw HL7 v2 conditions. With
    ``explain``, each row fired carries what its conditions saw."""
    try:
        if isinstance(item, Conversion):
            return rule_set.outcome(item, message, explain=explain)
        if isinstance(item, OutcomeEvent):
            return rule_set.outcome(*item.conversion(rule_set.mapper, rule_set.charset_of),
                                    explain=explain)
        return rule_set.process(item, explain=explain)
    except SwitchboardError as error:
        return f"cannot be processed ({type(error).__name__})"
    except Exception as error:  # a defect in one version is its exception, not a crash
        return f"internal error ({type(error).__name__})"


def _failure_impact(baseline: RuleSet, before: Outcome | str, draft: RuleSet,
                    after: Outcome | str) -> MessageImpact:
    """One side (or both) could not process the message: it routes nowhere there."""
    old = _routes(before) if isinstance(before, Outcome) else set()
    new = _routes(after) if isinstance(after, Outcome) else set()
    return MessageImpact(
        _destinations(before), _destinations(after),
        routes=set_changes(old, new),
        destinations=set_changes(_destinations(before), _destinations(after)),
        held=set_changes(_held(before), _held(after)),
        tasks=set_changes(_tasks(before), _tasks(after)),
        exceptions=set_changes(_failure_codes(baseline, before),
                               _failure_codes(draft, after)))


def _outcome_impact(baseline: RuleSet, before: Outcome, draft: RuleSet,
                    after: Outcome) -> MessageImpact:
    payloads, encoding = _delivery_changes(baseline, before, draft, after)
    exceptions = set_changes(_outcome_codes(before) | encoding[0],
                             _outcome_codes(after) | encoding[1])
    return MessageImpact(
        _destinations(before), _destinations(after),
        routes=set_changes(_routes(before), _routes(after)),
        destinations=set_changes(before.decision.destinations, after.decision.destinations),
        held=set_changes(_held(before), _held(after)),
        canonical=path_changes(before.conversion.record, after.conversion.record),
        payloads=payloads,
        tasks=set_changes(_tasks(before), _tasks(after)),
        exceptions=exceptions,
        issues=set_changes(_issues(before), _issues(after)))


def _destinations(outcome: Outcome | str) -> tuple[str, ...]:
    return outcome.decision.destinations if isinstance(outcome, Outcome) else ()


def _routes(outcome: Outcome) -> set[str]:
    return {f"{row.table}/{row.id} → {dest}"
            for row in outcome.decision.rows for dest in row.destinations}


def _held(outcome: Outcome | str) -> set[str]:
    if not isinstance(outcome, Outcome):
        return set()
    return {d.destination for d in outcome.deliveries if d.held_by}


def _tasks(outcome: Outcome | str) -> set[str]:
    if not isinstance(outcome, Outcome):
        return set()
    return {f"{t.row}: {t.queue}/{t.kind} ({t.mode})" for t in outcome.decision.tasks}


def _issues(outcome: Outcome) -> set[str]:
    # Issues name HL7 and canonical paths and a fixed problem, never the value.
    return {_general(str(issue)) for issue in outcome.conversion.issues}


def _failure_codes(rule_set: RuleSet, outcome: Outcome | str) -> set[str]:
    """The exceptions of a side compared with one that failed: all of them."""
    if not isinstance(outcome, Outcome):
        return {outcome}
    codes = _outcome_codes(outcome)
    for delivery in outcome.deliveries:
        codes |= encoding_failures(rule_set, delivery.destination, delivery.payload)
    return codes


def _outcome_codes(outcome: Outcome) -> set[str]:
    """The exception items the pipeline raises for ``outcome`` before encoding. A
    canonical problem is named by its location only: the schema's wording can quote
    the value that broke it."""
    codes = {f"canonical record invalid at {_general(problem.partition(': ')[0])}"
             for problem in outcome.problems}
    if not outcome.decision.rows and outcome.needs_a_route:
        codes.add(NO_ROUTE)
    return codes


# ---- deliveries ------------------------------------------------------------------------


def _delivery_changes(
    baseline: RuleSet, before: Outcome, draft: RuleSet, after: Outcome,
) -> tuple[tuple[tuple[str, Changes], ...], tuple[set[str], set[str]]]:
    """Per destination routed by both, how its payload changed; and the encoding
    failures of each side. A delivery the same on both sides (payload and format)
    encodes alike, so only deliveries that differ are encoded."""
    old = {d.destination: d.payload for d in before.deliveries}
    new = {d.destination: d.payload for d in after.deliveries}
    payloads: list[tuple[str, Changes]] = []
    failed_before: set[str] = set()
    failed_after: set[str] = set()
    for dest in sorted(old.keys() | new.keys()):
        old_payload, new_payload = old.get(dest), new.get(dest)
        if (old_payload == new_payload
                and _format(baseline, dest) == _format(draft, dest)):
            continue
        if old_payload is not None and new_payload is not None:
            changes = path_changes(old_payload, new_payload)
            if changes:
                payloads.append((dest, changes))
        if old_payload is not None:
            failed_before |= encoding_failures(baseline, dest, old_payload)
        if new_payload is not None:
            failed_after |= encoding_failures(draft, dest, new_payload)
    return tuple(payloads), (failed_before, failed_after)


def _format(rule_set: RuleSet, destination: str) -> str | None:
    connection = rule_set.connections.get(destination)
    return None if connection is None else str(connection.format)


def encoding_failures(rule_set: RuleSet, destination: str,
                      payload: Mapping[str, Any]) -> set[str]:
    """The exception the pipeline raises when ``payload`` cannot be encoded for
    ``destination`` (none when it can), named by destination and error class."""
    format_name = _format(rule_set, destination)
    if format_name is None:
        return {f"cannot encode for {destination}: not in the catalog"}
    try:
        encode(format_name, payload,
               EncoderDelivery("impact-preview", destination, _STAND_IN_SENT_AT))
    except SwitchboardError as error:
        return {f"cannot encode for {destination} ({type(error).__name__})"}
    return set()


# ---- paths -------------------------------------------------------------------------------


def path_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> Changes:
    """The leaf paths of two records that only one has, or whose values differ,
    generalised (``results[*].code``). Empty objects and lists count as absent."""
    if before == after:
        return NO_CHANGES
    old, new = leaves(before), leaves(after)
    changed = {path for path in old.keys() & new.keys() if old[path] != new[path]}
    return Changes(_generalised(new.keys() - old.keys()), _generalised(old.keys() - new.keys()),
                   _generalised(changed))


def leaves(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every scalar of ``record`` by its path, with list indexes: ``results[0].code``."""
    found: dict[str, Any] = {}
    _collect(record, "", found)
    return found


def _collect(value: Any, prefix: str, found: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, f"{prefix}.{key}" if prefix else str(key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, f"{prefix}[{index}]", found)
    else:
        found[prefix] = value


def _generalised(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({_general(path) for path in paths}))


def _general(path: str) -> str:
    return _INDEX.sub("[*]", path)


def same_mapping(baseline: RuleSource, draft: RuleSource) -> bool:
    """Whether both sources convert every message alike: the same mapping documents,
    lookup tables and concept maps (the mapper is built from nothing else)."""
    def mapping_inputs(source: RuleSource) -> tuple[list[Any], dict[str, str]]:
        # In their order: a later mapping's field overwrites an earlier one's.
        documents = [doc for doc in source.documents if doc.kind in ("mapping", "table")]
        return documents, source.concept_maps

    return mapping_inputs(baseline) == mapping_inputs(draft)


# ---- the rule tests' messages -------------------------------------------------------------


@dataclass(frozen=True)
class CaseMessage:
    """A rule test case's input message, named by its test file and case id."""

    file: str
    case: str
    raw: bytes


def rule_test_messages(source: RuleSource) -> list[CaseMessage]:
    """The messages ``source``'s rule tests feed the rules, in file and case order (as
    the rule test runner reads them); a case whose message file is missing is left out."""
    found = []
    for doc in source.of_kind("tests"):
        cases = doc.data.get("cases") if isinstance(doc.data, dict) else None
        for case in cases or []:
            raw = case_message(source, doc.path, case)
            if raw is not None:
                found.append(CaseMessage(doc.path, str(case.get("id")), raw))
    return found


# ---- many messages ---------------------------------------------------------------------


@dataclass
class _DestinationCounts:
    before: int = 0
    after: int = 0
    added: int = 0
    removed: int = 0
    payload_changed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Tally:
    """The counts over many impacts, added one at a time so a preview can stream."""

    messages: int = 0
    changed: int = 0
    unreadable: int = 0
    with_new_exceptions: int = 0
    with_exceptions_gone: int = 0
    new_exceptions: Counter[str] = field(default_factory=Counter)
    exceptions_gone: Counter[str] = field(default_factory=Counter)
    destinations: dict[str, _DestinationCounts] = field(default_factory=dict)

    def add(self, impact: MessageImpact) -> None:
        self.messages += 1
        self.changed += impact.changed
        self.unreadable += impact.unreadable
        self.with_new_exceptions += bool(impact.exceptions.added)
        self.with_exceptions_gone += bool(impact.exceptions.removed)
        self.new_exceptions.update(impact.exceptions.added)
        self.exceptions_gone.update(impact.exceptions.removed)
        for dest in impact.before:
            self._destination(dest).before += 1
        for dest in impact.after:
            self._destination(dest).after += 1
        for dest in impact.destinations.added:
            self._destination(dest).added += 1
        for dest in impact.destinations.removed:
            self._destination(dest).removed += 1
        for dest, _changes in impact.payloads:
            self._destination(dest).payload_changed += 1

    def _destination(self, name: str) -> _DestinationCounts:
        counts = self.destinations.get(name)
        if counts is None:
            counts = self.destinations[name] = _DestinationCounts()
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "changed": self.changed,
            "unchanged": self.messages - self.changed,
            "unreadable": self.unreadable,
            "messages_with_new_exceptions": self.with_new_exceptions,
            "messages_with_exceptions_gone": self.with_exceptions_gone,
            "new_exceptions": dict(sorted(self.new_exceptions.items())),
            "exceptions_gone": dict(sorted(self.exceptions_gone.items())),
            "destinations": {name: counts.as_dict()
                             for name, counts in sorted(self.destinations.items())},
        }


def summarise(impacts: Iterable[MessageImpact]) -> dict[str, Any]:
    """Totals and per-destination counts over ``impacts``, JSON-able, in a stable order."""
    tally = Tally()
    for impact in impacts:
        tally.add(impact)
    return tally.as_dict()

"""Exception policies: how often and how patiently a failed delivery is retried, who owns
it once retries run out, and who is told.

Policies are data (``rules/policies/*.yaml``, shape in ``rules/schema/policies.schema.json``)
so that analysts tune retries without a release. Each policy covers some connections and
some error classes; :meth:`PolicySet.resolve` picks the most specific one, and falls back to
the built-in defaults (:data:`BUILTIN_DEFAULTS_DOCUMENT`) so that no failure is ever left
without an owner. Pure: documents arrive parsed; nothing here reads files or clocks.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from engine.errors import SwitchboardError
from engine.rules.document_reader import IDENTIFIER, DocumentReader

# Durations used to be defined here: re-exported so that existing imports keep working.
from engine.rules.duration import DurationError as DurationError
from engine.rules.duration import parse_duration as parse_duration
from engine.security.roles import Role

WILDCARD: Final = "*"
"""Stands alone in ``connections`` or ``error_classes`` to mean every one."""

ESCALATION_QUEUE: Final = "escalations"
"""The task queue where an escalation becomes a task for the role its policy names."""

BUILTIN_DOCUMENT_ID: Final = "built-in-defaults"
"""Document id of the built-in defaults; reserved, so no policy file can take it."""

_T = TypeVar("_T")


class PolicyError(SwitchboardError):
    """An exception-policy document cannot be used (malformed, or ambiguous with another)."""


class ErrorClass(StrEnum):
    """Why a delivery failed, as far as retrying is concerned (values as written in YAML)."""

    TRANSPORT_ERROR = "transport_error"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    VALIDATION = "validation"
    UNKNOWN_PATIENT = "unknown_patient"
    CONFLICT = "conflict"
    # The process lacks something the catalog names (a secret's variable): a person
    # must fix it, and the engine reads its environment only when it starts.
    CONFIGURATION = "configuration"


TRANSIENT_ERROR_CLASSES: Final = frozenset({ErrorClass.TRANSPORT_ERROR, ErrorClass.TIMEOUT})
"""Failures that waiting can fix; only these are retried by the built-in defaults."""

NEVER_RETRIED: Final = frozenset({ErrorClass.CONFIGURATION})
"""Failures no retry by this process can fix, whatever a policy allows: each is
dead-lettered at once, so its exception item opens with the first failure."""


def _check_jitter(jitter: float) -> None:
    if not 0 <= jitter < 1:
        raise PolicyError(f"jitter {jitter!r} is not a fraction from 0 up to (not including) 1")


def _jittered(base: float, jitter: float, ceiling: float, rng: random.Random) -> float:
    """``base`` moved by up to ± ``jitter`` of itself, never above ``ceiling``; spreads the
    retries of many failed deliveries so they do not hit a recovering destination at once."""
    if jitter == 0:
        return base
    return min(ceiling, base * (1 + rng.uniform(-jitter, jitter)))


@dataclass(frozen=True)
class FixedBackoff:
    """The same wait before every retry (``delay`` seconds, ± ``jitter``)."""

    delay: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.delay <= 0:
            raise PolicyError(f"delay must be longer than 0 seconds, not {self.delay!r}")
        _check_jitter(self.jitter)

    @property
    def max_delay(self) -> float:
        """The longest wait jitter can produce."""
        return self.delay * (1 + self.jitter)

    def delay_before(self, attempt: int, rng: random.Random) -> float:
        return _jittered(self.delay, self.jitter, self.max_delay, rng)


@dataclass(frozen=True)
class ExponentialBackoff:
    """``initial`` seconds before the first retry, ``factor`` times longer before each
    next one, never more than ``max_delay``; ± ``jitter`` on each, still capped."""

    initial: float
    factor: float
    max_delay: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise PolicyError(f"initial must be longer than 0 seconds, not {self.initial!r}")
        if self.factor < 1:
            raise PolicyError(f"factor {self.factor!r} would shorten the waits; use 1 or more")
        if self.max_delay < self.initial:
            raise PolicyError(
                f"max_delay ({self.max_delay:g}s) is shorter than initial ({self.initial:g}s)"
            )
        _check_jitter(self.jitter)

    def delay_before(self, attempt: int, rng: random.Random) -> float:
        try:
            base = min(self.max_delay, self.initial * float(self.factor) ** (attempt - 1))
        except OverflowError:  # a very late attempt: far past the cap anyway
            base = self.max_delay
        return _jittered(base, self.jitter, self.max_delay, rng)


Backoff = FixedBackoff | ExponentialBackoff


@dataclass(frozen=True)
class DeadLetter:
    """Where a delivery goes when retries run out: the exception queue of ``owner_role``."""

    owner_role: Role


@dataclass(frozen=True)
class Escalation:
    """Who is told when a failure stays unresolved for ``after`` seconds."""

    after: float
    notify_role: Role
    page_technical_owner: bool = False

    def __post_init__(self) -> None:
        if self.after < 0:
            raise PolicyError(f"escalation after {self.after!r} seconds is in the past")


@dataclass(frozen=True)
class PolicySource:
    """Where a policy was written: document id and 0-based index in its ``policies``."""

    document_id: str
    index: int

    @property
    def path(self) -> str:
        return f"policies[{self.index}]"

    def __str__(self) -> str:
        return f"{self.document_id}: {self.path}"


@dataclass(frozen=True)
class Policy:
    """Retry, dead-letter and escalation rules for some connections and error classes.

    ``max_attempts`` counts every delivery attempt, the first included, so a policy makes
    ``max_attempts - 1`` retries. ``connections`` / ``error_classes`` of ``None`` mean all.
    """

    max_attempts: int
    backoff: Backoff
    dead_letter: DeadLetter
    source: PolicySource
    escalation: Escalation | None = None
    connections: tuple[str, ...] | None = None
    error_classes: tuple[ErrorClass, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise PolicyError(f"max_attempts must be 1 or more, not {self.max_attempts!r}")

    @property
    def is_builtin(self) -> bool:
        return self.source.document_id == BUILTIN_DOCUMENT_ID

    @property
    def specificity(self) -> int:
        """3 = explicit connection and class, 2 = explicit connection, 1 = explicit class,
        0 = every connection and class; a higher one wins in :meth:`PolicySet.resolve`."""
        return 2 * (self.connections is not None) + (self.error_classes is not None)

    def covers(self, connection_id: str, error_class: ErrorClass) -> bool:
        return (self.connections is None or connection_id in self.connections) and (
            self.error_classes is None or error_class in self.error_classes
        )

    def should_retry(self, attempts_made: int) -> bool:
        """Whether another attempt is allowed after ``attempts_made`` attempts failed."""
        if attempts_made < 0:
            raise PolicyError(f"attempts made cannot be negative ({attempts_made})")
        return attempts_made < self.max_attempts

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); the same ``rng``
        state gives the same answer, so schedules can be replayed in tests and previews."""
        if attempt < 1:
            raise PolicyError(f"retry numbers start at 1, not {attempt}")
        return self.backoff.delay_before(attempt, rng)

    def schedule(self, rng: random.Random) -> list[float]:
        """Every wait this policy allows, in order (one per retry)."""
        return [self.delay(attempt, rng) for attempt in range(1, self.max_attempts)]


@dataclass(frozen=True)
class PolicySet:
    """Every policy of a published rule set, checked so that each (connection, error
    class) has at most one most-specific policy."""

    policies: tuple[Policy, ...] = ()

    def __post_init__(self) -> None:
        _check_unambiguous(self.policies)

    @classmethod
    def from_documents(cls, docs: Sequence[Mapping[str, Any]]) -> PolicySet:
        """Read parsed policy documents; raises :class:`PolicyError` naming the place."""
        seen: dict[str, int] = {}
        policies: list[Policy] = []
        for number, doc in enumerate(docs):
            document_id = _document_id(doc, number)
            if document_id in seen:
                raise PolicyError(
                    f"policy documents {seen[document_id]} and {number} both have id "
                    f"{document_id!r}",
                    hint="Give every policy file its own id",
                )
            seen[document_id] = number
            policies.extend(_read_document(doc, document_id))
        return cls(tuple(policies))

    def resolve(self, connection_id: str, error_class: ErrorClass | str) -> Policy:
        """The policy for a failure: explicit connection and class, then explicit
        connection, then explicit class, then the catch-all; else the built-in default."""
        wanted = _error_class(error_class)
        for candidates in (self.policies, _BUILTIN_POLICIES):
            covering = [p for p in candidates if p.covers(connection_id, wanted)]
            if covering:
                return max(covering, key=lambda policy: policy.specificity)
        raise AssertionError("the built-in defaults cover every error class")

    def connection_ids(self) -> dict[str, tuple[PolicySource, ...]]:
        """Each explicitly named connection id, with where it is named (for the linter to
        check that the catalog has it), in order of first mention."""
        named: dict[str, list[PolicySource]] = {}
        for policy in self.policies:
            for connection_id in policy.connections or ():
                named.setdefault(connection_id, []).append(policy.source)
        return {connection_id: tuple(sources) for connection_id, sources in named.items()}


def _error_class(value: object) -> ErrorClass:
    if isinstance(value, str) and value in _values(ErrorClass):
        return ErrorClass(value)
    raise PolicyError(f"{value!r} is not an error class", hint=f"Use one of {_choices(ErrorClass)}")


# -- ambiguity ---------------------------------------------------------------------------


def _check_unambiguous(policies: Sequence[Policy]) -> None:
    """Two policies of equal specificity that share a (connection, class) would make the
    outcome depend on file order; refuse them when the set is built, not when mail fails."""
    for index, first in enumerate(policies):
        for second in policies[index + 1 :]:
            if first.specificity == second.specificity:
                _check_pair(first, second)


def _check_pair(first: Policy, second: Policy) -> None:
    connections = _overlap(first.connections, second.connections)
    classes = _overlap(first.error_classes, second.error_classes)
    if connections is None or classes is None:
        return
    raise PolicyError(
        f"{first.source} and {second.source} both set the policy for "
        f"{_describe(connections, 'connection')} and {_describe(classes, 'error class')}",
        hint="Merge them, or narrow one to other connections or error classes",
    )


def _overlap(first: tuple[str, ...] | None, second: tuple[str, ...] | None) -> str | None:
    """A value both selections share (``WILDCARD`` when both take all), or None."""
    if first is None or second is None:
        shared = first or second
        return WILDCARD if shared is None else shared[0]
    return next((value for value in first if value in second), None)


def _describe(value: str, noun: str) -> str:
    return f"every {noun}" if value == WILDCARD else f"{noun} {str(value)!r}"


# -- reading documents -------------------------------------------------------------------


_reader = DocumentReader(PolicyError)

_POLICY_KEYS: Final = (
    ("connections", "error_classes", "max_attempts", "backoff", "dead_letter"),
    ("escalation", "description"),
)
_BACKOFF_KEYS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "fixed": (("kind", "delay"), ("jitter",)),
    "exponential": (("kind", "initial", "factor", "max_delay"), ("jitter",)),
}


def _document_id(doc: object, number: int) -> str:
    where = f"policy document {number}"
    document_id = _reader.identifier(_reader.mapping(doc, where), where)
    if document_id == BUILTIN_DOCUMENT_ID:
        raise PolicyError(f"{where}: id {document_id!r} is reserved for the built-in defaults")
    return document_id


def _read_document(doc: Mapping[str, Any], document_id: str) -> list[Policy]:
    _reader.check_keys(doc, ("id", "policies"), ("description",), document_id)
    entries = doc["policies"]
    if not isinstance(entries, list) or not entries:
        raise PolicyError(f"{document_id}: policies must be a non-empty list")
    return [
        _read_policy(entry, PolicySource(document_id, index)) for index, entry in enumerate(entries)
    ]


def _read_policy(entry: object, source: PolicySource) -> Policy:
    where = str(source)
    raw = _reader.mapping(entry, where)
    _reader.check_keys(raw, *_POLICY_KEYS, where)
    connections = _selection(raw["connections"], f"{where}.connections", _connection_id)
    classes = _selection(raw["error_classes"], f"{where}.error_classes", _error_class)
    max_attempts = _reader.integer(raw["max_attempts"], f"{where}.max_attempts")
    backoff = _read_backoff(raw["backoff"], f"{where}.backoff")
    dead_letter = _read_dead_letter(raw["dead_letter"], f"{where}.dead_letter")
    escalation = raw.get("escalation")
    escalation = None if escalation is None else _read_escalation(escalation, where)
    with _located(where):
        return Policy(max_attempts, backoff, dead_letter, source, escalation, connections, classes)


def _read_backoff(value: object, where: str) -> Backoff:
    raw = _reader.mapping(value, where)
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _BACKOFF_KEYS:
        raise PolicyError(f"{where}.kind: {kind!r} is not fixed or exponential")
    _reader.check_keys(raw, *_BACKOFF_KEYS[kind], where)
    jitter = _number(raw.get("jitter", 0.0), f"{where}.jitter")
    if kind == "fixed":
        delay = _duration(raw, "delay", where)
        with _located(where):
            return FixedBackoff(delay, jitter)
    initial, max_delay = _duration(raw, "initial", where), _duration(raw, "max_delay", where)
    factor = _number(raw["factor"], f"{where}.factor")
    with _located(where):
        return ExponentialBackoff(initial, factor, max_delay, jitter)


def _read_dead_letter(value: object, where: str) -> DeadLetter:
    raw = _reader.mapping(value, where)
    _reader.check_keys(raw, ("owner_role",), (), where)
    return DeadLetter(_reader.enum(Role, raw["owner_role"], f"{where}.owner_role"))


def _read_escalation(value: object, policy_where: str) -> Escalation:
    where = f"{policy_where}.escalation"
    raw = _reader.mapping(value, where)
    _reader.check_keys(raw, ("after", "notify_role"), ("page_technical_owner",), where)
    page = _reader.boolean(
        raw.get("page_technical_owner", False), f"{where}.page_technical_owner"
    )
    after = _duration(raw, "after", where)
    notify_role = _reader.enum(Role, raw["notify_role"], f"{where}.notify_role")
    with _located(where):
        return Escalation(after, notify_role, page)


def _selection(value: object, where: str, read: Callable[[object], _T]) -> tuple[_T, ...] | None:
    """``["*"]`` -> None (all), else a tuple of the values ``read`` accepts."""
    if not isinstance(value, list) or not value:
        raise PolicyError(f'{where}: expected a non-empty list, or ["*"] for all')
    if WILDCARD in value:
        if len(value) > 1:
            raise PolicyError(f'{where}: "*" means all, so it must stand alone')
        return None
    if len(set(map(str, value))) != len(value):
        raise PolicyError(f"{where}: lists the same value twice")
    with _located(where):
        return tuple(read(item) for item in value)


def _connection_id(value: object) -> str:
    if not isinstance(value, str) or IDENTIFIER.fullmatch(value) is None:
        raise PolicyError(f"{value!r} is not a connection id (lower-case, digits, hyphens)")
    return value


def _duration(raw: Mapping[str, Any], key: str, where: str) -> float:
    return _reader.duration(raw[key], f"{where}.{key}")


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: {value!r} is not a number")
    return float(value)


def _values(kind: type[StrEnum]) -> list[str]:
    return [member.value for member in kind]


def _choices(kind: type[StrEnum]) -> str:
    return ", ".join(_values(kind))


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Prefix errors of the value objects, which do not know which file they came from."""
    try:
        yield
    except PolicyError as err:
        raise PolicyError(f"{where}: {err.reason}", hint=err.hint) from None


# -- built-in defaults -------------------------------------------------------------------

BUILTIN_DEFAULTS_DOCUMENT: Final[Mapping[str, Any]] = {
    "id": BUILTIN_DOCUMENT_ID,
    "description": (
        "Used when no policy file covers a failure. Transient failures are retried 5 times "
        "over about 15 minutes; failures a retry cannot fix are not retried. Either way the "
        "message goes to the operators' exception queue and admins hear after an hour."
    ),
    "policies": [
        {
            "connections": [WILDCARD],
            "error_classes": sorted(c.value for c in TRANSIENT_ERROR_CLASSES),
            "max_attempts": 6,
            "backoff": {
                "kind": "exponential",
                "initial": "30s",
                "factor": 2,
                "max_delay": "10m",
                "jitter": 0.2,
            },
            "dead_letter": {"owner_role": "operator"},
            "escalation": {"after": "1h", "notify_role": "admin"},
        },
        {
            "connections": [WILDCARD],
            "error_classes": sorted(c.value for c in set(ErrorClass) - TRANSIENT_ERROR_CLASSES),
            "max_attempts": 1,
            "backoff": {"kind": "fixed", "delay": "1m"},
            "dead_letter": {"owner_role": "operator"},
            "escalation": {"after": "1h", "notify_role": "admin"},
        },
    ],
}
"""The safe default, written as a policy document so analysts read it like their own:
nothing is dropped (every failure is dead-lettered with an owner), nothing is hammered
(transient failures back off exponentially, others are not retried), someone is told."""

_BUILTIN_POLICIES: Final = tuple(_read_document(BUILTIN_DEFAULTS_DOCUMENT, BUILTIN_DOCUMENT_ID))

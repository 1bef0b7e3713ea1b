"""A catalog connection: where messages come from or go, who owns the link, which fields it
may carry, and what to do when it breaks.

Compliance reviews these entries; a rule version cannot be approved while a destination's
entry is incomplete (:meth:`Connection.missing_for_destination`); minimisation sends only
the fields in ``data_scope``. ``rules/schema/connection.schema.json`` checks a file's shape
and lets drafts be incomplete; this module gives the engine typed values and the checks a
schema cannot express. Pure: entries arrive parsed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from engine.errors import SwitchboardError
from engine.hl7v2.charset import codec_for
from engine.model.canonical_path import EVERY, parse_canonical_path
from engine.rules.document_reader import IDENTIFIER, DocumentReader
from engine.security.roles import Role

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HTTP_METHODS: Final = ("POST", "PUT", "PATCH", "GET")

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class CatalogError(SwitchboardError):
    """A catalog connection entry cannot be read."""


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BIDIRECTIONAL = "bidirectional"


class Transport(StrEnum):
    MLLP = "mllp"
    HTTP = "http"
    FHIR = "fhir"
    FILE = "file"
    TASK_QUEUE = "task-queue"


class MessageFormat(StrEnum):
    HL7V2 = "hl7v2"
    FHIR_R4 = "fhir-r4"
    CANONICAL_JSON = "canonical-json"


class FhirMode(StrEnum):
    """How a FHIR destination is sent each delivery's Bundle (``endpoint.mode``)."""

    TRANSACTION = "transaction"
    CONDITIONAL_UPDATE = "conditional-update"
    MESSAGE = "message"


class Classification(StrEnum):
    """What the connection carries, in the terms compliance signs off."""

    PHI = "phi"
    LIMITED = "limited"
    DE_IDENTIFIED = "de-identified"
    OPERATIONAL = "operational"


class Ordering(StrEnum):
    """What a delivery that is dead-lettered, or a message that fails in the pipeline,
    does to the patient's later ones on this connection: ``strict`` holds them until an
    operator retries, reprocesses, skips or resolves it; ``skip_dead`` lets them go on,
    so a retry afterwards arrives out of order."""

    STRICT = "strict"
    SKIP_DEAD = "skip_dead"


class AgreementKind(StrEnum):
    BAA = "BAA"
    DUA = "DUA"
    INTERNAL = "internal"
    NONE = "none"


@dataclass(frozen=True)
class MllpEndpoint:
    """An MLLP endpoint; the last three settings apply to inbound listeners only."""

    host: str
    port: int
    ack_timeout: float = 30.0
    allowed_peers: tuple[str, ...] = ()
    max_frame_bytes: int | None = None
    idle_timeout: float | None = None


@dataclass(frozen=True)
class HttpEndpoint:
    """An HTTP or FHIR endpoint. ``auth_secret_env`` names the environment variable sent
    as the Authorization header; ``headers`` pairs other header names with theirs. Secrets
    never live in the catalog, which is in git."""

    url: str
    method: str = "POST"
    auth_secret_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    mode: FhirMode | None = None
    """FHIR only: how the Bundle is sent; None when the entry names none (a transaction)."""


@dataclass(frozen=True)
class FileEndpoint:
    directory: str
    pattern: str = "*"


@dataclass(frozen=True)
class TaskQueueEndpoint:
    queue: str


Endpoint = MllpEndpoint | HttpEndpoint | FileEndpoint | TaskQueueEndpoint


@dataclass(frozen=True)
class TaskAccess:
    """Who may work a task queue's tasks, by role: ``see`` lists them and reads what
    they are about (queue, kind, status, due time, message), ``payload`` also reads
    their payload, which may hold PHI, and ``act`` assigns, approves, rejects and
    completes them. Reading the payload or acting includes seeing. Admins may do
    everything in every queue; :mod:`engine.security.task_access` applies this."""

    see: frozenset[Role] = frozenset()
    payload: frozenset[Role] = frozenset()
    act: frozenset[Role] = frozenset()

    @property
    def seeing(self) -> frozenset[Role]:
        return self.see | self.payload | self.act


@dataclass(frozen=True)
class BusinessOwner:
    """Who decides what the connection is for; complete with a name and an email."""

    name: str | None = None
    email: str | None = None

    @property
    def is_complete(self) -> bool:
        return bool(self.name and self.email)


@dataclass(frozen=True)
class TechnicalOwner:
    """Who fixes the link; complete with a name, an email and a phone or pager, because
    escalation may page them at night."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    pager: str | None = None

    @property
    def is_complete(self) -> bool:
        return bool(self.name and self.email and (self.phone or self.pager))


@dataclass(frozen=True)
class Sla:
    availability: float | None = None
    max_delivery_minutes: int | None = None
    support_hours: str | None = None


@dataclass(frozen=True)
class Agreement:
    kind: AgreementKind
    on_file: bool = False
    reference: str | None = None
    expires: dt.date | None = None


@dataclass(frozen=True)
class Connection:
    """One catalog entry (``catalog/connections/<id>.yaml``)."""

    id: str
    name: str
    direction: Direction
    transport: Transport
    endpoint: Endpoint
    format: MessageFormat
    description: str = ""
    # HL7 table 0211: what an inbound feed's bytes are when MSH-18 names nothing.
    charset: str | None = None
    business_owner: BusinessOwner | None = None
    technical_owner: TechnicalOwner | None = None
    data_scope: tuple[str, ...] = ()
    classification: Classification | None = None
    recovery_procedure: str | None = None
    sla: Sla | None = None
    agreement: Agreement | None = None
    tags: tuple[str, ...] = ()
    task_access: TaskAccess | None = None
    ordering: Ordering = Ordering.STRICT

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Connection:
        """Read a parsed entry; raises :class:`CatalogError` naming the field."""
        return _read_connection(d)

    def missing_for_destination(self) -> list[str]:
        """What a destination needs but lacks, in a fixed order: nothing may be routed to
        a connection nobody owns, whose allowed fields and classification are unknown, or
        that operators cannot recover."""
        present = {
            "business owner": self.business_owner is not None and self.business_owner.is_complete,
            "technical owner": self.technical_owner is not None
            and self.technical_owner.is_complete,
            "data scope": bool(self.data_scope),
            "classification": self.classification is not None,
            "recovery procedure": bool(self.recovery_procedure and self.recovery_procedure.strip()),
        }
        return [need for need, ok in present.items() if not ok]

    def missing(self) -> list[str]:
        """What the entry lacks, as compliance reviews it: a destination's needs
        (:meth:`missing_for_destination`), except that a feed which only sends to
        Switchboard receives no fields, so it needs no data scope."""
        missing = self.missing_for_destination()
        if self.direction is Direction.INBOUND:
            return [need for need in missing if need != "data scope"]
        return missing


# -- direct identifiers ------------------------------------------------------------------

DIRECT_IDENTIFIER_PATHS: Final = (
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
    "encounter.visit_number",
    "merge.prior_identifiers",
    "merge.prior_account_number",
    "merge.prior_visit_number",
    # The patient's relatives, guarantors, insured and employers: Safe Harbor counts
    # their names, addresses, numbers and dates as identifiers of the patient too.
    "patient.mother_identifiers",
    "encounter.episode_identifier",
    "related_persons.names",
    "related_persons.addresses",
    "related_persons.telecom",
    "related_persons.work_telecom",
    "related_persons.identifiers",
    "related_persons.ssn",
    "related_persons.birth_date",
    "guarantors.identifiers",
    "guarantors.names",
    "guarantors.addresses",
    "guarantors.telecom",
    "guarantors.work_telecom",
    "guarantors.birth_date",
    "guarantors.ssn",
    "guarantors.organization_name",
    "coverages.employer",
    "coverages.subscriber.names",
    "coverages.subscriber.addresses",
    "coverages.subscriber.birth_date",
    "coverages.subscriber.identifiers",
    "coverages.subscriber.ssn",
    "coverages.policy_number",
    "coverages.medicare_number",
    "coverages.medicaid_number",
)
"""Canonical fields that are HIPAA Safe Harbor direct identifiers of the patient. People
named elsewhere (providers, authors, operators) are staff, not patient identifiers."""

SAFE_HARBOR_PERMITTED_PATHS: Final = (
    "patient.names[*].use",
    "patient.names[*].use_code",
    "patient.addresses[*].state",
    "patient.addresses[*].country",
    "patient.addresses[*].type",
    "patient.telecom[*].use",
    "patient.telecom[*].equipment",
)
"""Parts of identifier fields that identify nobody (Safe Harbor keeps the state, for one),
so a scope naming only them admits no identifier."""


def _keys(path: str) -> tuple[str, ...]:
    """The object keys of a canonical path; ``[*]`` does not change which field it is."""
    return tuple(step for step in parse_canonical_path(path) if step != EVERY)


_IDENTIFIER_KEYS: Final = tuple((path, _keys(path)) for path in DIRECT_IDENTIFIER_PATHS)
_PERMITTED_KEYS: Final = tuple(_keys(path) for path in SAFE_HARBOR_PERMITTED_PATHS)


def direct_identifiers_admitted(scope: Sequence[str]) -> list[tuple[str, str]]:
    """(scope entry, identifier path) for each direct identifier a data scope lets
    through, to flag connections classified de-identified that are not.

    An entry selects a subtree: ``patient`` admits every patient identifier,
    ``patient.identifiers[*].value`` admits ``patient.identifiers``. A malformed entry
    raises :class:`~engine.model.canonical_path.CanonicalPathError`.
    """
    if isinstance(scope, str):
        raise CatalogError(f"a data scope is a list of canonical paths, not {scope!r}")
    found: list[tuple[str, str]] = []
    for entry in scope:
        keys = _keys(entry)
        found.extend((entry, path) for path, ident in _IDENTIFIER_KEYS if _admits(keys, ident))
    return found


LIMITED_DATA_SET_PERMITTED_PATHS: Final = (
    "patient.birth_date",
    "patient.addresses[*].city",
    "patient.addresses[*].postal_code",
)
"""Direct identifiers under Safe Harbor that a limited data set may keep (45 CFR
164.514(e)(2) removes names, street addresses, phone, email and record, account and
other numbers, but not dates, town or city, state or ZIP code)."""

_LIMITED_PERMITTED_KEYS: Final = tuple(_keys(path) for path in
                                       LIMITED_DATA_SET_PERMITTED_PATHS)


def identifiers_beyond_limited_data_set(scope: Sequence[str]) -> list[tuple[str, str]]:
    """(scope entry, identifier path) for each direct identifier a data scope lets
    through that a limited data set may not hold: as :func:`direct_identifiers_admitted`,
    less birth dates and the town and ZIP code of an address."""
    return [(entry, identifier) for entry, identifier in direct_identifiers_admitted(scope)
            if not any(keys == _keys(identifier) or _keys(entry)[:len(keys)] == keys
                       for keys in _LIMITED_PERMITTED_KEYS)]


def _admits(entry: tuple[str, ...], identifier: tuple[str, ...]) -> bool:
    if entry[: len(identifier)] == identifier:  # the identifier itself, or a part of it
        return not any(entry[: len(part)] == part for part in _PERMITTED_KEYS)
    return identifier[: len(entry)] == entry  # a subtree that contains the identifier


# -- reading an entry --------------------------------------------------------------------

_reader = DocumentReader(CatalogError)

_REQUIRED: Final = ("id", "name", "direction", "transport", "endpoint", "format")
_OPTIONAL: Final = (
    "description",
    "charset",
    "business_owner",
    "technical_owner",
    "data_scope",
    "classification",
    "recovery_procedure",
    "sla",
    "agreement",
    "tags",
    "task_access",
    "ordering",
)
_GRANTS: Final = ("see", "payload", "act")


def _read_connection(d: Mapping[str, Any]) -> Connection:
    raw = _reader.mapping(d, "connection")
    where = _where(raw)
    _reader.check_keys(raw, _REQUIRED, _OPTIONAL, where)
    transport = _reader.enum(Transport, raw["transport"], f"{where}: transport")
    return Connection(
        id=raw["id"],
        name=_text(raw["name"], f"{where}: name"),
        direction=_reader.enum(Direction, raw["direction"], f"{where}: direction"),
        transport=transport,
        endpoint=_read_endpoint(transport, raw["endpoint"], f"{where}: endpoint"),
        format=_reader.enum(MessageFormat, raw["format"], f"{where}: format"),
        description=_text(raw.get("description") or "", f"{where}: description"),
        charset=None if raw.get("charset") is None else _read_charset(
            raw["charset"], f"{where}: charset"),
        business_owner=_optional(
            raw.get("business_owner"), f"{where}: business_owner", _read_business_owner
        ),
        technical_owner=_optional(
            raw.get("technical_owner"), f"{where}: technical_owner", _read_technical_owner
        ),
        data_scope=_read_scope(raw.get("data_scope") or [], f"{where}: data_scope"),
        classification=_optional_enum(
            Classification, raw.get("classification"), f"{where}: classification"
        ),
        recovery_procedure=_optional_text(
            raw.get("recovery_procedure"), f"{where}: recovery_procedure"
        ),
        sla=_optional(raw.get("sla"), f"{where}: sla", _read_sla),
        agreement=_optional(raw.get("agreement"), f"{where}: agreement", _read_agreement),
        tags=_strings(raw.get("tags") or [], f"{where}: tags", IDENTIFIER),
        task_access=_read_task_access(transport, raw.get("task_access"),
                                      f"{where}: task_access"),
        ordering=_reader.enum(Ordering, raw.get("ordering", "strict"), f"{where}: ordering"),
    )


def _read_task_access(transport: Transport, value: object, where: str) -> TaskAccess | None:
    if value is None:
        return None
    if transport is not Transport.TASK_QUEUE:
        raise CatalogError(f"{where}: only a task-queue connection has tasks to act on")
    raw = _reader.mapping(value, where)
    _reader.check_keys(raw, (), _GRANTS, where)
    granted = {}
    for grant in _GRANTS:
        roles = raw.get(grant) or []
        if not isinstance(roles, list):
            raise CatalogError(f"{where}.{grant}: expected a list, got {type(roles).__name__}")
        granted[grant] = frozenset(_reader.enum(Role, role, f"{where}.{grant}[{index}]")
                                   for index, role in enumerate(roles))
    return TaskAccess(**granted)


def _read_charset(value: object, where: str) -> str:
    name = _text(value, where)
    if codec_for(name) is None:
        raise CatalogError(f"{where}: {name!r} is not a character set Switchboard knows; "
                           "name one from HL7 table 0211, such as 8859/1 or UNICODE UTF-8")
    return name


def _where(raw: Mapping[str, Any]) -> str:
    """The entry's id, which names it in every error (the loader adds the file)."""
    return _reader.identifier(raw, "connection")


def _read_endpoint(transport: Transport, value: object, where: str) -> Endpoint:
    raw = _reader.mapping(value, where)
    if transport is Transport.MLLP:
        _reader.check_keys(
            raw, ("host", "port"),
            ("ack_timeout", "allowed_peers", "max_frame_bytes", "idle_timeout"), where,
        )
        return MllpEndpoint(
            host=_text(raw["host"], f"{where}.host"),
            port=_port(raw["port"], f"{where}.port"),
            ack_timeout=_reader.duration(
                raw.get("ack_timeout", "30s"), f"{where}.ack_timeout"
            ),
            allowed_peers=tuple(
                _text(peer, f"{where}.allowed_peers[{index}]")
                for index, peer in enumerate(raw.get("allowed_peers") or [])
            ),
            max_frame_bytes=(
                _reader.integer(raw["max_frame_bytes"], f"{where}.max_frame_bytes")
                if "max_frame_bytes" in raw else None
            ),
            idle_timeout=(
                _reader.duration(raw["idle_timeout"], f"{where}.idle_timeout")
                if "idle_timeout" in raw else None
            ),
        )
    if transport in (Transport.HTTP, Transport.FHIR):
        return _read_http_endpoint(raw, where, fhir=transport is Transport.FHIR)
    if transport is Transport.FILE:
        _reader.check_keys(raw, ("directory",), ("pattern",), where)
        return FileEndpoint(
            _text(raw["directory"], f"{where}.directory"),
            _text(raw.get("pattern", "*"), f"{where}.pattern"),
        )
    _reader.check_keys(raw, ("queue",), (), where)
    return TaskQueueEndpoint(_text(raw["queue"], f"{where}.queue"))


def _read_http_endpoint(raw: Mapping[str, Any], where: str, *, fhir: bool) -> HttpEndpoint:
    _reader.check_keys(raw, ("url",), ("method", "auth_secret_env", "headers")
                       + (("mode",) if fhir else ()), where)
    mode = None if raw.get("mode") is None else _reader.enum(FhirMode, raw["mode"], f"{where}.mode")
    if mode is not None and raw.get("method", "POST") != "POST":
        raise CatalogError(f"{where}: method {raw['method']} puts each resource at its own "
                           "path, so it takes no mode",
                           hint="Remove the method (a mode posts its Bundle), or the mode")
    auth = raw.get("auth_secret_env")
    headers = _read_headers(raw.get("headers", {}), f"{where}.headers")
    if auth is not None and any(name.lower() == "authorization" for name, _ in headers):
        raise CatalogError(f"{where}: Authorization is set by both auth_secret_env and headers")
    return HttpEndpoint(
        url=_text(raw["url"], f"{where}.url"),
        method=_reader.choice(raw.get("method", "POST"), _HTTP_METHODS, f"{where}.method"),
        auth_secret_env=None if auth is None else _env_name(auth, f"{where}.auth_secret_env"),
        headers=headers,
        mode=mode,
    )


def _read_headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    """Header name -> ``{secret_env: NAME}``; a plain value is refused so that a token
    pasted into the catalog is caught before it reaches git."""
    headers: list[tuple[str, str]] = []
    for name, reference in _reader.mapping(value, where).items():
        if not isinstance(reference, Mapping) or set(reference) != {"secret_env"}:
            raise CatalogError(
                f"{where}.{name}: header values are not written in the catalog",
                hint="Write {secret_env: ENV_VAR_NAME} and set that variable on the server",
            )
        env = _env_name(reference["secret_env"], f"{where}.{name}.secret_env")
        headers.append((str(name), env))
    return tuple(headers)


def _env_name(value: object, where: str) -> str:
    if not isinstance(value, str) or _ENV_NAME.fullmatch(value) is None:
        raise CatalogError(f"{where}: {value!r} is not an environment variable name")
    return value


def _read_business_owner(raw: Mapping[str, Any], where: str) -> BusinessOwner:
    _reader.check_keys(raw, (), ("name", "email"), where)
    return BusinessOwner(*_texts(raw, ("name", "email"), where))


def _read_technical_owner(raw: Mapping[str, Any], where: str) -> TechnicalOwner:
    keys = ("name", "email", "phone", "pager")
    _reader.check_keys(raw, (), keys, where)
    return TechnicalOwner(*_texts(raw, keys, where))


def _read_sla(raw: Mapping[str, Any], where: str) -> Sla:
    keys = ("availability", "max_delivery_minutes", "support_hours")
    _reader.check_keys(raw, (), keys, where)
    availability = _percentage(raw.get("availability"), f"{where}.availability")
    minutes = raw.get("max_delivery_minutes")
    if minutes is not None:
        minutes = _reader.integer(minutes, f"{where}.max_delivery_minutes")
    support = _optional_text(raw.get("support_hours"), f"{where}.support_hours")
    return Sla(availability, minutes, support)


def _percentage(value: object, where: str) -> float | None:
    """``99.9%`` (as analysts write it) or ``99.9``, as a number of percent."""
    if value is None:
        return None
    number = value[:-1] if isinstance(value, str) and value.endswith("%") else value
    if isinstance(number, str) and _DECIMAL.fullmatch(number):
        number = float(number)
    if isinstance(number, int | float) and not isinstance(number, bool) and 0 <= number <= 100:
        return float(number)
    raise CatalogError(f"{where}: {value!r} is not a percentage")


def _read_agreement(raw: Mapping[str, Any], where: str) -> Agreement:
    _reader.check_keys(raw, ("kind",), ("reference", "on_file", "expires"), where)
    on_file = _reader.boolean(raw.get("on_file", False), f"{where}.on_file")
    return Agreement(
        kind=_reader.enum(AgreementKind, raw["kind"], f"{where}.kind"),
        on_file=on_file,
        reference=_optional_text(raw.get("reference"), f"{where}.reference"),
        expires=_date(raw.get("expires"), f"{where}.expires"),
    )


def _read_scope(value: object, where: str) -> tuple[str, ...]:
    scope = _strings(value, where, None)
    for index, entry in enumerate(scope):
        try:
            parse_canonical_path(entry)
        except SwitchboardError as err:
            raise CatalogError(f"{where}[{index}]: {err.reason}", hint=err.hint) from None
    return scope


def _date(value: object, where: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date; a YAML loader may already have made it a ``date``."""
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CatalogError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")


# -- small readers -----------------------------------------------------------------------


def _optional(value: object, where: str, read: Callable[[Mapping[str, Any], str], _T]) -> _T | None:
    return None if value is None else read(_reader.mapping(value, where), where)


def _optional_enum(kind: type[_E], value: object, where: str) -> _E | None:
    return None if value is None else _reader.enum(kind, value, where)


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _texts(raw: Mapping[str, Any], keys: Sequence[str], where: str) -> list[str | None]:
    return [_optional_text(raw.get(key), f"{where}.{key}") for key in keys]


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogError(f"{where}: {value!r} is not text")
    return value


def _strings(value: object, where: str, pattern: re.Pattern[str] | None) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise CatalogError(f"{where}: expected a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or (pattern and pattern.fullmatch(item) is None):
            raise CatalogError(f"{where}[{index}]: {item!r} is not allowed here")
    return tuple(value)


def _port(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise CatalogError(f"{where}: {value!r} is not a port number (1-65535)")
    return value

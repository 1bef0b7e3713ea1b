"""The integration catalog as compliance reviews it: every connection of the newest
published version, with what its entry lacks (the approval gate's own check), what to
check about it (engine.rules.catalog_flags), whether it holds patient data, and the
published version that last changed it; filtered, sorted and paged, or whole for an
export. Views carry catalog entries only, never message content."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.queues import Invalid, NotFound, Page, check_page
from engine.rules.catalog_entry import (
    Classification,
    Connection,
    Direction,
    Endpoint,
    FileEndpoint,
    HttpEndpoint,
    MllpEndpoint,
)
from engine.rules.catalog_flags import Flag, catalog_flags, holds_patient_data
from engine.rules.scope_wording import scope_in_words, scope_line
from engine.store.database import reader
from engine.store.models import CatalogConnection, RuleSetVersion

SORTS = ("id", "name", "direction", "format", "classification", "complete")
Entries = list[dict[str, Any]]  # catalog entries as catalog_view gives them
READ_BATCH = 500


@dataclass(frozen=True)
class CatalogQuery:
    """Which connections to list: ``text`` is found in the id, name or an owner's name;
    ``complete`` and ``patient_data`` (it may carry patient data: see
    engine.rules.catalog_flags.holds_patient_data) are "yes" or "no"; ``sort`` is one of
    SORTS, "-" before it for descending."""

    text: str = ""
    direction: str = ""
    classification: str = ""
    complete: str = ""
    patient_data: str = ""
    sort: str = "id"

    @classmethod
    def of(cls, args: Mapping[str, str]) -> CatalogQuery:
        query = cls(**{name: str(args.get(name) or "").strip()
                       for name in ("text", "direction", "classification", "complete",
                                    "patient_data")},
                    sort=str(args.get("sort") or "id"))
        query.check()
        return query

    def check(self) -> None:
        _choice("direction", self.direction, [d.value for d in Direction])
        _choice("classification", self.classification, [c.value for c in Classification])
        _choice("complete", self.complete, ["yes", "no"])
        _choice("patient_data", self.patient_data, ["yes", "no"])
        _choice("sort", self.sort.removeprefix("-"), list(SORTS))

    def admits(self, entry: dict[str, Any]) -> bool:
        text = self.text.casefold()
        owners = [(entry[key] or {}).get("name") or "" for key in
                  ("business_owner", "technical_owner")]
        return ((not text or any(text in str(value).casefold()
                                 for value in (entry["id"], entry["name"], *owners)))
                and self.direction in ("", entry["direction"])
                and self.classification in ("", entry["classification"] or "")
                and self.complete in ("", "yes" if entry["complete"] else "no")
                and self.patient_data in ("", "yes" if entry["patient_data"] else "no"))


class IntegrationCatalog:
    """The catalog in the store behind ``engine``, per published rule-set version."""

    def __init__(self, engine: Engine) -> None:
        self._reads = reader(engine)

    def list(self, query: CatalogQuery, page: int = 1, per_page: int = 50) -> Page:
        check_page(page, per_page)
        with Session(self._reads) as session:
            matching = self._matching(session, query)
            shown = matching[(page - 1) * per_page:page * per_page]
            changes = _last_changes(session, {entry["id"] for entry in shown})
        return Page([{**entry, "last_changed": changes.get(entry["id"])} for entry in shown],
                    page, per_page, len(matching))

    def version(self) -> int:
        """The published version whose catalog this is."""
        with Session(self._reads) as session:
            return _newest(session)[1]

    def entries(self, query: CatalogQuery) -> Entries:
        """Every connection ``query`` admits, in its order: what an export holds."""
        with Session(self._reads) as session:
            matching = self._matching(session, query)
            changes = _last_changes(session, {entry["id"] for entry in matching})
        return [{**entry, "last_changed": changes.get(entry["id"])} for entry in matching]

    def show(self, connection_id: str) -> dict[str, Any]:
        """One connection as the published version holds it, with every published
        version that changed it, newest first."""
        with Session(self._reads) as session:
            version, documents = _published(session)
            if connection_id not in documents:
                raise NotFound(f"the published catalog has no connection {connection_id!r}",
                               hint="See the catalog for the connections it holds")
            history = [number for _id, number in _changes(session, {connection_id})]
        [entry] = [view for view in _views(documents, version) if view["id"] == connection_id]
        return {**entry, "last_changed": history[0], "changed_in": history}

    def _matching(self, session: Session, query: CatalogQuery) -> Entries:
        version, documents = _published(session)
        entries = [entry for entry in _views(documents, version) if query.admits(entry)]
        key = query.sort.removeprefix("-")
        entries.sort(key=lambda entry: entry["id"])
        entries.sort(key=lambda entry: str(entry[key] or "").casefold(),
                     reverse=query.sort.startswith("-"))
        return entries


def _views(documents: Mapping[str, Mapping[str, Any]], version: int) -> Entries:
    """Every entry of a published catalog as compliance reads it, each with its flags
    (which need the whole catalog: an agreement may be shared)."""
    entries = [Connection.from_dict(document) for document in documents.values()]
    flags = catalog_flags(entries)
    return [connection_view(entry, version, flags.get(entry.id, ())) for entry in entries]


def catalog_view(document: Mapping[str, Any], version: int) -> dict[str, Any]:
    """A catalog entry as compliance reads it, JSON-ready, read alone: flags that need
    the rest of the catalog (a shared agreement) are not looked for."""
    entry = Connection.from_dict(document)
    return connection_view(entry, version, catalog_flags([entry]).get(entry.id, ()))


def connection_view(entry: Connection, version: int,
                    flags: Sequence[Flag] = ()) -> dict[str, Any]:
    """A parsed catalog entry as compliance reads it, JSON-ready, with its flags."""
    missing = entry.missing()
    sla, agreement, access = entry.sla, entry.agreement, entry.task_access
    return {
        "id": entry.id, "name": entry.name, "description": entry.description,
        "version": version, "direction": entry.direction.value,
        "transport": entry.transport.value, "format": entry.format.value,
        "endpoint": endpoint_words(entry.endpoint),
        "business_owner": _fields(entry.business_owner, ("name", "email")),
        "technical_owner": _fields(entry.technical_owner, ("name", "email", "phone", "pager")),
        "data_scope": list(entry.data_scope),
        "data_scope_words": scope_line(entry.data_scope),
        "data_scope_areas": [
            {"area": area.area, "fields": [{"words": f.words, "path": f.path,
                                            "identifies": f.identifies} for f in area.fields]}
            for area in scope_in_words(entry.data_scope)],
        "classification": entry.classification.value if entry.classification else None,
        "recovery_procedure": entry.recovery_procedure,
        "recovery_steps": recovery_steps(entry.recovery_procedure or ""),
        "sla": None if sla is None else {
            "availability": sla.availability, "max_delivery_minutes": sla.max_delivery_minutes,
            "support_hours": sla.support_hours},
        "agreement": None if agreement is None else {
            "kind": agreement.kind.value, "reference": agreement.reference,
            "on_file": agreement.on_file,
            "expires": agreement.expires.isoformat() if agreement.expires else None},
        "ordering": entry.ordering.value, "tags": list(entry.tags),
        "task_access": None if access is None else {
            grant: sorted(role.value for role in getattr(access, grant))
            for grant in ("see", "payload", "act")},
        "complete": not missing, "missing": missing,
        "patient_data": holds_patient_data(entry),
        "flags": [flag.as_dict() for flag in flags],
    }


def recovery_steps(procedure: str) -> list[str]:
    """A recovery procedure's steps: its lines, with the indented lines that carry a
    step on (as YAML block text wraps them) joined to it."""
    steps: list[str] = []
    for line in procedure.splitlines():
        if line[:1].isspace() and steps:
            steps[-1] = f"{steps[-1]} {line.strip()}"
        elif line.strip():
            steps.append(line.strip())
    return steps


def endpoint_words(endpoint: Endpoint) -> str:
    """Where the connection is, in one line (the catalog holds no secrets)."""
    if isinstance(endpoint, MllpEndpoint):
        return f"MLLP {endpoint.host}:{endpoint.port}"
    if isinstance(endpoint, HttpEndpoint):
        return f"{endpoint.method} {endpoint.url}"
    if isinstance(endpoint, FileEndpoint):
        return f"files {endpoint.pattern} in {endpoint.directory}"
    return f"task queue {endpoint.queue}"


def _fields(value: object, names: tuple[str, ...]) -> dict[str, Any] | None:
    return None if value is None else {name: getattr(value, name) for name in names}


def _choice(name: str, value: str, allowed: list[str]) -> None:
    if value and value not in allowed:
        raise Invalid(f"{name} {value!r} is not one of: {', '.join(allowed)}",
                      hint=f"Choose a {name} from the list")


def _newest(session: Session) -> tuple[int, int]:
    """The newest published version: its row id and its number."""
    row = session.execute(
        select(RuleSetVersion.id, RuleSetVersion.version)
        .where(RuleSetVersion.status == "published")
        .order_by(RuleSetVersion.version.desc()).limit(1)).first()
    if row is None:
        raise NotFound("no published rule-set version",
                       hint="Start Switchboard once: it publishes the shipped rules")
    return row.id, row.version


def _published(session: Session) -> tuple[int, dict[str, dict[str, Any]]]:
    """The newest published version's number and its catalog documents by id."""
    row_id, version = _newest(session)
    documents = session.execute(
        select(CatalogConnection.connection_id, CatalogConnection.document)
        .where(CatalogConnection.rule_set_version_id == row_id))
    return version, {connection_id: document for connection_id, document in documents}


def _last_changes(session: Session, ids: set[str]) -> dict[str, int]:
    """Per connection, the newest published version that changed it; the history is
    read from the newest version back, and only until every one is found."""
    found: dict[str, int] = {}
    if not ids:
        return found
    with closing(_changes(session, ids)) as changes:
        for connection_id, version in changes:
            found.setdefault(connection_id, version)
            if len(found) == len(ids):
                break
    return found


def _changes(session: Session, ids: set[str]) -> Generator[tuple[str, int], None, None]:
    """(connection, version) for each published version whose document for the
    connection differs from the version before's (or the one before lacked it), newest
    first. Every published version keeps its whole catalog (engine.change_control), so
    a connection missing from a version was not in it."""
    published = list(session.scalars(
        select(RuleSetVersion.version).where(RuleSetVersion.published_at.is_not(None))
        .order_by(RuleSetVersion.version)))
    before = dict(zip(published[1:], published, strict=False))
    newer: dict[str, tuple[int, Any]] = {}  # the last (older) version read, per connection
    rows = session.execute(
        select(CatalogConnection.connection_id, RuleSetVersion.version,
               CatalogConnection.document)
        .join(RuleSetVersion, RuleSetVersion.id == CatalogConnection.rule_set_version_id)
        .where(RuleSetVersion.published_at.is_not(None),
               CatalogConnection.connection_id.in_(sorted(ids)))
        .order_by(RuleSetVersion.version.desc())
        .execution_options(yield_per=READ_BATCH))
    try:
        for connection_id, version, document in rows:
            seen = newer.get(connection_id)
            if seen is not None and (before.get(seen[0]) != version or seen[1] != document):
                yield connection_id, seen[0]
            newer[connection_id] = (version, document)
    finally:
        rows.close()
    for connection_id, (version, _document) in newer.items():
        yield connection_id, version

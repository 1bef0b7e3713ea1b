"""The integration catalog, for compliance and for those who run or change the
connections: every connection of the published version with its owners, data scope,
classification, recovery procedure, SLA and agreement, how complete its entry is, the
version that last changed it, what compliance should check about it (flags, from
engine.rules.catalog_flags) and its live health; one connection's page; a CSV export
named after its filters. Nothing here shows message content: health is counts and
PHI-free errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, request
from flask_admin import expose

from admin.console.access import ConsoleView, deny, principal
from admin.console.csv_download import csv_download, download_name
from admin.console.list_links import LINKS
from admin.queue_requests import page_args
from admin.services import services
from engine.integration_catalog import SORTS, CatalogQuery
from engine.queues import Invalid, NotFound
from engine.rules.catalog_entry import Classification, Direction
from engine.security.permissions import may, roles_for
from engine.status_report import ConnectionStatus, read_status

EXPORT_HEADER = (
    "id", "name", "direction", "transport", "format", "endpoint",
    "business owner", "business owner email", "technical owner", "technical owner email",
    "technical owner phone", "technical owner pager", "data scope", "data scope paths",
    "classification", "holds patient data", "to check", "recovery procedure",
    "availability %", "max delivery minutes",
    "support hours", "agreement", "agreement reference", "agreement on file",
    "agreement expires", "complete", "missing", "published version", "last changed in version",
    "received", "routed", "delivered", "failed", "held", "waiting", "open exceptions",
    "last error")


class CatalogView(ConsoleView):
    roles = roles_for("catalog.read")

    def __init__(self) -> None:
        super().__init__(name="Catalog", endpoint="catalog", url="/catalog")

    @expose("/")
    def index(self) -> Any:
        query = _query()
        page, per_page = page_args()
        catalog = services().catalog
        listing = catalog.list(query, page, per_page)
        return self.render("console/catalog.html", listing=listing, query=query,
                           version=catalog.version(), as_of=datetime.now(UTC),
                           health=_health(), directions=[d.value for d in Direction],
                           classifications=[c.value for c in Classification],
                           sorts=SORTS, reach=_reach(), **LINKS)

    @expose("/export.csv")
    def export(self) -> Any:
        if not may(principal().roles, "catalog.read"):
            return deny("catalog.export")
        query = _query()
        entries = services().catalog.entries(query)
        health = _health()
        return csv_download(export_name(query), EXPORT_HEADER,
                            (_export_row(entry, health.get(entry["id"])) for entry in entries))

    @expose("/<connection_id>")
    def connection(self, connection_id: str) -> Any:
        entry = _entry(connection_id)
        return self.render("console/catalog_connection.html", entry=entry,
                           status=_health().get(connection_id),
                           reach=_reach())

    @expose("/<connection_id>/health")
    def connection_health(self, connection_id: str) -> Any:
        """The live health panel alone, which the connection's page refreshes."""
        entry = _entry(connection_id)
        return self.render("console/catalog_health.html", entry=entry,
                           status=_health().get(connection_id),
                           reach=_reach())


def export_name(query: CatalogQuery) -> str:
    """The export's file name, after what it holds: "catalog.csv" for every connection,
    "catalog-phi.csv", "catalog-patient-data-inbound-incomplete.csv"."""
    patient_data = {"yes": "patient data", "no": "no patient data"}
    return download_name(
        "catalog", patient_data.get(query.patient_data, ""), query.classification,
        query.direction, {"yes": "complete", "no": "incomplete"}.get(query.complete, ""),
        f"matching {query.text}" if query.text else "")


def _query() -> CatalogQuery:
    try:
        return CatalogQuery.of(request.args)
    except Invalid as error:
        abort(400, description=f"{error}. {error.hint or ''}".strip())


def _entry(connection_id: str) -> dict[str, Any]:
    try:
        return services().catalog.show(connection_id)
    except NotFound as error:
        abort(404, description=f"{error}. {error.hint or ''}".strip())


def _health() -> dict[str, ConnectionStatus]:
    return {status.connection: status for status in read_status(services().engine)}


def _reach() -> dict[str, bool]:
    """Where the health numbers may lead this user: the message browser, the exception
    queue (a number they could not open is shown without a link)."""
    roles = principal().roles
    return {"messages": may(roles, "message.read"), "exceptions": may(roles, "exception.read")}


def _export_row(entry: dict[str, Any], status: ConnectionStatus | None) -> list[Any]:
    business = entry["business_owner"] or {}
    technical = entry["technical_owner"] or {}
    sla = entry["sla"] or {}
    agreement = entry["agreement"] or {}
    counts = status or ConnectionStatus(entry["id"], entry["direction"])
    return [
        entry["id"], entry["name"], entry["direction"], entry["transport"], entry["format"],
        entry["endpoint"], business.get("name"), business.get("email"), technical.get("name"),
        technical.get("email"), technical.get("phone"), technical.get("pager"),
        entry["data_scope_words"], " ".join(entry["data_scope"]), entry["classification"],
        entry["patient_data"], " ".join(flag["words"] for flag in entry["flags"]),
        entry["recovery_procedure"], sla.get("availability"), sla.get("max_delivery_minutes"),
        sla.get("support_hours"), agreement.get("kind"), agreement.get("reference"),
        agreement.get("on_file"), agreement.get("expires"), entry["complete"],
        "; ".join(entry["missing"]), entry["version"], entry["last_changed"],
        counts.received, counts.routed, counts.delivered, counts.failed, counts.held,
        counts.waiting, counts.open_exceptions, counts.last_error,
    ]

"""The audit log, for compliance: every audit event filtered by who, what, which object
and when, sorted and paged on the server; whether the chain holds and when it was last
checked, with a button to check it now (each check recorded in the trail); a CSV
export of everything the filters match. Content views appear here as ``content.view``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console.access import ConsoleView, deny, principal
from admin.console.csv_download import csv_download
from admin.console.list_links import LINKS
from admin.queue_requests import page_args
from admin.services import services
from engine.security.audit_trail import FILTERS, SORTS
from engine.security.permissions import may, roles_for

TIME_FILTERS = {"since": "From", "until": "Before"}
CONTENT_VIEW = "content.view"
EXPORT_HEADER = ("id", "at (UTC)", "actor", "action", "object type", "object id", "details",
                 "reason", "content hash before", "content hash after", "hash",
                 "previous hash")


class AuditView(ConsoleView):
    roles = roles_for("audit.read")

    def __init__(self) -> None:
        super().__init__(name="Audit log", endpoint="audit", url="/audit")

    @expose("/")
    def index(self) -> Any:
        filters, errors = _filters()
        sort = _sort()
        trail = services().audit
        listing = None
        if not errors:
            page, per_page = page_args()
            listing = trail.events(filters, sort, page, per_page)
        return self.render("console/audit.html", listing=listing, errors=errors, sort=sort,
                           choices=trail.choices(), last=trail.last_verification(),
                           may_verify=may(principal().roles, "audit.verify"),
                           details=detail_lines, content_view=CONTENT_VIEW,
                           time_filters=TIME_FILTERS, **LINKS), 400 if errors else 200

    @expose("/export.csv")
    def export(self) -> Any:
        filters, errors = _filters()
        if errors:
            abort(400, description=" ".join(errors.values()))
        events = services().audit.stream(filters, _sort())
        return csv_download(f"switchboard-audit-{date.today().isoformat()}.csv",
                            EXPORT_HEADER, (_export_row(event) for event in events))

    @expose("/verify", methods=("POST",))
    def verify(self) -> Any:
        """Check the chain now; the verdict is recorded in the trail and shown."""
        who = principal()
        if not may(who.roles, "audit.verify"):
            return deny("audit.verify")
        verdict = services().audit.verify(who.name)
        if verdict.ok:
            flash(f"The audit chain is intact: {verdict.checked} events checked.", "success")
        else:
            flash(f"The audit chain is broken at event {verdict.event_id} "
                  f"({verdict.kind}): {verdict.problem}.", "error")
        kept: dict[str, Any] = request.args.to_dict()  # back to the list as it was
        return redirect(url_for(".index", **kept))


def detail_lines(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """An event's details as (name, value) lines: nested names joined with dots, lists
    with commas; never as JSON."""
    if isinstance(detail, Mapping):
        lines: list[tuple[str, str]] = []
        for name, value in detail.items():
            lines.extend(detail_lines(value, f"{prefix}.{name}" if prefix else str(name)))
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            return [(prefix, ", ".join(_words(item) for item in detail))]
        return [line for index, item in enumerate(detail)
                for line in detail_lines(item, f"{prefix}[{index + 1}]")]
    return [(prefix or "detail", _words(detail))]


def _words(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _filters() -> tuple[dict[str, str], dict[str, str]]:
    """The filters the query asks for, times read as UTC; an error per bad field."""
    filters = {name: value for name in FILTERS if (value := request.args.get(name, "").strip())}
    errors = {}
    for name, label in TIME_FILTERS.items():
        value = request.args.get(name, "").strip()
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            errors[name] = (f"{label}: “{value[:40]}” is not a date and time. Give one "
                            "like 2026-11-24 08:00 (UTC).")
            continue
        filters[name] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    return filters, errors


def _sort() -> str:
    sort = request.args.get("sort") or "-at"
    if sort.removeprefix("-") not in SORTS:
        abort(400, description=f"The audit log cannot be sorted by “{sort[:40]}”: sort by "
                               f"{', '.join(SORTS)}.")
    return sort


def _export_row(event: dict[str, Any]) -> list[Any]:
    details = "; ".join(f"{name}: {value}" for name, value in detail_lines(event["detail"])) \
        if event["detail"] else ""
    return [event["id"], event["at"], event["actor"], event["action"], event["target_type"],
            event["target_id"], details, event["reason"], event["before_hash"],
            event["after_hash"], event["hash"], event["prev_hash"]]

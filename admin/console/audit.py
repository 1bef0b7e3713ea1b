"""The audit log, for compliance: every audit event filtered by who, what, which object
and when, sorted and paged on the server; whether the chain holds and when it was last
checked, with a button to check it now (each check recorded in the trail); a CSV
export of everything the filters match, named after what it holds. "Content views" are
every view of patient data (engine.security.security_events.CONTENT_VIEWS); a check
that finds events at fault lists each one in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console.access import ConsoleView, deny, principal
from admin.console.csv_download import csv_download, download_name
from admin.console.list_links import LINKS
from admin.queue_requests import page_args
from admin.services import services
from engine.security.audit_trail import FILTERS, SORTS
from engine.security.permissions import may, roles_for
from engine.security.security_events import CONTENT_VIEWS, EVENTS

TIME_FILTERS = {"since": "From", "until": "Before"}
# Each security event in words, as a filter shows it and an export's name says it.
EVENT_WORDS = {"sign_in_failure": "Failed sign-ins", "access_denied": "Refusals",
               "content_view": "Content views", "bulk_content_view": "Bulk content views",
               "break_glass_sign_in": "Break-glass sign-ins"}
assert set(EVENT_WORDS) == set(EVENTS)
# What a check of the chain found at an event, in words for its reader (engine.security
# .audit names the kinds).
FOUND = {
    "edited": "This event was changed after it was recorded.",
    "inserted": "This event was added to the log afterwards: it was never recorded "
                "in its place.",
    "deleted": "This event was removed from the log after it was recorded.",
    # A removal found by the chain, at the event after the gap (still in the log):
    "deleted before": "The event recorded just before this one was removed from the log.",
    "truncated": "This event, and any recorded after it, were removed from the end of "
                 "the log.",
    "rewritten": "The log was rewritten from this event on: this is not the event that "
                 "was recorded.",
}
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
        last = trail.last_verification()
        failing = [{**event, "found": FOUND.get(_found_kind(event), FOUND["edited"])}
                   for event in (trail.failing(last) if last and not last.get("ok") else [])]
        return self.render("console/audit.html", listing=listing, errors=errors, sort=sort,
                           choices=trail.choices(), last=last, failing=failing,
                           may_verify=may(principal().roles, "audit.verify"),
                           details=detail_lines, content_views=CONTENT_VIEWS,
                           event_words=EVENT_WORDS, changed=changed,
                           time_filters=TIME_FILTERS,
                           **LINKS), 400 if errors else 200

    @expose("/export.csv")
    def export(self) -> Any:
        filters, errors = _filters()
        if errors:
            abort(400, description=" ".join(errors.values()))
        events = services().audit.stream(filters, _sort())
        return csv_download(export_name(filters), EXPORT_HEADER,
                            (_export_row(event) for event in events))

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
            flash(f"The audit chain is broken: {changed(sum(verdict.counts.values()))}. "
                  "Each is listed under “The audit chain”.", "error")
        kept: dict[str, Any] = request.args.to_dict()  # back to the list as it was
        return redirect(url_for(".index", **kept))


def _found_kind(event: Mapping[str, Any]) -> str:
    held_deletion = event["kind"] == "deleted" and event["held"]
    return "deleted before" if held_deletion else str(event["kind"])


def export_name(filters: Mapping[str, str]) -> str:
    """The export's file name, after what it holds: "audit-2026-12-07-content-views-by-
    carl.csv" (today's date when no time is filtered), "audit-2026-12-01-to-2026-12-07
    .csv"."""
    since, until = (_moment_words(filters.get(name)) for name in ("since", "until"))
    period = (f"{since} to {until}" if since and until else f"from {since}" if since
              else f"before {until}" if until else datetime.now(UTC).date().isoformat())
    event = filters.get("event")
    return download_name(
        "audit", period, f"event {filters['id']}" if filters.get("id") else "",
        EVENT_WORDS.get(event, "") if event else "", filters.get("action", ""),
        filters.get("target_type", ""), filters.get("target_id", ""),
        f"by {filters['actor']}" if filters.get("actor") else "")


def _moment_words(value: str | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d" if moment.time() == datetime.min.time()
                           else "%Y-%m-%d %H%M")


def changed(count: int) -> str:
    """How many events a check found at fault, in words."""
    if count == 1:
        return "1 event was changed or removed after it was recorded"
    return f"{count} events were changed or removed after they were recorded"


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
    filters = {name: value for name in (*FILTERS, "id", "event")
               if (value := request.args.get(name, "").strip())}
    errors = {}
    if not filters.get("id", "0").isdigit():
        errors["id"] = f"Event: “{filters['id'][:40]}” is not an event number."
    if filters.get("event", "content_view") not in EVENTS:
        errors["event"] = (f"“{filters['event'][:40]}” is not a kind of event this log "
                           "can show: choose one of the quick filters.")
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

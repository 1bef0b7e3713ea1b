"""The message browser: the message log searched by control id, patient, type, event,
source, status, destination, a delivery's status, time and the values at the indexed
HL7 paths (engine.message_log, the search the REST API runs), with each user's saved
searches; a message's page with its stage timeline, the route rows it fired, its
deliveries, tasks and exceptions; its content (as received, parsed, the canonical
record, why its rows fired, what each destination was sent) on separate URLs loaded
on demand; and retrying a delivery, reprocessing a message, and doing either over many
messages with a reason, with progress.

Operators, analysts and compliance open it; each action checks its own permission
(engine.security.permissions). Content views are audited (content.view) and never
shown to compliance: the message's page itself holds identifiers and statuses only."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console import access, message_reading
from admin.console.access import ConsoleView, audit_content_view
from admin.console.exceptions import BULK_WORDS as EXCEPTION_BULK_WORDS
from admin.console.message_search import (
    DELIVERY_WORDS,
    FILTERS,
    LABELS,
    STATUSES,
    SearchArgs,
)
from admin.console.task_reading import is_person, label, person_text, when
from admin.services import services
from engine.bulk_jobs import MAX_ITEMS, BulkProgress
from engine.errors import SwitchboardError
from engine.hl7v2.tree import message_tree
from engine.message_content import Explained, document, parsed, raw_text
from engine.message_log import DELIVERY_STATUSES
from engine.queues import OPEN, Forbidden, Invalid, NotFound, Refused
from engine.rules.catalog_entry import Direction, Transport
from engine.security.permissions import may
from engine.security.roles import Role

PER_PAGE = 25
REASON_LONGEST = 2000
CONTENT_VIEWS = {"raw": "As received", "tree": "Parsed", "canonical": "Canonical record",
                 "routing": "Why its rows fired", "payload": "What a destination was sent"}
BULK = {"retry": ("Retry their failed deliveries", "exception.retry"),
        "reprocess": ("Reprocess them under the rules published now", "message.reprocess")}
BULK_WORDS = {**EXCEPTION_BULK_WORDS, "retry": ("Retry failed deliveries", "retried"),
              "reprocess": ("Reprocess messages", "reprocessed")}
MOVING = frozenset({"pending", "retrying", "in_flight"})
STAGE_WORDS = {"journaled": "Received and journaled", "parsed": "Parsed",
               "normalised": "Normalised to the canonical record", "routed": "Routed",
               "minimised": "Minimised for each destination", "encoded": "Encoded",
               "intents_recorded": "Deliveries and tasks recorded", "failed": "Failed",
               "requeued": "Sent back to be routed again", "rerouted": "Reprocessed",
               "reprocessed_from": "An edited copy of another message",
               "held": "Held behind a failed message", "released": "Released"}
_JOB = re.compile(r"[0-9a-f]{32}")
_MESSAGE_ID = 36


def _roles() -> frozenset[Role]:
    return access.principal().roles


def _may(action: str) -> bool:
    return may(_roles(), action)


def _may_see_content() -> bool:
    """Compliance never sees message content, whatever other role it comes with."""
    roles = _roles()
    return Role.COMPLIANCE not in roles and bool(
        roles & {Role.OPERATOR, Role.ANALYST, Role.ADMIN})


class MessagesView(ConsoleView):
    roles = frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE})

    def __init__(self) -> None:
        super().__init__(name="Messages", endpoint="messages", url="/messages")

    # ---- the search --------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        return self._search_page(SearchArgs.read(request.args))

    def _search_page(self, args: SearchArgs, errors: dict[str, str] | None = None,
                     code: int = 200, **extra: Any) -> Any:
        errors = dict(errors or {})
        page = None
        try:
            page = services().messages.list(args.query(), args.page, PER_PAGE)
        except Invalid as error:
            errors[args.field_of(str(error)) or "search"] = _said(error)
            code = 400
        return self.render(
            "console/messages.html", args=args, page=page, errors=errors,
            saved=services().saved_searches.list(access.principal()),
            options=_options(args), filters=FILTERS, labels=LABELS, statuses=STATUSES,
            delivery_words=DELIVERY_WORDS, delivery_badges=DELIVERY_BADGES,
            bulk_actions=_bulk_actions(),
            indexed=services().messages.indexed.names, max_items=MAX_ITEMS,
            typed=extra.get("typed", {}), bulk=extra.get("bulk", {})), code

    @expose("/searches", methods=("POST",))
    def save_search(self) -> Any:
        args = SearchArgs.read(request.form)
        name = request.form.get("name", "")[:200]
        try:
            services().saved_searches.save(access.principal(), name, args.given(),
                                           replace=request.form.get("replace") == "yes")
        except Forbidden:
            return access.deny("saved_search.save")
        except Invalid as error:
            return self._search_page(args, {"name": _said(error)}, 400, typed={"name": name})
        except Refused as error:
            return self._search_page(args, {"name": _said(error), "replace": "offer"}, 409,
                                     typed={"name": name})
        flash(f"Saved this search as '{name.strip()}'.", "success")
        return redirect(args.url(), code=303)

    @expose("/searches/<id:search_id>/delete", methods=("POST",))
    def delete_search(self, search_id: int) -> Any:
        me = access.principal()
        try:
            mine = {found["id"]: found["name"] for found in services().saved_searches.list(me)}
            if search_id not in mine:
                abort(404, description="You have no such saved search.")
            services().saved_searches.delete(me, mine[search_id])
        except Forbidden:
            return access.deny("saved_search.delete")
        except NotFound:
            abort(404, description="You have no such saved search.")
        flash(f"Deleted the saved search '{mine[search_id]}'.", "success")
        return redirect(SearchArgs.of_text(request.form.get("q", "")).url(), code=303)

    # ---- one message -------------------------------------------------------------

    @expose("/<message_id>/")
    def show(self, message_id: str) -> Any:
        return self._message_page(message_id)

    def _message_page(self, message_id: str, errors: dict[str, str] | None = None,
                      code: int = 200) -> Any:
        view = _message(message_id)
        return self.render(
            "console/message.html", message=view, errors=errors or {},
            explained=_rows_fired(message_id), retry_items=_retry_items(view),
            search=SearchArgs.of_text(request.values.get("q", "")),
            can={"retry": _may("exception.retry"), "reprocess": _may("message.reprocess"),
                 "content": _may_see_content()},
            statuses=STATUSES, delivery_words=DELIVERY_WORDS, stage_words=STAGE_WORDS,
            views=CONTENT_VIEWS, moving=_moving(view)), code

    @expose("/<message_id>/deliveries")
    def deliveries(self, message_id: str) -> Any:
        """The deliveries card: the page polls it while one is on its way."""
        view = _message(message_id)
        return self.render("console/message_deliveries.html", message=view,
                           retry_items=_retry_items(view), errors={},
                           search=SearchArgs.of_text(request.args.get("q", "")),
                           can={"retry": _may("exception.retry"),
                                "content": _may_see_content()},
                           delivery_words=DELIVERY_WORDS, moving=_moving(view))

    @expose("/<message_id>/content")
    def content(self, message_id: str) -> Any:
        """One view of the message's content: audited, and refused to compliance."""
        if not _may_see_content():
            return access.deny("content.view")
        view = request.args.get("view", "raw")
        if view not in CONTENT_VIEWS:
            abort(400, description="Choose a view: " + ", ".join(CONTENT_VIEWS))
        destination = request.args.get("destination", "")[:64]
        if view == "payload" and not destination:
            abort(400, description="Say which destination's delivery to show.")
        try:
            stored = services().content.stored(message_id[:_MESSAGE_ID])
        except NotFound:
            abort(404, description="There is no such message.")
        audit_content_view(f"message.{view}", stored.message_id,
                           {"destination": destination} if view == "payload" else None)
        context = _content(view, stored, destination)
        context.update(message_id=stored.message_id, view=view, views=CONTENT_VIEWS,
                       search=SearchArgs.of_text(request.args.get("q", "")), read=_Read)
        if request.headers.get("HX-Request") == "true":
            return self.render("console/message_content.html", **context)
        return self.render("console/message_content_page.html", **context)

    @expose("/<message_id>/deliveries/<id:delivery_id>/retry", methods=("POST",))
    def retry(self, message_id: str, delivery_id: int) -> Any:
        if not _may("exception.retry"):
            return access.deny("exception.retry")
        view = _message(message_id)
        delivery = next((d for d in view["deliveries"] if d["id"] == delivery_id), None)
        if delivery is None:
            abort(404, description="This message has no such delivery.")
        item = _retry_items(view).get(delivery_id)
        if item is None:
            return self._message_page(message_id, {f"delivery-{delivery_id}": (
                "This delivery has no open exception to retry: it has not failed, or its "
                "failure was handled already (see its exception).")}, 409)
        try:
            services().exceptions.retry(item, access.principal().name)
        except (Refused, Invalid) as error:
            return self._message_page(message_id, {f"delivery-{delivery_id}": _said(error)},
                                      409)
        flash(f"Retrying the delivery to {delivery['destination']}: it is on its way "
              "again. This page follows it.", "success")
        return redirect(_message_url(message_id), code=303)

    @expose("/<message_id>/reprocess", methods=("POST",))
    def reprocess(self, message_id: str) -> Any:
        if not _may("message.reprocess"):
            return access.deny("message.reprocess")
        reason = request.form.get("reason", "").strip()[:REASON_LONGEST] or None
        try:
            done = services().reroute.reprocess(message_id[:_MESSAGE_ID],
                                                access.principal().name, reason)
        except NotFound:
            abort(404, description="There is no such message.")
        except (Refused, Invalid) as error:
            return self._message_page(message_id, {"reprocess": _said(error)}, 409)
        if done.outcome == "requeued":
            said = ("Sent back to be routed: the pipeline routes it under the rules "
                    "published now.")
        elif done.added:
            said = (f"Reprocessed under version {done.version}: it now also goes to "
                    f"{', '.join(done.added)}.")
        else:
            said = (f"Reprocessed under version {done.version}: nothing was missing, every "
                    "destination it routes to has its delivery already.")
        flash(said, "success")
        return redirect(_message_url(message_id), code=303)

    # ---- bulk --------------------------------------------------------------------

    @expose("/bulk", methods=("POST",))
    def bulk(self) -> Any:
        """Ask to confirm the action over the messages chosen, or, confirmed, start it."""
        if not _bulk_actions():
            return access.deny("message.bulk")
        action = request.form.get("action", "")[:16]
        if action in BULK and not _may(BULK[action][1]):
            return access.deny(BULK[action][1])
        args = SearchArgs.of_text(request.form.get("q", ""))
        chosen = list(dict.fromkeys(value[:_MESSAGE_ID] for value in
                                    request.form.getlist("message")[:MAX_ITEMS + 1]))
        reason = request.form.get("reason", "").strip()[:REASON_LONGEST]
        form = {"action": action, "reason": reason, "messages": chosen}
        problem = _bulk_problem(action, reason, chosen)
        items = (services().exceptions.retryable_for(chosen)
                 if problem is None and action == "retry" else [])
        if problem is None and action == "retry" and not items:
            problem = "None of the chosen messages has a failed delivery waiting to be retried."
        if problem is not None:
            return self._search_page(args, {"bulk": problem}, 400, bulk=form)
        if request.form.get("confirmed") != "yes":
            return self.render("console/message_bulk_confirm.html", form=form, args=args,
                               items=items, words=BULK_WORDS[action])
        me = access.principal().name
        jobs = services().bulk if action == "retry" else services().message_bulk
        try:
            job = jobs.start(action, items if action == "retry" else chosen, reason, me)
        except Invalid as error:
            return self._search_page(args, {"bulk": _said(error)}, 400, bulk=form)
        jobs.launch(job)
        return redirect(url_for(".bulk_job", job_id=job.id, q=args.text() or None),
                        code=303)

    @expose("/bulk/<job_id>/")
    def bulk_job(self, job_id: str) -> Any:
        return self.render("console/message_bulk.html", **_progress(job_id),
                           search=SearchArgs.of_text(request.args.get("q", "")))

    @expose("/bulk/<job_id>/progress")
    def bulk_progress(self, job_id: str) -> Any:
        return self.render("console/message_bulk_progress.html", **_progress(job_id))


DELIVERY_BADGES = {"delivered": "success", "dead": "danger", "failed": "danger",
                   "retrying": "warning", "held": "info", "cancelled": "secondary"}
"""Each delivery status's colour in a listing: red for what did not arrive."""


class _Read:
    """What the content templates use to read values (labels, evidence, bodies)."""

    label = staticmethod(label)
    is_person = staticmethod(is_person)
    person_text = staticmethod(person_text)
    when = staticmethod(when)
    evidence = staticmethod(message_reading.evidence_words)
    seen = staticmethod(message_reading.seen_words)
    body = staticmethod(message_reading.body_document)


def _content(view: str, stored: Any, destination: str) -> dict[str, Any]:
    """What one content view shows."""
    if view == "raw":
        return {"text": raw_text(stored), "format": stored.format}
    if view == "tree":
        message = parsed(stored)
        nodes = message_tree(message) if message is not None else []
        filters = (message_reading.tree_filters(message, nodes, services().messages.indexed)
                   if message is not None else {})
        return {"nodes": nodes, "filters": filters, "document": document(stored),
                "format": stored.format}
    if view == "payload":
        sent = [d for d in services().content.sent(stored.message_id)
                if d["destination"] == destination]
        return {"sent": sent, "destination": destination}
    return {"explained": _explained(stored)}


def _explained(stored: Any) -> Explained:
    try:
        return services().content.explained(stored)
    except (SwitchboardError, LookupError) as error:
        return Explained(stored.rule_set_version, failure=f"it cannot be explained: {error}")


def _rows_fired(message_id: str) -> Explained:
    """The route rows (ids and destinations, not content) for the message's page."""
    try:
        return services().content.rows_fired(message_id)
    except (SwitchboardError, LookupError) as error:
        return Explained(None, failure=f"it cannot be explained: {error}")


def _message(message_id: str) -> dict[str, Any]:
    try:
        return services().messages.show(message_id[:_MESSAGE_ID])
    except NotFound:
        abort(404, description="There is no such message. Search the message log for it.")


def _message_url(message_id: str) -> str:
    q = request.values.get("q", "")
    return url_for(".show", message_id=message_id, q=q or None)


def _retry_items(view: dict[str, Any]) -> dict[int, int]:
    """Each failed delivery's open exception item: retrying it retries the delivery."""
    return {item["delivery_id"]: item["id"] for item in view["exceptions"]
            if item["delivery_id"] is not None and item["status"] in OPEN}


def _moving(view: dict[str, Any]) -> bool:
    return any(d["status"] in MOVING for d in view["deliveries"])


def _options(args: SearchArgs) -> dict[str, list[str]]:
    """The choices the form's lists offer: the published catalog's connections, and
    whatever the search names already (an old link still reads)."""
    connections = services().rule_sets.current().rule_set.connections.values()
    sources = sorted(c.id for c in connections if c.direction != Direction.OUTBOUND)
    destinations = sorted(c.id for c in connections if c.direction != Direction.INBOUND
                          and c.transport != Transport.TASK_QUEUE)
    for name, found in (("source", sources), ("destination", destinations)):
        value = args.values.get(name)
        if value and value not in found:
            found.append(value)
    return {"source": sources, "destination": destinations,
            "status": list(STATUSES), "delivery_status": list(DELIVERY_STATUSES)}


def _bulk_actions() -> list[tuple[str, str]]:
    return [(name, words) for name, (words, permission) in BULK.items() if _may(permission)]


def _bulk_problem(action: str, reason: str, chosen: list[str]) -> str | None:
    if action not in BULK:
        return "Choose what to do with the messages."
    if not chosen:
        return "Tick the messages to act on."
    if len(chosen) > MAX_ITEMS:
        return f"That is more than {MAX_ITEMS} messages: narrow the search, or act in parts."
    if not reason:
        return "Say why these messages may all be handled this way."
    return None


def _progress(job_id: str) -> dict[str, Any]:
    """A bulk job started here, and how its items are linked: a reprocess names
    messages, a retry of their failed deliveries is an exception queue job."""
    if not _JOB.fullmatch(job_id):
        abort(404, description="There is no such bulk action.")
    try:
        return {"progress": services().message_bulk.progress(job_id), "words": BULK_WORDS,
                "item_url": lambda item: url_for(".show", message_id=item),
                "item_text": lambda item: f"Message {str(item)[:8]}"}
    except NotFound:
        pass
    try:
        progress: BulkProgress = services().bulk.progress(job_id)
    except NotFound:
        abort(404, description="There is no such bulk action.")
    return {"progress": progress, "words": BULK_WORDS,
            "item_url": lambda item: url_for("exceptions.item", item_id=item),
            "item_text": lambda item: f"Exception #{item}"}


def _said(error: SwitchboardError) -> str:
    """The service's refusal as a sentence, and what to do next unless that speaks of
    the command line or the API."""
    text = error.reason[:1].upper() + error.reason[1:] + "."
    hint = error.hint or ""
    spoken_elsewhere = any(mark in hint for mark in ("--", "=", "/api", "GET ", '"'))
    return text if not hint or spoken_elsewhere else f"{text} {hint}."

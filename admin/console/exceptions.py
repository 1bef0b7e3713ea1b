"""The exception queue: the failures waiting for someone, grouped by what went wrong
(their signature) with counts; an item's page with its owner, recovery procedure and
escalation, and what may be done with it (assign, retry, skip, resolve, or edit the
message and reprocess it; a retry asks why, as a bulk one does); bulk actions, with a
reason, over ticked items or a whole group, whose progress any web process can show;
and, for a connection or a group, a retry of every item waiting for it, oldest first
(the bulk way: a reason, the confirm page, the progress), as recovery procedures ask.

Everyone who may read the queue (operators, analysts, compliance) sees it; each
action checks its own permission (engine.security.permissions) on the server. The
edit page shows the message itself, so it is a content view: audited by the queue,
and never shown to compliance."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console import access
from admin.console.access import ConsoleView
from admin.console.exception_listing import STATUSES, ListArgs, page_count
from admin.services import services
from engine.exception_bulk import ACTIONS as BULK_ACTIONS
from engine.exception_bulk import MAX_ITEMS
from engine.integration_catalog import CatalogQuery
from engine.message_edit import HL7V2, JSON, TEXT, Kind, edit_diff, edited_body
from engine.queues import Invalid, NotFound, Refused
from engine.security.permissions import may, roles_for
from engine.security.roles import Role

PER_PAGE, GROUPS_PER_PAGE = 25, 8
REASON_LONGEST, BODY_LONGEST = 2000, 1_000_000
_JOB = re.compile(r"[0-9a-f]{32}")
_ASSIGNABLE = roles_for("exception.resolve", "exception.retry", "exception.reprocess",
                        "exception.skip")
_KINDS: dict[str, Kind] = {HL7V2: HL7V2, JSON: JSON, TEXT: TEXT}
# What a bulk action is called where people choose it, and once it has been done.
BULK_WORDS = {"retry": ("Retry", "retried"), "resolve": ("Resolve", "resolved"),
              "assign": ("Assign", "assigned")}


def _may(action: str) -> bool:
    return may(access.principal().roles, action)


def _may_see_content() -> bool:
    """Compliance never sees message content, whatever other role it comes with."""
    roles = access.principal().roles
    return Role.COMPLIANCE not in roles and may(roles, "exception.reprocess")


def _refuse_content() -> Any:
    compliance = Role.COMPLIANCE in access.principal().roles
    return access.deny("content.view" if compliance else "exception.reprocess")


def _form_text(name: str, longest: int = REASON_LONGEST) -> str:
    return request.form.get(name, "")[:longest]


class ExceptionsView(ConsoleView):
    roles = frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE})

    def __init__(self) -> None:
        super().__init__(name="Exceptions", endpoint="exceptions", url="/exceptions")

    # ---- the queue ---------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        return self._queue_page(ListArgs.read(request.args))

    def _queue_page(self, args: ListArgs, bulk: dict[str, Any] | None = None,
                    bulk_error: str | None = None, code: int = 200) -> Any:
        queue = services().exceptions
        try:
            items = queue.list(args.filters(), args.page, PER_PAGE, args.sort)
            groups = queue.signatures(args.filters(signature=False), args.gpage,
                                      GROUPS_PER_PAGE, args.gsort)
            chosen = (queue.signatures({**args.filters(), "status": "waiting"}, 1, 1).items
                      if args.signature else [])
        except Invalid as error:
            abort(400, description=_said(error))
        may_retry = _may("exception.retry")
        # Filtered to one connection, an operator may retry every item waiting for it,
        # oldest first, as recovery procedures ask ("retry the dead letters in order").
        retry_all = (len(queue.waiting_ids(args.filters(), MAX_ITEMS + 1))
                     if may_retry and args.connection else 0)
        return self.render(
            "console/exceptions.html", args=args, items=items, groups=groups,
            pages=page_count(items.total, PER_PAGE),
            group_pages=page_count(groups.total, GROUPS_PER_PAGE),
            chosen=chosen[0] if chosen else None, facets=queue.facets(), statuses=STATUSES,
            bulk_actions=[(name, BULK_WORDS[name][0]) for name, permission
                          in BULK_ACTIONS.items() if _may(permission)],
            assignable=_assignable(), bulk=bulk or {}, bulk_error=bulk_error,
            max_items=MAX_ITEMS, may_retry=may_retry, retry_all=retry_all,
            names=_connection_names()), code

    # ---- retry every waiting item of a connection or group, oldest first ------------

    @expose("/retry-all")
    def retry_all(self) -> Any:
        """Ask why, for a retry of every item waiting for a connection (or in a group),
        which then goes the bulk way: the confirm page, then its progress."""
        if not _may("exception.retry"):
            return access.deny("exception.retry")
        args = ListArgs.read(request.args)
        if not (args.connection or args.signature):
            flash("To retry all the open items of a connection, filter the queue to that "
                  "connection first (or open one of its groups).", "info")
            return redirect(url_for(".index"))
        return self._retry_all_page(args)

    def _retry_all_page(self, args: ListArgs, reason: str = "", error: str | None = None,
                        code: int = 200) -> Any:
        queue = services().exceptions
        try:
            ids = queue.waiting_ids(args.filters(), MAX_ITEMS + 1)
            group = (queue.signatures({**args.filters(), "status": "waiting"}, 1, 1).items
                     if args.signature else [])
        except Invalid as error_:
            abort(400, description=_said(error_))
        connection = args.connection or (group[0]["connection"] if group else "")
        return self.render("console/exception_retry_all.html", args=args, count=len(ids),
                           connection=connection, group=group[0] if group else None,
                           name=_connection_names().get(connection or "", connection),
                           reason=reason, error=error, max_items=MAX_ITEMS), code

    # ---- one item ----------------------------------------------------------------

    @expose("/<id:item_id>/")
    def item(self, item_id: int) -> Any:
        return self._item_page(item_id)

    def _item_page(self, item_id: int, errors: dict[str, str] | None = None,
                   typed: dict[str, str] | None = None, code: int = 200) -> Any:
        """The item; ``errors`` and what was ``typed`` are by the action they were for."""
        try:
            found = services().exceptions.show(item_id)
        except NotFound:
            abort(404, description=f"There is no exception {item_id}.")
        can = {name: _may(f"exception.{name}") for name in
               ("assign", "resolve", "retry", "skip", "reprocess")}
        can["reprocess"] = can["reprocess"] and _may_see_content()
        return self.render("console/exception_item.html", item=found, can=can,
                           assignable=_assignable(), errors=errors or {},
                           typed=typed or {}, entry=_catalog_entry(found["connection"]),
                           may_read_catalog=_may("catalog.read"),
                           may_read_messages=_may("message.read")), code

    @expose("/<id:item_id>/assign", methods=("POST",))
    def assign(self, item_id: int) -> Any:
        assignee = _form_text("assignee", 64)
        return self._act(item_id, "assign", lambda actor: services().exceptions.assign(
            item_id, assignee, actor), f"Exception {item_id} is assigned to {assignee}.")

    @expose("/<id:item_id>/resolve", methods=("POST",))
    def resolve(self, item_id: int) -> Any:
        reason = _form_text("reason")
        return self._act(item_id, "resolve", lambda actor: services().exceptions.resolve(
            item_id, reason, actor), f"Exception {item_id} is resolved.", {"resolve": reason})

    @expose("/<id:item_id>/retry", methods=("POST",))
    def retry(self, item_id: int) -> Any:
        reason = _form_text("reason")
        # The page says where it is now: it may be delivered already, or failing again.
        return self._act(item_id, "retry", lambda actor: services().exceptions.retry(
            item_id, actor, reason=reason), f"Exception {item_id} is retried: sent again. "
            "See below where it is now.", {"retry": reason})

    @expose("/<id:item_id>/skip", methods=("POST",))
    def skip(self, item_id: int) -> Any:
        reason = _form_text("reason")
        return self._act(item_id, "skip", lambda actor: services().exceptions.skip(
            item_id, reason, actor), f"Exception {item_id} is skipped: what waited behind "
            "it goes on.", {"skip": reason})

    def _act(self, item_id: int, name: str, act: Any, done: str,
             typed: dict[str, str] | None = None) -> Any:
        if not _may(f"exception.{name}"):
            return access.deny(f"exception.{name}")
        try:
            act(access.principal().name)
        except NotFound:
            abort(404, description=f"There is no exception {item_id}.")
        except (Refused, Invalid) as error:
            return self._item_page(item_id, {name: _said(error)}, typed,
                                   409 if isinstance(error, Refused) else 400)
        flash(done, "success")
        return redirect(url_for(".item", item_id=item_id))

    # ---- edit and reprocess (a content view) -------------------------------------

    @expose("/<id:item_id>/edit")
    def edit(self, item_id: int) -> Any:
        if not _may_see_content():
            return _refuse_content()
        queue = services().exceptions
        try:
            found = queue.show(item_id)
            if "reprocess" not in found["recovery_actions"]:
                return self._item_page(item_id, {"reprocess": "This item cannot be "
                                       "reprocessed: it is settled, or names no message."},
                                       code=409)
            original = queue.original(item_id, access.principal().name)
        except NotFound:
            abort(404, description=f"There is no exception {item_id}.")
        except Refused as error:
            return self._item_page(item_id, {"reprocess": _said(error)}, code=409)
        return self.render("console/exception_edit.html", item=found,
                           original=original.editable, kind=original.kind,
                           what=original.what, body=original.editable, diff=[], error=None)

    @expose("/<id:item_id>/diff", methods=("POST",))
    def diff(self, item_id: int) -> Any:
        """The edit against the original the page showed (sent back with the edit):
        nothing is read from the store, so nothing more is viewed."""
        if not _may_see_content():
            return _refuse_content()
        return self.render("console/exception_diff.html", diff=edit_diff(
            _form_text("original", BODY_LONGEST), _form_text("body", BODY_LONGEST)))

    @expose("/<id:item_id>/reprocess", methods=("POST",))
    def reprocess(self, item_id: int) -> Any:
        if not _may_see_content():
            return _refuse_content()
        kind = _KINDS.get(request.form.get("kind", ""), TEXT)
        typed, original = _form_text("body", BODY_LONGEST), _form_text("original",
                                                                      BODY_LONGEST)
        queue = services().exceptions
        try:
            done = queue.reprocess(item_id, edited_body(typed, kind), access.principal().name)
        except NotFound:
            abort(404, description=f"There is no exception {item_id}.")
        except (Refused, Invalid) as error:
            found = queue.show(item_id)
            return self.render("console/exception_edit.html", item=found, original=original,
                               kind=kind, what=request.form.get("what", ""), body=typed,
                               diff=edit_diff(original, typed), error=_said(error)), \
                409 if isinstance(error, Refused) else 400
        replacement = done.get("replacement") or {}
        copy = (f"delivery {replacement['delivery_id']}" if "delivery_id" in replacement
                else f"message {replacement.get('message_id', '')}")
        flash(f"Exception {item_id} is reprocessed: the edited copy is {copy}, "
              f"{replacement.get('status') or 'on its way'}.", "success")
        return redirect(url_for(".item", item_id=item_id))

    # ---- bulk --------------------------------------------------------------------

    @expose("/bulk", methods=("POST",))
    def bulk(self) -> Any:
        """Ask to confirm the action over the items chosen, or, confirmed, start it."""
        if not any(_may(permission) for permission in BULK_ACTIONS.values()):
            return access.deny("exception.bulk")
        form = _bulk_form()
        if form["action"] in BULK_ACTIONS and not _may(BULK_ACTIONS[form["action"]]):
            return access.deny(BULK_ACTIONS[form["action"]])
        args = ListArgs.read(request.form)
        problem = _bulk_problem(form)
        if problem is None and form["scope"] in ("group", "all"):
            wanted = args.signature if form["scope"] == "group" else (
                args.connection or args.signature)
            form["items"] = (services().exceptions.waiting_ids(args.filters(), MAX_ITEMS + 1)
                             if wanted else [])
            problem = None if form["items"] else (
                "No item in this group waits any more." if form["scope"] == "group"
                else "No item waits to be retried here any more.")
        if problem is None and len(form["items"]) > MAX_ITEMS:
            problem = (f"That is more than {MAX_ITEMS} items: narrow the filter, or act in "
                       "parts.")
        if problem is not None:
            if form["scope"] == "all" and (args.connection or args.signature):
                return self._retry_all_page(args, form["reason"], problem, 400)
            return self._queue_page(args, form, problem, 400)
        if form["action"] == "retry":  # in the order they will go (engine.exception_bulk)
            form["items"] = services().exceptions.oldest_first(form["items"])
        if request.form.get("confirmed") != "yes":
            return self.render("console/exception_bulk_confirm.html", form=form, args=args,
                               words=BULK_WORDS[form["action"]],
                               names=_connection_names())
        try:
            job = services().bulk.start(form["action"], form["items"], form["reason"],
                                        access.principal().name, form["assignee"] or None)
        except Invalid as error:
            return self._queue_page(args, form, _said(error), 400)
        services().bulk.launch(job)
        return redirect(url_for(".bulk_job", job_id=job.id))

    @expose("/bulk/<job_id>/")
    def bulk_job(self, job_id: str) -> Any:
        return self.render("console/exception_bulk.html", progress=_progress(job_id),
                           words=BULK_WORDS)

    @expose("/bulk/<job_id>/progress")
    def bulk_progress(self, job_id: str) -> Any:
        return self.render("console/exception_bulk_progress.html",
                           progress=_progress(job_id), words=BULK_WORDS)


def _assignable() -> list[str]:
    """Who an item may be given to: enabled users whose role may act on it."""
    return [user.name for user in services().users.list()
            if not user.disabled and user.role in _ASSIGNABLE]


def _said(error: Invalid | Refused) -> str:
    """The queue's refusal as a sentence and what to do next."""
    text = str(error)
    return text[:1].upper() + text[1:]


def _connection_names() -> dict[str, str]:
    """Each connection's name in the published catalog, by id; none before one is."""
    try:
        return {entry["id"]: entry["name"] or entry["id"]
                for entry in services().catalog.entries(CatalogQuery())}
    except NotFound:
        return {}


def _catalog_entry(connection_id: str | None) -> dict[str, Any] | None:
    """The item's connection as the catalog holds it: its owners and pager."""
    if not connection_id:
        return None
    try:
        return services().catalog.show(connection_id)
    except NotFound:
        return None


def _bulk_form() -> dict[str, Any]:
    items = [int(value) for value in request.form.getlist("item")[:MAX_ITEMS + 1]
             if value.isascii() and value.isdigit() and len(value) <= 18]
    scope = request.form.get("scope")
    return {"action": request.form.get("action", "")[:16],
            "scope": scope if scope in ("group", "all") else "selected",
            "reason": _form_text("reason"), "assignee": _form_text("assign_to", 64),
            "items": items}


def _bulk_problem(form: dict[str, Any]) -> str | None:
    if form["action"] not in BULK_ACTIONS:
        return "Choose what to do with the items."
    if not form["reason"].strip():
        return "Say why these items may all be handled this way."
    if form["action"] == "assign" and not form["assignee"]:
        return "Choose who to assign the items to."
    if form["scope"] == "selected" and not form["items"]:
        return "Tick the items to act on, or choose every item in the group."
    return None


def _progress(job_id: str) -> Any:
    if not _JOB.fullmatch(job_id):
        abort(404, description="There is no such bulk action.")
    try:
        return services().bulk.progress(job_id)
    except NotFound:
        abort(404, description="There is no such bulk action.")

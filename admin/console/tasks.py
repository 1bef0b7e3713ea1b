"""The task inbox: the user's queues with due times counting down, the overdue first,
and, in red, any result approved there that has not reached its destination; a task's
page, which says whose it is and what it is for and shows what its queue's data scope
lets the user read (a result review's results in one table, critical first); and
claiming (and giving a claim back), approving, rejecting (with a reason) and completing
(in one of its route row's states).

Every signed-in role may open the inbox; what each sees and may do is its queues'
task_access, which the work queue applies to every call (the REST API's rule, not a
second one): a refusal there is a refusal here, audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from werkzeug.datastructures import MultiDict

from admin.console import task_reading
from admin.console.access import ConsoleView, deny, principal
from admin.services import services
from engine.queues import OPEN, Forbidden, Invalid, NotFound, Page, Refused
from engine.security.identity import Principal
from engine.security.roles import Role
from engine.work_queue import WorkQueue

PER_PAGE = 25
LAST_PAGE = 100_000  # past any inbox; keeps a typed page number inside the store's integers
STATUSES = {"waiting": ("Waiting (open or claimed)", OPEN), "open": ("Open", "open"),
            "assigned": ("Claimed", "assigned"), "approved": ("Approved", "approved"),
            "rejected": ("Rejected", "rejected"), "completed": ("Completed", "completed"),
            "all": ("Any status", None)}
"""The status filter's choices: their words, and the statuses each lists."""
COLUMNS = (("due", "Due"), ("kind", "Task"), ("queue", "Queue"), ("status", "Status"),
           ("created", "Came in"))
"""The inbox's columns that sort, by the work queue's sort names."""
MOVING = frozenset({"pending", "retrying", "in_flight"})
NOT_ARRIVED = {"retrying": "Sending it failed and Switchboard is trying again: it has "
                           "not reached {name} yet.",
               "dead": "Sending it failed and Switchboard has stopped trying: it has not "
                       "reached {name}. The integration team has been told.",
               "failed": "Sending it failed: it has not reached {name}. The "
                         "integration team has been told."}
"""What a released delivery that has not arrived means for the person who released it:
the team is told only once it is in their exception queue, not while it is retried."""
DELIVERY_WORDS = {"held": "Held for this review", "pending": "Released: waiting to be sent",
                  "retrying": "Not there yet: sending again after a failure",
                  "in_flight": "Released: being sent", "delivered": "Delivered",
                  "cancelled": "Cancelled: will not be sent",
                  "dead": "Not delivered: the integration team has been told",
                  "failed": "Not delivered: the integration team has been told"}


@dataclass(frozen=True)
class Filters:
    """The inbox's query arguments, read forgivingly: an unknown value means the
    default, so an old bookmark still opens."""

    queue: str = ""
    status: str = "waiting"
    mine: bool = False
    sort: str = "due"
    page: int = 1

    @classmethod
    def of(cls, args: MultiDict[str, str]) -> Filters:
        status = args.get("status", "waiting")
        sort = args.get("sort", "due")
        page = args.get("page", 1, type=int) or 1
        return cls(queue=args.get("queue", "")[:64],
                   status=status if status in STATUSES else "waiting",
                   mine=args.get("mine") == "1",
                   sort=sort if sort.removeprefix("-") in dict(COLUMNS) else "due",
                   page=min(max(1, page), LAST_PAGE))

    def url(self, **changes: Any) -> str:
        """The inbox with these filters and ``changes``: page 1 unless ``changes`` names a
        page, and no argument that says only the default (the status always)."""
        values = {"queue": self.queue, "status": self.status, "mine": "1" if self.mine else "",
                  "sort": self.sort, "page": self.page, **changes}
        if "page" not in changes:
            values["page"] = 1
        return url_for("tasks.index", **{k: v for k, v in values.items()
                                         if v not in ("", None, 1) or k == "status"})

    def sorted_by(self, column: str) -> str:
        """The link of ``column``'s heading: sort by it, or the other way if it is the
        sort now."""
        return self.url(sort=f"-{column}" if self.sort == column else column)

    def order_of(self, column: str) -> str | None:
        """``aria-sort`` of ``column``'s heading."""
        if self.sort.removeprefix("-") != column:
            return None
        return "descending" if self.sort.startswith("-") else "ascending"


class TasksView(ConsoleView):
    roles = frozenset(Role)

    def __init__(self) -> None:
        super().__init__(name="Tasks", endpoint="tasks", url="/tasks")

    @expose("/")
    def index(self) -> Any:
        me, work = principal(), services().tasks
        filters = Filters.of(request.args)
        queues = work.waiting(me)
        page: Page | None = None
        if queues:
            try:
                page = work.list(filters.queue or None, STATUSES[filters.status][1],
                                 me.name if filters.mine else None, None, filters.page,
                                 PER_PAGE, viewer=me, sort=filters.sort)
            except Forbidden:
                return deny(f"tasks.list {filters.queue}")
        return self.render("console/tasks.html", queues=queues, page=page, filters=filters,
                           statuses=STATUSES, columns=COLUMNS, due_words=due_words,
                           overdue=overdue, me=me.name, status_words=status_words,
                           undelivered=work.undelivered(me) if queues else [],
                           not_arrived=NOT_ARRIVED,
                           names={q["queue"]: q["name"] for q in queues})

    @expose("/<id:task_id>")
    def show(self, task_id: int) -> Any:
        return self._page(task_id)

    @expose("/<id:task_id>/holds")
    def holds(self, task_id: int) -> Any:
        """Where the deliveries the task holds are now: the page polls it while an
        approved review's deliveries are on their way."""
        try:
            holds = services().tasks.holds(task_id, principal())
        except NotFound:
            abort(404)
        except Forbidden:
            return deny(f"task.show {task_id}")
        return self.render("console/task_holds.html", holds=holds, task_id=task_id,
                           moving=_moving(holds), words=DELIVERY_WORDS)

    @expose("/<id:task_id>/claim", methods=("POST",))
    def claim(self, task_id: int) -> Any:
        return self._act(task_id, "claim", lambda work, me: work.assign(task_id, me.name, me),
                         "You claimed this task: it is yours to work.")

    @expose("/<id:task_id>/unassign", methods=("POST",))
    def unassign(self, task_id: int) -> Any:
        return self._act(task_id, "unassign", lambda work, me: work.unassign(task_id, me),
                         "Given back: anyone in the queue may take it now.")

    @expose("/<id:task_id>/approve", methods=("POST",))
    def approve(self, task_id: int) -> Any:
        note = _text("note")
        return self._act(task_id, "approve",
                         lambda work, me: work.approve(task_id, me, note),
                         "Approved: the result is sent on. Where it goes shows on this "
                         "page until it has arrived.")

    @expose("/<id:task_id>/reject", methods=("POST",))
    def reject(self, task_id: int) -> Any:
        reason = _text("reason")
        if reason is None:
            # Who may reject is checked before what they sent: a refusal is a refusal.
            refused = _unless_acting(task_id, "task.reject")
            if refused is not None:
                return refused
            return self._page(task_id, {"reason": "Say why what this review holds must "
                                                  "not go: a rejection needs a reason."}, 400)
        return self._act(task_id, "reject", lambda work, me: work.reject(task_id, me, reason),
                         "Rejected. What the review held is cancelled and will not be sent.")

    @expose("/<id:task_id>/complete", methods=("POST",))
    def complete(self, task_id: int) -> Any:
        state, note = _text("state"), _text("note")
        return self._act(task_id, "complete",
                         lambda work, me: work.complete(task_id, me, state, note),
                         "Completed." if state is None else f"Completed: {state}.")

    def _act(self, task_id: int, action: str,
             call: Callable[[WorkQueue, Principal], dict[str, Any]], done: str) -> Any:
        """Take ``action`` through the work queue, which checks the queue's access and
        the task's state; then show the task again, with what happened."""
        try:
            call(services().tasks, principal())
        except NotFound:
            abort(404)
        except Forbidden:
            return deny(f"task.{action} {task_id}")
        except Invalid as error:
            field = "state" if action == "complete" else "reason" if action == "reject" \
                else action
            return self._page(task_id, {field: _words(error)}, 400)
        except Refused as error:
            return self._page(task_id, {"task": _words(error)}, 409)
        flash(done, "success")
        return redirect(url_for(".show", task_id=task_id), code=303)

    def _page(self, task_id: int, errors: dict[str, str] | None = None,
              status: int = 200) -> Any:
        me, work = principal(), services().tasks
        try:
            task = work.show(task_id, me)
        except NotFound:
            abort(404)
        except Forbidden:
            return deny(f"task.show {task_id}")
        access = work.access()
        names = {q["queue"]: q for q in work.waiting(me)}
        results = (task.get("payload") or {}).get("results") or []
        waiting = work.list(task["queue"], OPEN, None, None, 1, 2, viewer=me, sort="due")
        following = next((t["id"] for t in waiting.items if t["id"] != task_id), None)
        return self.render(
            "console/task.html", task=task, errors=errors or {}, form=request.form,
            results=task_reading.in_reading_order(
                [r for r in results if not task_reading.is_note(r)]),
            notes=[r for r in results if task_reading.is_note(r)],
            doctor=task_reading.ordering_doctor(task.get("payload")),
            abnormal=sum(1 for r in results if task_reading.is_abnormal(r)),
            critical=sum(1 for r in results if task_reading.is_critical(r)),
            not_arrived=[(hold, NOT_ARRIVED[hold["status"]].format(**hold))
                         for hold in task["holds"] if hold["status"] in NOT_ARRIVED
                         and task["status"] == "approved"],
            may_act=access.may(me.roles, task["queue"], "task.approve"),
            may_read="payload" in task, queue=names.get(task["queue"], {}),
            due_words=due_words, overdue=overdue, me=me.name, read=task_reading,
            status_words=status_words, words=DELIVERY_WORDS, following=following,
            moving=_moving(task["holds"])), status


def due_words(due_at: str | None, now: datetime | None = None) -> str:
    """"due in 1h 5m" or "overdue by 2d 3h", as console.js counts it down."""
    if not due_at:
        return "no due time"
    seconds = (datetime.fromisoformat(due_at) - (now or datetime.now(UTC))).total_seconds()
    left = abs(int(seconds))
    days, hours, minutes = left // 86400, left % 86400 // 3600, left % 3600 // 60
    text = f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"
    return f"overdue by {text}" if seconds < 0 else f"due in {text}"


def status_words(task: dict[str, Any], me: str) -> str:
    """A task's status in the same words in the inbox and on its page."""
    status, assignee = task.get("status"), task.get("assignee")
    if status == "assigned":
        return "Claimed by you" if assignee == me else f"Claimed by {assignee}"
    if status == "open":
        return "Waiting"
    decided_by = task.get("decided_by")
    return f"{str(status).capitalize()} by {decided_by}" if decided_by \
        else str(status).capitalize()


def overdue(task: dict[str, Any]) -> bool:
    """Whether a waiting task is past its due time."""
    due_at = task.get("due_at")
    return isinstance(due_at, str) and task.get("status") in OPEN and \
        datetime.fromisoformat(due_at) < datetime.now(UTC)


def _unless_acting(task_id: int, action: str) -> Any:
    """A refusal unless the signed-in user may take ``action`` in the task's queue."""
    me, work = principal(), services().tasks
    try:
        queue = work.summary(task_id)["queue"]
    except NotFound:
        abort(404)
    return None if work.access().may(me.roles, queue, action) else deny(f"{action} {task_id}")


def _moving(holds: list[dict[str, Any]]) -> bool:
    return any(hold["status"] in MOVING for hold in holds)


def _text(name: str) -> str | None:
    """A form field, None when blank; free text is kept to a sane length."""
    value = request.form.get(name, "").strip()
    return value[:2000] or None


def _words(error: Invalid | Refused) -> str:
    """The work queue's refusal as a sentence, with what to do next unless that speaks
    of the command line or the API."""
    text = error.reason[:1].upper() + error.reason[1:] + "."
    hint = error.hint or ""
    return text if not hint or "--" in hint or '"' in hint else f"{text} {hint}."

"""Change review, for approvers: the versions waiting for review (and approved ones
waiting to be published) with their gates; a version's page with its semantic diff
side by side, its gates, its impact preview (started here, its progress polled, its
counts per destination and the messages that differ, by id and field path only), and
approve, reject with a reason, publish, or, for its author after a rejection, a fix
in a new draft; the history of every version with who moved it when and why, the
version each engine part runs, a diff between any two versions, and rollback.

Analysts, approvers, compliance and admins may read all of it: it shows rules, never
message content. Each action is ChangeControl's to allow (roles, four-eyes, state);
the screen checks the role first as well, so a refusal is the same 403 everywhere."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose

from admin.console import access
from admin.console.access import ConsoleView
from admin.console.change_reading import change_count, side_by_side
from admin.console.studio_pages import unset_secrets
from admin.health import RUNNING_VERSIONS
from admin.services import services
from admin.store_ids import VERSIONS, query_number
from engine.impact_preview import DEFAULT_LIMIT, MAX_LIMIT
from engine.queues import Invalid, NotFound, Page
from engine.rules import lifecycle
from engine.rules.lifecycle import Conflict, Forbidden
from engine.security.permissions import may
from engine.security.roles import Role

REASON_LONGEST = 2000
HISTORY_PER_PAGE, REPORT_PER_PAGE = 25, 50
GATE_WORDS = {"schema": "Schema", "lint": "Lint", "tests": "Rule tests",
              "catalog": "Catalog completeness", "preview": "Impact preview"}
STATUS_WORDS = {"draft": "Draft", "in_review": "In review", "approved": "Approved",
                "published": "Published", "superseded": "Superseded", "rejected": "Rejected"}
EVENT_WORDS = {"rules.bootstrap": "published at first start", "rules.draft": "drafted",
               "rules.edit": "edited", "rules.submit": "submitted for review",
               "rules.preview": "asked for an impact preview",
               "rules.preview_override": "let an empty impact preview count",
               "rules.approve": "approved", "rules.reject": "rejected",
               "rules.publish": "published", "rules.rollback": "rolled back"}
_PREVIEW_ROLES = lifecycle.AUTHOR_ROLES | lifecycle.OVERRIDE_ROLES
_APPROVER_ROLES = lifecycle.ROLLBACK_ROLES


def _holds(roles: frozenset[Role]) -> bool:
    return bool(access.principal().roles & roles)


def _reason() -> str:
    return request.form.get("reason", "")[:REASON_LONGEST]


def _said(error: Forbidden | Conflict | Invalid) -> str:
    """The refusal as a sentence, and what to do next."""
    text = error.reason.rstrip(".")
    return f"{text[:1].upper()}{text[1:]}." + (f" {error.hint.rstrip('.')}." if error.hint else "")


def _refuse(error: Forbidden, what: str) -> Any:
    access.audit_denial(access.principal(), what)
    abort(403, description=_said(error))


class ChangesView(ConsoleView):
    roles = frozenset({Role.ANALYST, Role.APPROVER, Role.COMPLIANCE})

    def __init__(self) -> None:
        super().__init__(name="Changes", endpoint="changes", url="/changes")

    # ---- the review queue --------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        versions = services().versions
        waiting = _oldest_first(versions.history(lifecycle.IN_REVIEW, 1, 200).items)
        approved = _oldest_first(versions.history(lifecycle.APPROVED, 1, 200).items)
        gates = {v["version"]: versions.gates(v["version"]) for v in waiting + approved}
        return self.render("console/changes_queue.html", waiting=waiting, approved=approved,
                           gates=gates, gate_words=GATE_WORDS)

    # ---- one version -------------------------------------------------------------

    @expose("/<version:version>")
    def review(self, version: int) -> Any:
        return self._review_page(version)

    def _review_page(self, version: int, errors: dict[str, str] | None = None,
                     typed: dict[str, str] | None = None, code: int = 200) -> Any:
        versions = services().versions
        shown = _show(version)
        published = _published()
        base = shown["parent"] or published
        if base == version:  # the first version, published: nothing before it
            base = None
        blocks = side_by_side(versions.diff(base, version)["changes"]) if base else []
        gates = versions.gates(version)
        return self.render(
            "console/changes_review.html", version=shown, base=base, published=published,
            blocks=blocks, changes=change_count(blocks), gates=gates, gate_words=GATE_WORDS,
            failed=[g["gate"] for g in gates if not g["passed"] and not g["waiting"]],
            waiting=[g["gate"] for g in gates if g["waiting"]],
            preview=versions.latest_preview(version), can=_can(shown, gates),
            events=_events().get(version, []), event_words=EVENT_WORDS,
            unset=unset_secrets(versions.content(version), versions.content()),
            status_words=STATUS_WORDS, errors=errors or {}, typed=typed or {},
            default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT), code

    @expose("/<version:version>/approve", methods=("POST",))
    def approve(self, version: int) -> Any:
        note = _reason().strip() or None
        return self._act(version, "approve", _APPROVER_ROLES, lambda actor: services()
                         .versions.approve(version, actor, note),
                         f"Version {version} is approved. Publish it when it should go live.")

    @expose("/<version:version>/reject", methods=("POST",))
    def reject(self, version: int) -> Any:
        reason = _reason()
        if _holds(_APPROVER_ROLES) and not reason.strip():
            return self._review_page(version, {"reject": "Say why it is rejected: the "
                                               "author reads this to fix it."}, code=400)
        return self._act(version, "reject", _APPROVER_ROLES, lambda actor: services()
                         .versions.reject(version, actor, reason),
                         f"Version {version} is rejected; its author sees your reason.",
                         {"reject": reason})

    @expose("/<version:version>/publish", methods=("POST",))
    def publish(self, version: int) -> Any:
        return self._act(version, "publish", _APPROVER_ROLES, lambda actor: services()
                         .versions.publish(version, actor),
                         f"Version {version} is published: the engines switch to it now.")

    @expose("/<version:version>/fix", methods=("POST",))
    def fix(self, version: int) -> Any:
        """A new draft whose parent is the rejected version, for its author to fix."""
        if not _holds(lifecycle.AUTHOR_ROLES):
            return access.deny("changes.fix")
        try:
            draft = services().versions.create_draft(
                access.principal(), f"Fix of version {version} after review",
                parent=version)
        except Forbidden as error:
            return _refuse(error, "changes.fix")
        except NotFound:
            abort(404, description=f"There is no rule-set version {version}.")
        flash(f"Version {draft['version']} is a new draft of version {version}: fix it "
              "here, then submit it for review.", "success")
        return redirect(f"/studio/{draft['version']}")

    def _act(self, version: int, name: str, roles: frozenset[Role], act: Any, done: str,
             typed: dict[str, str] | None = None) -> Any:
        if not _holds(roles):
            return access.deny(f"changes.{name}")
        try:
            act(access.principal())
        except Forbidden as error:
            return _refuse(error, f"changes.{name}")
        except NotFound:
            abort(404, description=f"There is no rule-set version {version}.")
        except (Conflict, Invalid) as error:
            code = 409 if isinstance(error, Conflict) else 400
            return self._review_page(version, {name: _said(error)}, typed, code)
        flash(done, "success")
        return redirect(url_for(".review", version=version))

    # ---- the impact preview --------------------------------------------------------

    @expose("/<version:version>/preview", methods=("POST",))
    def start_preview(self, version: int) -> Any:
        if not _holds(_PREVIEW_ROLES):
            return access.deny("changes.preview")
        typed = {name: request.form.get(name, "")[:40]
                 for name in ("scope", "limit", "since", "until")}
        selection, problems = _selection(typed)
        if problems:
            return self._review_page(version, problems, typed, 400)
        try:
            services().versions.request_preview(version, access.principal(), selection)
        except Forbidden as error:
            return _refuse(error, "changes.preview")
        except NotFound:
            abort(404, description=f"There is no rule-set version {version}.")
        except Invalid as error:
            return self._review_page(version, {"preview": _said(error)}, typed, 400)
        return redirect(url_for(".review", version=version, _anchor="impact"))

    @expose("/<version:version>/preview")
    def preview_progress(self, version: int) -> Any:
        """The preview panel alone, which the page fetches again while it runs."""
        _show(version)
        preview = services().versions.latest_preview(version)
        page = self.render("console/changes_preview.html", version={"version": version},
                           preview=preview)
        if preview and preview["status"] in ("done", "failed") and request.headers.get(
                "HX-Request"):
            # Finished while the page watched: the gates and what the approver may do
            # follow from it, so the whole page is drawn again.
            return page, 200, {"HX-Refresh": "true"}
        return page

    @expose("/<version:version>/impact")
    def impact(self, version: int) -> Any:
        """The messages the latest preview found treated differently: ids and paths."""
        shown = _show(version)
        preview = services().versions.latest_preview(version)
        report = (preview or {}).get("report") or {"messages": [], "truncated": 0}
        destination = request.args.get("destination", "")[:64]
        found = [m for m in report["messages"] if not destination
                 or _concerns(m, destination)]
        page = _page_number()
        listing = Page(found[(page - 1) * REPORT_PER_PAGE:page * REPORT_PER_PAGE], page,
                       REPORT_PER_PAGE, len(found))
        return self.render("console/changes_impact.html", version=shown, preview=preview,
                           listing=listing, destination=destination,
                           truncated=report["truncated"],
                           may_read_messages=may(access.principal().roles, "message.read"))

    # ---- history, diff, rollback -------------------------------------------------

    @expose("/history")
    def history(self) -> Any:
        return self._history_page()

    def _history_page(self, errors: dict[int, str] | None = None,
                      typed: dict[int, str] | None = None, code: int = 200) -> Any:
        listing = services().versions.history(None, _page_number(), HISTORY_PER_PAGE)
        return self.render("console/changes_history.html", listing=listing,
                           events=_events(), event_words=EVENT_WORDS,
                           status_words=STATUS_WORDS, running=_running(),
                           published=_published(), errors=errors or {}, typed=typed or {},
                           may_roll_back=_holds(_APPROVER_ROLES)), code

    @expose("/<version:version>/rollback", methods=("POST",))
    def rollback(self, version: int) -> Any:
        if not _holds(_APPROVER_ROLES):
            return access.deny("changes.rollback")
        reason = _reason()
        if not reason.strip():
            return self._history_page({version: "Say why the published rules must go: "
                                                "it is kept with the rollback."}, code=400)
        try:
            done = services().versions.rollback(version, access.principal(), reason)
        except Forbidden as error:
            return _refuse(error, "changes.rollback")
        except NotFound:
            abort(404, description=f"There is no rule-set version {version}.")
        except (Conflict, Invalid) as error:
            return self._history_page({version: _said(error)}, {version: reason},
                                      409 if isinstance(error, Conflict) else 400)
        flash(f"Version {done['version']} is published: the rules of version {version} "
              "again. The engines switch to it now.", "success")
        return redirect(url_for(".history"))

    @expose("/diff")
    def diff(self) -> Any:
        before, after = _version_arg("from"), _version_arg("to")
        blocks, problem = None, None
        if before and after:
            try:
                blocks = side_by_side(services().versions.diff(before, after)["changes"])
            except NotFound as error:
                problem = f"{error.reason.capitalize()}: choose two from the lists."
        choices = services().versions.history(None, 1, 200).items
        return self.render("console/changes_diff.html", before=before, after=after,
                           blocks=blocks, changes=change_count(blocks or []),
                           problem=problem, choices=choices,
                           status_words=STATUS_WORDS), 404 if problem else 200


def _show(version: int) -> dict[str, Any]:
    try:
        return services().versions.show(version)
    except NotFound:
        abort(404, description=f"There is no rule-set version {version}.")


def _published() -> int | None:
    found = services().versions.history(lifecycle.PUBLISHED, 1, 1).items
    return found[0]["version"] if found else None


def _oldest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda v: (v["submitted_at"] or v["created_at"] or "",
                                       v["version"]))


def _can(version: dict[str, Any], gates: list[dict[str, Any]]) -> dict[str, Any]:
    """What the signed-in user may do with ``version`` now, and why not approve."""
    me = access.principal().name
    approver = _holds(_APPROVER_ROLES)
    why_not = None
    if me == version["author"]:
        why_not = "You wrote this version; another approver must review it."
    elif me in version["editors"]:
        why_not = "You changed this version; an approver who did not change it must review it."
    status = version["status"]
    return {
        "approve": approver and status == lifecycle.IN_REVIEW and why_not is None
        and all(g["passed"] for g in gates),
        "why_not_approve": why_not if approver and status == lifecycle.IN_REVIEW else None,
        "reject": approver and status in (lifecycle.IN_REVIEW, lifecycle.APPROVED),
        "publish": approver and status == lifecycle.APPROVED,
        "preview": _holds(_PREVIEW_ROLES) and status in (lifecycle.DRAFT, lifecycle.IN_REVIEW),
        "fix": _holds(lifecycle.AUTHOR_ROLES) and status == lifecycle.REJECTED,
    }


def _selection(typed: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The preview's selection from its form: the last N messages, or a window (UTC)."""
    problems: dict[str, str] = {}
    limit = typed["limit"].strip().replace(",", "")
    selection: dict[str, Any] = {"limit": DEFAULT_LIMIT}
    if limit:
        if limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
            selection["limit"] = int(limit)
        else:
            problems["limit"] = f"Give a whole number from 1 to {MAX_LIMIT:,}."
    if typed["scope"] == "window":
        for name in ("since", "until"):
            moment = _utc(typed[name])
            if moment is None:
                problems[name] = "Give a date and time (UTC), e.g. 2026-03-01 08:00."
            else:
                selection[name] = moment
        if not problems and selection["since"] >= selection["until"]:
            problems["until"] = "The end must come after the start."
    return selection, problems


def _utc(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        return None
    return moment.replace(tzinfo=None).isoformat() + "+00:00"


def _concerns(message: dict[str, Any], destination: str) -> bool:
    destinations = message.get("destinations") or {}
    return (destination in destinations.get("added", [])
            or destination in destinations.get("removed", [])
            or destination in (message.get("payloads") or {}))


def _events() -> dict[int, list[dict[str, Any]]]:
    """Every version's lifecycle events, oldest first, from the audit trail."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in services().audit.stream({"target_type": "rule_set_version"}, sort="at"):
        if (event["target_id"] or "").isdigit():
            found[int(event["target_id"])].append(event)
    return found


def _running() -> dict[str, int] | None:
    """The version each engine part of this process runs; None with no engine here."""
    versions = current_app.config.get(RUNNING_VERSIONS)
    return versions() if versions else None


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 10_000 else 1


def _version_arg(name: str) -> int | None:
    return query_number(name, VERSIONS) if request.args.get(name) else None

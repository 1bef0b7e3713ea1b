"""Users and roles, for admins: the list of users, adding a local user, a user's page
(disable or enable, a new password, the display name, the second factor, API tokens)
and the directory groups mapped to roles. Every change goes through the audited
services the command line uses too (UserStore, LdapRoleMappings); a new token is shown
once, then never. A password an admin sets here must be changed by its user at their
next sign-in. Disabling, revoking a token and resetting a second factor each ask first
on a page of their own, which says what will happen; only its Confirm makes the change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from flask import abort, flash, redirect, request, session, url_for
from flask_admin import expose

from admin.console.access import ConsoleView, deny, principal, sign_in_service
from admin.console.account import new_password_problems
from admin.services import services
from admin.store_ids import Bounds, query_number
from engine.security.ldap_role_mappings import RoleMappingError
from engine.security.permissions import may
from engine.security.role_descriptions import RoleDescription, describe_roles
from engine.security.roles import Role
from engine.security.users import (
    STATES,
    UserError,
    UserFilter,
    UserPage,
    UserView,
    check_name,
    checked_display_name,
    checked_role,
)

PER_PAGE = (10, 25, 50, 100)
PAGES = Bounds("a page number", 1_000_000)
NEW_TOKEN = "users.new_token"  # the session key that carries a new token to its one showing
COLUMNS = (("name", "Name"), ("role", "Roles"), ("source", "Signs in with"),
           ("state", "State"), ("second_factor", "Second factor"), ("tokens", "API tokens"),
           ("last_used", "Token last used"))
ROLES = tuple(role.value for role in Role)
T = TypeVar("T")


@dataclass(frozen=True)
class Listing:
    """What the users list was asked for, from its query string."""

    wanted: UserFilter
    sort: str = "name"
    descending: bool = False
    page: int = 1
    per_page: int = 25

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string of this listing with ``changes``, defaults left out."""
        listing = replace(self, **changes)
        found = {"role": listing.wanted.role, "state": listing.wanted.state,
                 "source": listing.wanted.source, "name": listing.wanted.name,
                 "sort": listing.sort if listing.sort != "name" else None,
                 "desc": "1" if listing.descending else None,
                 "page": listing.page if listing.page != 1 else None,
                 "per_page": listing.per_page if listing.per_page != 25 else None}
        return {key: value for key, value in found.items() if value}


class UsersView(ConsoleView):
    roles: frozenset[Role] = frozenset()  # admins only

    def __init__(self) -> None:
        super().__init__(name="Users", endpoint="users", url="/users")

    @expose("/")
    def index(self) -> Any:
        listing = _listing()
        if listing.per_page not in PER_PAGE:
            return self._list_page(replace(listing, per_page=25), None,
                                   f"Show {', '.join(map(str, PER_PAGE))} users a page."), 400
        try:
            found = services().users.search(listing.wanted, listing.sort, listing.descending,
                                            listing.page, listing.per_page)
        except UserError as exc:
            return self._list_page(listing, None, str(exc)), 400
        return self._list_page(listing, found, None)

    def _list_page(self, listing: Listing, found: UserPage | None, problem: str | None) -> Any:
        return self.render("console/users.html", listing=listing, found=found,
                           problem=problem, columns=COLUMNS, roles=ROLES,
                           states=STATES, per_page_choices=PER_PAGE,
                           break_glass=_break_glass(),
                           list_url=lambda **changes: url_for(".index",
                                                              **listing.args(**changes)))

    @expose("/add", methods=("GET", "POST"))
    def add(self) -> Any:
        _may_manage()
        # No role chosen for them: whoever adds a user picks one, reading what each may do.
        form = {"name": "", "role": "", "display_name": "", "token": ""}
        errors: dict[str, str] = {}
        if request.method == "POST":
            # Cut only far past the longest allowed, so a long one is still refused.
            form = {"name": request.form.get("name", "").strip()[:256],
                    "role": request.form.get("role", ""),
                    "display_name": request.form.get("display_name", "")[:1000],
                    "token": "yes" if request.form.get("token") == "yes" else ""}
            password = request.form.get("password", "")
            errors = _new_user_problems(form["name"], form["role"], password,
                                        request.form.get("password_again", ""),
                                        form["display_name"])
            if not errors:
                try:
                    token = services().users.add(
                        form["name"], form["role"], _actor(), password or None,
                        display_name=form["display_name"], with_token=bool(form["token"]),
                        change_required=True)
                except UserError as exc:
                    errors["name"] = str(exc)
                else:
                    if token is not None:
                        session[NEW_TOKEN] = {"user": form["name"], "token": token}
                    flash(f"Added {form['name']} ({form['role']})."
                          + (" They will choose their own password at their next sign-in."
                             if password else ""), "success")
                    return redirect(url_for(".user", username=form["name"]))
        return self.render("console/user_add.html", form=form, errors=errors,
                           roles=_described_roles(),
                           directory=sign_in_service().directory is not None,
                           break_glass=_break_glass()), 400 if errors else 200

    @expose("/user/<username>")
    def user(self, username: str) -> Any:
        return self._user_page(username, {})

    def _user_page(self, name: str, errors: dict[str, str]) -> Any:
        users = services().users
        try:
            account = users.user(name)
        except UserError:
            abort(404, description=f"There is no user {name}. Find them in the list of users.")
        # Taken from the session whichever page comes next: never kept for later.
        shown = session.pop(NEW_TOKEN, None)
        new_token = shown["token"] if shown and shown["user"] == name else None
        return self.render("console/user.html", account=account, tokens=users.tokens(name),
                           new_token=new_token, errors=errors, me=_actor(),
                           display_name=request.form.get("display_name", account.display_name)
                           if "display_name" in errors else account.display_name,
                           directory=sign_in_service().directory is not None,
                           roles=_described_roles(),
                           break_glass=_break_glass()), 400 if errors else 200

    @expose("/user/<username>/disable", methods=("POST",))
    def disable(self, username: str) -> Any:
        _may_manage()
        if not _confirmed():
            account = self._account(username)
            return self._confirm(
                account, f"Disable {account.shown_name}?",
                f"{_they(account)} signed out everywhere at once, "
                + (f"{_tokens(count)} of theirs {'stops' if count == 1 else 'stop'} working "
                   "for good, and " if (count := account.active_tokens) else "")
                + "they cannot sign in until an admin enables them again.",
                f"Disable {account.name}", url_for(".disable", username=username))
        return _change(username, lambda: services().users.disable(username, _actor()),
                       lambda revoked: f"{username} is disabled: their sessions have ended and "
                                       f"{_tokens(revoked)} revoked.")

    @expose("/user/<username>/enable", methods=("POST",))
    def enable(self, username: str) -> Any:
        _may_manage()
        return _change(username, lambda: services().users.enable(username, _actor()),
                       lambda _: f"{username} is enabled. Their old tokens stay revoked: issue a "
                                 "new one if they need it.")

    @expose("/user/<username>/password", methods=("POST",))
    def set_password(self, username: str) -> Any:
        _may_manage()
        password = request.form.get("password", "")
        problem = _password_problem(password, request.form.get("password_again", ""),
                                    required=True)
        if problem:
            return self._user_page(username, problem)
        try:
            services().users.set_password(username, password, _actor(), change_required=True)
        except UserError as exc:  # a directory user's, or a user gone
            flash(str(exc), "error")
            return redirect(url_for(".user", username=username))
        flash(f"{username} has a new password; their console sessions have ended. Give it to "
              "them in person or by another safe way. They will choose their own at their "
              "next sign-in.", "success")
        return redirect(url_for(".user", username=username))

    @expose("/user/<username>/display-name", methods=("POST",))
    def set_display_name(self, username: str) -> Any:
        _may_manage()
        wanted = request.form.get("display_name", "")[:1000]
        try:
            shown = services().users.set_display_name(username, wanted, _actor())
        except UserError as exc:
            if "display name" not in exc.reason:
                flash(str(exc), "error")  # a user gone
                return redirect(url_for(".index"))
            return self._user_page(username, {"display_name": str(exc)})
        flash(f"{username} is shown as {shown}." if shown else
              f"{username} has no display name: their user name is shown.", "success")
        return redirect(url_for(".user", username=username))

    @expose("/user/<username>/role", methods=("POST",))
    def set_role(self, username: str) -> Any:
        _may_manage()
        wanted = request.form.get("role", "")[:64]
        try:
            changed = services().users.set_role(username, wanted, _actor())
        except UserError as exc:
            if "role" not in exc.reason:
                flash(str(exc), "error")  # a directory user's, or a user gone
                return redirect(url_for(".user", username=username))
            return self._user_page(username, {"role": str(exc)})
        flash(f"{username} is now {wanted}: their console sessions have ended, so the new "
              "role holds from their next page." if changed
              else f"{username} already has the role {wanted}.", "success")
        return redirect(url_for(".user", username=username))

    @expose("/user/<username>/second-factor/reset", methods=("POST",))
    def reset_second_factor(self, username: str) -> Any:
        _may_manage()
        if not _confirmed():
            account = self._account(username)
            return self._confirm(
                account, f"Reset {account.shown_name}'s second factor?",
                f"{_they(account)} signed out everywhere at once. At their next sign-in "
                "their password alone lets them in, and they set up a new authenticator "
                "from their account page.",
                "Reset the second factor",
                url_for(".reset_second_factor", username=username))
        return _change(username, lambda: services().users.reset_second_factor(username, _actor()),
                       lambda _: f"{username}'s second factor is removed; their sessions have "
                                 "ended. They can set up a new one from their account page.")

    @expose("/user/<username>/tokens", methods=("POST",))
    def issue_token(self, username: str) -> Any:
        _may_manage()
        try:
            token = services().users.issue_token(username, _actor())
        except UserError as exc:
            flash(str(exc), "error")
        else:
            session[NEW_TOKEN] = {"user": username, "token": token}
        return redirect(url_for(".user", username=username))

    @expose("/user/<username>/tokens/<id:token_id>/revoke", methods=("POST",))
    def revoke_token(self, username: str, token_id: int) -> Any:
        _may_manage()
        if not _confirmed():
            account = self._account(username)
            return self._confirm(
                account, f"Revoke token #{token_id} of {account.shown_name}?",
                "Every script or system that uses this token is refused from now on. A "
                "revoked token cannot be used again; issue a new one if it is still needed.",
                f"Revoke token #{token_id}",
                url_for(".revoke_token", username=username, token_id=token_id))
        return _change(username,
                       lambda: services().users.revoke_token(token_id, _actor(), owner=username),
                       lambda _: f"Token #{token_id} of {username} is revoked.")

    @expose("/ldap-groups", methods=("GET", "POST"))
    def ldap_groups(self) -> Any:
        form = {"group": "", "role": Role.OPERATOR.value}
        errors: dict[str, str] = {}
        if request.method == "POST":
            _may_manage()
            form = {"group": request.form.get("group", "")[:1000],
                    "role": request.form.get("role", "")}
            try:
                checked_role(form["role"])
                added = services().role_mappings.add(form["group"], form["role"], _actor())
            except UserError as exc:
                errors["role"] = str(exc)
            except RoleMappingError as exc:
                errors["group"] = str(exc)
            else:
                flash(f"Members of {added.group} now get the role {added.role} when they "
                      "next sign in.", "success")
                return redirect(url_for(".ldap_groups"))
        directory = sign_in_service().directory
        return self.render("console/ldap_groups.html", mappings=services().role_mappings.list(),
                           settings=directory.settings if directory else None, form=form,
                           errors=errors, roles=_described_roles(),
                           break_glass=sign_in_service().break_glass), 400 if errors else 200

    @expose("/ldap-groups/<id:mapping_id>/remove", methods=("POST",))
    def remove_ldap_group(self, mapping_id: int) -> Any:
        _may_manage()
        try:
            removed = services().role_mappings.remove(mapping_id, _actor())
        except RoleMappingError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Members of {removed.group} no longer get the role {removed.role} from "
                  "this mapping, from their next sign-in.", "success")
        return redirect(url_for(".ldap_groups"))


    def _account(self, name: str) -> UserView:
        try:
            return services().users.user(name)
        except UserError:
            abort(404, description=f"There is no user {name}. Find them in the list of users.")

    def _confirm(self, account: UserView, question: str, outcome: str, action: str,
                 target: str) -> Any:
        """The page that asks before a change that cannot be taken back at once: it says
        what will happen; its Confirm posts again with confirm=yes, Cancel goes back."""
        return self.render("console/user_confirm.html", account=account, question=question,
                           outcome=outcome, action=action, target=target)


def _confirmed() -> bool:
    """Only the confirm page's own button sends confirm=yes."""
    return request.form.get("confirm") == "yes"


def _they(account: UserView) -> str:
    return "They are" if account.display_name else f"{account.name} is"


def _described_roles() -> list[RoleDescription]:
    """Each role with what it may do and the task queues that name it, for a chooser."""
    described = describe_roles(services().tasks.task_queues())
    return [described[role] for role in Role]


def _tokens(count: int) -> str:
    """A count of API tokens in words: "no API token", "1 API token", "3 API tokens"."""
    return "no API token" if count == 0 else f"{count} API token{'' if count == 1 else 's'}"


def _may_manage() -> None:
    """Refuse (403, audited) anyone who may not manage users: every change checks, not
    only the view."""
    if not may(principal().roles, "user.manage"):
        deny("user.manage")


def _actor() -> str:
    return principal().name


def _break_glass() -> str | None:
    """The local admin who may sign in while the directory is configured, if any."""
    service = sign_in_service()
    return service.break_glass if service.directory is not None else None


def _change(name: str, change: Callable[[], T], done: Callable[[T], str]) -> Any:
    """Make a change to a user; say what happened, or why it was refused, on their page."""
    try:
        result = change()
    except UserError as exc:
        flash(str(exc), "error")
    else:
        flash(done(result), "success")
    return redirect(url_for(".user", username=name))


def _listing() -> Listing:
    args = request.args
    wanted = UserFilter(role=args.get("role") or None, state=args.get("state") or None,
                        source=args.get("source") or None,
                        name=(args.get("name") or "").strip()[:64] or None)
    return Listing(wanted, args.get("sort", "name")[:32], args.get("desc") == "1",
                   query_number("page", PAGES) or 1, query_number("per_page", PAGES) or 25)


def _new_user_problems(name: str, role: str, password: str, again: str,
                       display_name: str) -> dict[str, str]:
    """What is wrong with a new user's form, by field."""
    errors: dict[str, str] = {}
    checks: tuple[tuple[str, Callable[[], object]], ...] = (
        ("name", lambda: check_name(name)), ("role", lambda: checked_role(role)),
        ("display_name", lambda: checked_display_name(display_name)))
    for field, check in checks:
        try:
            check()
        except UserError as exc:
            errors[field] = str(exc)
    return {**errors, **_password_problem(password, again, required=False)}


def _password_problem(password: str, again: str, required: bool) -> dict[str, str]:
    if not password and not again and not required:
        return {}
    return new_password_problems(password, again)

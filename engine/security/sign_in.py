"""Signing in to the console: a local password (the embedded default) or the LDAP
directory, rate limits per user name and per address, the optional TOTP second factor,
and an audit event for every attempt, whichever way it ends.

Once a directory is configured, local passwords are refused, except the one
break-glass admin named in configuration, whose every sign-in is audited as such. A
directory that cannot be reached refuses everyone it would vouch for, with words that
say so: there is no fallback that lets anyone in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.security import passwords, second_factor
from engine.security.audit import AuditLog, Clock, now_utc
from engine.security.console_sessions import (
    CHANGE_PASSWORD,
    ENROL,
    SECOND_FACTOR,
    SIGNED_IN,
    ConsoleSessions,
    ConsoleUser,
)
from engine.security.group_roles import roles_for_groups
from engine.security.ldap_directory import Directory, DirectoryRefused, DirectoryUnavailable
from engine.security.roles import Role
from engine.store.models import LdapRoleMapping, SignInAttempt, User

# Which of several mapped roles an LDAP user's ``users.role`` shows (assignee checks
# and listings read that column); the session and tokens carry them all.
ROLE_PRECEDENCE = (Role.ADMIN, Role.OPERATOR, Role.APPROVER, Role.ANALYST,
                   Role.COMPLIANCE, Role.CLINICIAN, Role.REGISTRAR)
# Names kept in the audit trail as typed; anything else (a password typed into the name
# field, say) is not.
_AUDITABLE_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")

NOT_RIGHT = "The user name or password is not right."
THROTTLED = ("Too many failed sign-ins for this user name or from this address. "
             "Wait {minutes} minutes, or ask an admin to check the audit log.")
DIRECTORY_DOWN = ("The directory (LDAP) cannot be reached, so directory accounts cannot "
                  "sign in now. Try again in a few minutes; if it goes on, tell the "
                  "technical owner of sign-in.")
NO_ROLE = ("Your directory account is not in any group that gives a Switchboard role. "
           "Ask an admin to map your group to a role.")


@dataclass(frozen=True)
class SignInLimits:
    failures_per_user: int = 5
    failures_per_address: int = 30
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInOutcome:
    """A started session (its token, and whether the second factor is still to come),
    or the words to show on the sign-in page."""

    token: str | None = None
    stage: str | None = None
    refusal: str | None = None


class SignIn:
    def __init__(self, engine: Engine, sessions: ConsoleSessions,
                 directory: Directory | None = None, break_glass: str | None = None,
                 limits: SignInLimits | None = None, admins_need_second_factor: bool = False,
                 clock: Clock = now_utc, totp_clock: Callable[[], float] | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._audit = AuditLog(engine, clock)
        self.console_sessions = sessions
        self.directory = directory
        self.break_glass = break_glass
        self.limits = limits or SignInLimits()
        self.admins_need_second_factor = admins_need_second_factor
        self._clock = clock
        self._totp_clock = totp_clock

    def password(self, username: str, password: str, address: str) -> SignInOutcome:
        name = username.strip().lower()
        address = address[:64]
        if self._throttled(name, address):
            self._attempt(name, address, False, "throttled")
            return SignInOutcome(refusal=THROTTLED.format(
                minutes=int(self.limits.window.total_seconds() // 60)))
        if self.directory is not None and name != self.break_glass:
            return self._directory_sign_in(name, password, address)
        with self._sessions() as session:
            user = session.scalar(select(User).where(User.name == name, User.source == "local"))
            stored = user.password_hash if user is not None else None
        if not passwords.verify(stored, password) or user is None or user.disabled:
            reason = "disabled" if user is not None and user.disabled else "not right"
            self._attempt(name, address, False, reason)
            return SignInOutcome(refusal=NOT_RIGHT)
        if stored is not None and passwords.needs_rehash(stored):
            self._rehash(user.id, password)
        break_glass = self.directory is not None
        return self._start(user, frozenset({Role(user.role)}),
                           "break_glass" if break_glass else "local", address)

    def second_factor(self, console_user: ConsoleUser, code: str, address: str) -> bool:
        """Finish a sign-in waiting for its TOTP code; False (audited) when the code is
        not right or was used already."""
        with self._sessions.begin() as session:
            user = session.scalar(select(User).where(User.name == console_user.principal.name)
                                  .with_for_update())
            step = None
            if user is not None and user.totp_secret:
                step = second_factor.accepted_step(user.totp_secret, code, user.totp_last_step,
                                                   self._now_seconds())
            if user is None or step is None:
                self._record_attempt(session, console_user.principal.name, address, False,
                                     "second factor not right")
                return False
            user.totp_last_step = step
            self._record_attempt(session, user.name, address, True, "second factor")
            after = _after_second_factor(user)
        self.console_sessions.advance(console_user.session_id, after)
        return True

    def enrol(self, console_user: ConsoleUser, secret: str, code: str, address: str) -> bool:
        """Keep ``secret`` as the user's second factor once ``code`` proves their
        authenticator holds it; the session is then signed in."""
        step = second_factor.accepted_step(secret, code, None, self._now_seconds())
        if step is None:
            return False
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = session.scalar(select(User).where(User.name == console_user.principal.name))
            if user is None:
                return False
            user.totp_secret, user.totp_last_step = secret, step
            self._audit.record(session, user.name, "user.second_factor.enrol", "user",
                               user.name, {"address": address})
            after = _after_second_factor(user)
        self.console_sessions.advance(console_user.session_id, after)
        return True

    def password_chosen(self, console_user: ConsoleUser) -> None:
        """The user has chosen their own password (UserStore.change_own_password): the
        sign-in that waited for it is done."""
        if console_user.stage == CHANGE_PASSWORD:
            self.console_sessions.advance(console_user.session_id, SIGNED_IN)

    def sign_out(self, token: str | None, console_user: ConsoleUser | None) -> None:
        self.console_sessions.end(token)
        if console_user is not None:
            with self._sessions.begin() as session:
                self._audit.record(session, console_user.principal.name, "sign_out", "user",
                                   console_user.principal.name, None)

    def roles_of(self, groups: frozenset[str]) -> frozenset[Role]:
        """The roles directory ``groups`` give: by the configuration's mapping, and by
        the mappings admins made in the console."""
        assert self.directory is not None
        roles = set(roles_for_groups(groups, self.directory.settings.group_roles))
        with self._sessions() as session:
            for row in session.scalars(select(LdapRoleMapping)):
                roles |= roles_for_groups(groups, {row.group_name: Role(row.role)})
        return frozenset(roles)

    def _directory_sign_in(self, name: str, password: str, address: str) -> SignInOutcome:
        assert self.directory is not None
        if not password:
            self._attempt(name, address, False, "not right")
            return SignInOutcome(refusal=NOT_RIGHT)
        try:
            found = self.directory.authenticate(name, password)
        except DirectoryUnavailable:
            self._attempt(name, address, False, "directory unreachable")
            return SignInOutcome(refusal=DIRECTORY_DOWN)
        except DirectoryRefused as refused:
            self._attempt(name, address, False, f"directory: {refused.why}")
            return SignInOutcome(refusal=NOT_RIGHT)
        name = found.username.lower()
        roles = self.roles_of(found.groups)
        if not roles:
            self._attempt(name, address, False, "no mapped group")
            return SignInOutcome(refusal=NO_ROLE)
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = session.scalar(select(User).where(User.name == name))
            if user is not None and user.source != "ldap":
                self._record_attempt(session, name, address, False,
                                     "a local user has this name")
                return SignInOutcome(refusal=NOT_RIGHT)
            primary = next(r for r in ROLE_PRECEDENCE if r in roles)
            extra = sorted(r.value for r in roles - {primary}) or None
            if user is None:
                user = User(name=name, role=primary.value, disabled=False, source="ldap",
                            created_at=self._clock(), extra_roles=extra)
                session.add(user)
                session.flush()
                self._audit.record(session, "ldap", "user.add", "user", name,
                                   {"role": primary.value, "extra_roles": extra,
                                    "source": "ldap"})
            elif user.disabled:
                self._record_attempt(session, name, address, False, "disabled")
                return SignInOutcome(refusal=NOT_RIGHT)
            elif (user.role, user.extra_roles) != (primary.value, extra):
                self._audit.record(session, "ldap", "user.roles", "user", name,
                                   {"role": primary.value, "extra_roles": extra,
                                    "was": [user.role, user.extra_roles]})
                user.role, user.extra_roles = primary.value, extra
        return self._start(user, roles, "ldap", address)

    def _start(self, user: User, roles: frozenset[Role], source: str,
               address: str) -> SignInOutcome:
        if user.totp_secret:
            stage = SECOND_FACTOR
        elif Role.ADMIN in roles and self.admins_need_second_factor:
            stage = ENROL
        else:
            stage = _after_second_factor(user)
        token = self.console_sessions.start(user.id, roles, source, stage, address)
        with self._sessions.begin() as session:
            self._record_attempt(session, user.name, address, True, source,
                                 break_glass=source == "break_glass", stage=stage)
        return SignInOutcome(token=token, stage=stage)

    def _throttled(self, name: str, address: str) -> bool:
        since = self._clock() - self.limits.window
        failed = (select(func.count()).select_from(SignInAttempt)
                  .where(SignInAttempt.at >= since, SignInAttempt.succeeded.is_(False)))
        with self._sessions() as session:
            by_user = session.scalar(failed.where(SignInAttempt.username == name[:64])) or 0
            by_address = session.scalar(failed.where(SignInAttempt.address == address)) or 0
        return (by_user >= self.limits.failures_per_user
                or by_address >= self.limits.failures_per_address)

    def _attempt(self, name: str, address: str, succeeded: bool, reason: str) -> None:
        with self._sessions.begin() as session:
            self._record_attempt(session, name, address, succeeded, reason)

    def _record_attempt(self, session: Session, name: str, address: str, succeeded: bool,
                        reason: str, *, break_glass: bool = False,
                        stage: str | None = None) -> None:
        auditable = name if _AUDITABLE_NAME.fullmatch(name) else None
        session.add(SignInAttempt(at=self._clock(), username=(auditable or "?")[:64],
                                  address=address, succeeded=succeeded))
        detail: dict[str, Any] = {"address": address, "reason": reason}
        if stage is not None:
            detail["stage"] = stage
        if succeeded:
            action = "sign_in.break_glass" if break_glass else "sign_in.success"
            self._audit.record(session, name, action, "user", name, detail)
        else:
            self._audit.record(session, "anonymous", "sign_in.failure", "user", auditable,
                               detail)

    def _rehash(self, user_id: int, password: str) -> None:
        with self._sessions.begin() as session:
            user = session.get(User, user_id)
            if user is not None:
                user.password_hash = passwords.rehash(password)

    def _now_seconds(self) -> float:
        return self._totp_clock() if self._totp_clock else self._clock().timestamp()


def _after_second_factor(user: User) -> str:
    """The stage after the password and any second factor: a local user whose password
    an admin set chooses their own first."""
    if user.source == "local" and user.password_change_required:
        return CHANGE_PASSWORD
    return SIGNED_IN


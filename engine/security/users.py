"""Users and their API tokens, kept in the store: the first identity source.

A token is shown once, when it is made, and stored only as its hash. Every change is
written to the audit trail in the same transaction, so a change without its audit
event cannot be committed.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, String, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import SwitchboardError
from engine.security import passwords
from engine.security.audit import AuditLog, Clock, now_utc
from engine.security.identity import Principal
from engine.security.roles import Role
from engine.security.token_use import TokenUse
from engine.security.tokens import TOKEN_PREFIX, hash_token, new_token
from engine.store.database import reader
from engine.store.models import ApiToken, ConsoleSession, User

SOURCE = "database"
THEMES = ("light", "dark")
NAME_PATTERN = re.compile(r"[a-z0-9._-]{2,64}")
DISPLAY_NAME_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# last_used_at is for people ("is this token still in use?"), not for forensics: a
# minute's resolution spares the database a write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
STATES = ("active", "disabled")
SOURCES = ("local", "ldap")
SORTS = ("name", "role", "source", "state", "second_factor", "tokens", "last_used", "created")


class UserError(SwitchboardError):
    """A user change that cannot be made as asked: a bad name or role, a duplicate or
    unknown user, or a user in the wrong state."""


@dataclass(frozen=True)
class UserView:
    """What may be shown about a user: never a token or its hash. ``last_used_at`` is
    the latest written use of any of their tokens: uses are written in batches, at
    most once per LAST_USED_RESOLUTION per token, so it can trail the real last use by
    up to twice that (two minutes)."""

    name: str
    role: Role
    disabled: bool
    created_at: datetime
    active_tokens: int
    last_used_at: datetime | None
    source: str = "local"
    extra_roles: tuple[Role, ...] = ()
    has_password: bool = False
    has_second_factor: bool = False
    display_name: str | None = None
    password_change_required: bool = False

    @property
    def shown_name(self) -> str:
        """What people see: the display name where one is set, else the login name."""
        return self.display_name or self.name


@dataclass(frozen=True)
class UserFilter:
    """Which users a listing shows: every one given must hold. ``role`` matches any of a
    user's roles; ``name`` is a part of the name."""

    role: str | None = None
    state: str | None = None
    source: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class UserPage:
    """One page of users, and how many match the filter."""

    items: builtins.list[UserView]
    page: int
    per_page: int
    total: int


@dataclass(frozen=True)
class TokenView:
    """An API token as it may be shown: its number and dates, never the token."""

    id: int
    user: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserStore:
    """Users and tokens in the database; an :class:`~engine.security.identity.IdentitySource`."""

    def __init__(self, engine: Engine, clock: Clock = now_utc) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(reader(engine))
        self._audit = AuditLog(engine, clock)
        self._clock = clock
        self._uses = TokenUse(engine, LAST_USED_RESOLUTION)

    def add(self, name: str, role: str, actor: str, password: str | None = None, *,
            display_name: str | None = None, with_token: bool = True,
            change_required: bool = False) -> str | None:
        """Create a local user with, if given, a console password and a display name,
        and unless ``with_token`` is False a first API token; return the token, which
        is not kept. ``change_required``: with a password, they must choose their own
        at their next sign-in (an admin set this one, and knows it)."""
        checked = checked_role(role)
        check_name(name)
        shown = checked_display_name(display_name)
        hashed = None if password is None else _hashed(password)
        token = new_token() if with_token else None
        try:
            with self._sessions.begin() as session:
                self._audit.lock(session)
                if session.scalar(select(User.id).where(User.name == name)) is not None:
                    raise _duplicate(name)
                user = User(name=name, role=checked.value, disabled=False,
                            created_at=self._clock(), password_hash=hashed,
                            display_name=shown,
                            password_change_required=change_required and hashed is not None)
                session.add(user)
                session.flush()
                detail: dict[str, Any] = {"role": checked.value}
                if token is not None:
                    detail["token_id"] = self._store_token(session, user, token)
                if hashed is not None:
                    detail["password"] = True
                if user.password_change_required:
                    detail["change_required"] = True
                if shown is not None:
                    detail["display_name"] = shown
                self._audit.record(session, actor, "user.add", "user", name, detail)
        except IntegrityError:
            raise _duplicate(name) from None
        return token

    def list(self) -> builtins.list[UserView]:
        """Every user, by name, with how many live tokens they hold."""
        with self._reads() as session:
            rows = session.execute(_summaries().order_by(User.name))
            return [_user_view(user, count, last) for user, count, last in rows]

    def user(self, name: str) -> UserView:
        """One user, as :meth:`list` shows them."""
        with self._reads() as session:
            row = session.execute(_summaries().where(User.name == name)).one_or_none()
            if row is None:
                raise _unknown(name)
            user, count, last = row
            return _user_view(user, count, last)

    def search(self, wanted: UserFilter, sort: str = "name", descending: bool = False,
               page: int = 1, per_page: int = 50) -> UserPage:
        """A page of the users ``wanted`` names, sorted by one of SORTS (then by name);
        a user never seen to use a token sorts after every one who was."""
        if page < 1 or per_page < 1:
            raise UserError("page and per_page must be whole numbers from 1")
        if sort not in SORTS:
            raise UserError(f"cannot sort users by {sort!r}",
                            hint=f"Sort by one of: {', '.join(SORTS)}")
        query = _filtered(_summaries(), wanted)
        key = _sort_key(sort)
        order = [key.desc() if descending else key.asc()]
        if sort == "last_used":
            order.insert(0, key.is_(None))
        with self._reads() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(*order, User.name)
                                   .limit(per_page).offset((page - 1) * per_page))
            return UserPage([_user_view(user, count, last) for user, count, last in rows],
                            page, per_page, total)

    def disable(self, name: str, actor: str) -> int:
        """Disable a user and revoke their tokens; return how many were revoked. Nobody
        disables themselves: an admin could lock the last admin out."""
        if name == actor:
            raise UserError("you cannot disable yourself",
                            hint="Ask another admin, or use `switchboard users disable`")
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            if user.disabled:
                raise UserError(f"user {name!r} is already disabled")
            user.disabled = True
            revoked_at = self._clock()
            live = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                          ApiToken.revoked_at.is_(None)))
            tokens = live.all()
            for row in tokens:
                row.revoked_at = revoked_at
            _end_sessions(session, user.id, revoked_at)
            self._audit.record(session, actor, "user.disable", "user", name,
                               {"tokens_revoked": len(tokens)})
            return len(tokens)

    def enable(self, name: str, actor: str) -> None:
        """Let a disabled user sign in again; their old tokens stay revoked."""
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            if not user.disabled:
                raise UserError(f"user {name!r} is not disabled")
            user.disabled = False
            self._audit.record(session, actor, "user.enable", "user", name, None)

    def set_password(self, name: str, password: str, actor: str,
                     change_required: bool = False) -> None:
        """Set a local user's console password (argon2id); their sessions end. With
        ``change_required`` (an admin set it for them in the console) they must choose
        their own at their next sign-in; without (the user at the command line, or an
        operator there) any such demand is lifted."""
        hashed = _hashed(password)
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _local(session, name, "Change the password in the directory")
            user.password_hash = hashed
            user.password_change_required = change_required
            _end_sessions(session, user.id, self._clock())
            self._audit.record(session, actor, "user.password", "user", name,
                               {"change_required": True} if change_required else None)

    def change_own_password(self, name: str, new: str, current: str | None = None,
                            keep_session: int | None = None) -> None:
        """A local user choosing their own password: ``current`` must be right, or be
        None while a change is required of them (they typed it to sign in a moment
        ago). The new one must differ from the old, which someone else may know. Their
        other console sessions end; ``keep_session`` (the one they use) goes on."""
        try:
            passwords.check_new(new)
        except passwords.PasswordRefused as exc:
            raise UserError(exc.reason, hint=exc.hint) from None
        with self._sessions() as session:
            user = _existing(session, name)
            stored, required, source = (user.password_hash, user.password_change_required,
                                        user.source)
        if source != "local":
            raise UserError("your password is kept by the directory (LDAP)",
                            hint="Change it in the directory, as for your other systems")
        if current is None and not required:
            raise UserError("type your current password")
        if current is not None and not passwords.verify(stored, current):
            raise UserError("the current password is not right")
        if passwords.verify(stored, new):
            raise UserError("the new password is the same as the old one",
                            hint="Choose a password only you know")
        hashed = _hashed(new)
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            user.password_hash, user.password_change_required = hashed, False
            ended = update(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                 ConsoleSession.ended_at.is_(None))
            if keep_session is not None:
                ended = ended.where(ConsoleSession.id != keep_session)
            session.execute(ended.values(ended_at=self._clock()))
            self._audit.record(session, name, "user.password.change", "user", name,
                               {"was_required": required})

    def set_display_name(self, name: str, display_name: str | None, actor: str) -> str | None:
        """Set (or with an empty one, clear) how a user is shown; return what is kept."""
        shown = checked_display_name(display_name)
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            if user.display_name == shown:
                return shown
            self._audit.record(session, actor, "user.display_name", "user", name,
                               {"display_name": shown, "was": user.display_name})
            user.display_name = shown
        return shown

    def set_role(self, name: str, role: str, actor: str) -> bool:
        """Give a local user another role; whether it changed. Their console sessions end,
        so the new menus and permissions hold from their next page; their API tokens act
        with the role as it is now. A directory user's roles come from their groups."""
        checked = checked_role(role)
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _local(session, name, "Their role comes from their directory groups: "
                                         "map those, or move them to another group")
            if user.role == checked.value:
                return False
            self._audit.record(session, actor, "user.role", "user", name,
                               {"role": checked.value, "was": user.role})
            user.role = checked.value
            _end_sessions(session, user.id, self._clock())
        return True

    def reset_second_factor(self, name: str, actor: str) -> None:
        """Forget a user's TOTP secret: they sign in with their password alone (and an
        admin, where a second factor is required, enrols a new one at once)."""
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            if user.totp_secret is None:
                raise UserError(f"user {name!r} has no second factor")
            user.totp_secret, user.totp_last_step = None, None
            _end_sessions(session, user.id, self._clock())
            self._audit.record(session, actor, "user.second_factor.reset", "user", name, None)

    def set_theme(self, name: str, theme: str) -> None:
        """A user's own choice of light or dark console; not audited, as it changes
        nothing anyone else sees."""
        if theme not in THEMES:
            raise UserError(f"unknown theme {theme!r}", hint="Choose light or dark")
        with self._sessions.begin() as session:
            _existing(session, name).theme = theme

    def tokens(self, name: str | None = None) -> builtins.list[TokenView]:
        """API tokens, newest first: one user's, or everyone's."""
        query = (select(ApiToken, User.name).join(User, ApiToken.user_id == User.id)
                 .order_by(ApiToken.id.desc()))
        if name is not None:
            query = query.where(User.name == name)
        with self._sessions() as session:
            return [TokenView(t.id, user, t.created_at, t.last_used_at, t.revoked_at)
                    for t, user in session.execute(query)]

    def revoke_token(self, token_id: int, actor: str, owner: str | None = None) -> None:
        """Revoke one token; with ``owner``, only if it is theirs (users revoke their
        own, admins anyone's)."""
        with self._sessions.begin() as session:
            self._audit.lock(session)
            found = session.execute(select(ApiToken, User.name)
                                    .join(User, ApiToken.user_id == User.id)
                                    .where(ApiToken.id == token_id)).one_or_none()
            if found is None or (owner is not None and found[1] != owner):
                raise UserError(f"no token {token_id}" + (f" of {owner}" if owner else ""))
            token, user = found
            if token.revoked_at is not None:
                raise UserError(f"token {token_id} is already revoked")
            token.revoked_at = self._clock()
            self._audit.record(session, actor, "token.revoke", "user", user,
                               {"token_id": token_id})

    def issue_token(self, name: str, actor: str) -> str:
        """Give an enabled user another token; return it, as it is not kept."""
        token = new_token()
        with self._sessions.begin() as session:
            self._audit.lock(session)
            user = _existing(session, name)
            if user.disabled:
                raise UserError(f"user {name!r} is disabled",
                                hint="A disabled user cannot be given a token")
            token_id = self._store_token(session, user, token)
            self._audit.record(session, actor, "token.issue", "user", name,
                               {"token_id": token_id})
        return token

    def authenticate_token(self, token: str) -> Principal | None:
        """The principal a token belongs to; None if unknown, revoked or disabled. Only
        reads: the use is remembered and written later (see :meth:`flush`)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        query = (select(ApiToken.id, ApiToken.last_used_at, ApiToken.revoked_at, User.name,
                        User.role, User.extra_roles, User.disabled)
                 .join(User, ApiToken.user_id == User.id)
                 .where(ApiToken.token_hash == hash_token(token)))
        with self._reads() as session:
            row = session.execute(query).one_or_none()
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        now = self._clock()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            self._uses.note(row.id, now)
        return Principal(row.name, roles_of(row.role, row.extra_roles), SOURCE)

    def flush(self) -> None:
        """Write the token uses remembered since the last flush (a background flusher
        does so once per LAST_USED_RESOLUTION)."""
        self._uses.flush()

    def close(self) -> None:
        """Stop the background flusher, writing what it has not written yet."""
        self._uses.close()

    def principal(self, name: str) -> Principal | None:
        """The principal of an enabled user, by name: for the command line, whose caller
        holds the store's own credentials and names who acts, for the role check and
        the audit trail."""
        with self._sessions() as session:
            user = session.scalar(select(User).where(User.name == name))
            if user is None or user.disabled:
                return None
            return Principal(user.name, roles_of(user.role, user.extra_roles), SOURCE)

    def _store_token(self, session: Session, user: User, token: str) -> int:
        row = ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=self._clock())
        session.add(row)
        session.flush()
        return row.id


def _summaries() -> Select[User, int, datetime | None]:
    """Users with how many live tokens they hold and when one was last used."""
    return (select(User, _ACTIVE_TOKENS, _LAST_USED)
            .outerjoin(ApiToken, ApiToken.user_id == User.id).group_by(User.id))


_ACTIVE_TOKENS = func.count(ApiToken.id).filter(ApiToken.revoked_at.is_(None)) \
    .label("active_tokens")
_LAST_USED = func.max(ApiToken.last_used_at).label("last_used")


def _user_view(user: User, active_tokens: int, last_used: datetime | None) -> UserView:
    return UserView(user.name, Role(user.role), user.disabled, user.created_at,
                    active_tokens, last_used, user.source,
                    tuple(Role(r) for r in user.extra_roles or ()),
                    user.password_hash is not None, user.totp_secret is not None,
                    user.display_name, user.password_change_required)


def _filtered(query: Select[User, int, datetime | None],
              wanted: UserFilter) -> Select[User, int, datetime | None]:
    if wanted.role:
        role = checked_role(wanted.role)
        # extra_roles is a JSON list of role names, which hold no LIKE wildcards.
        query = query.where(or_(User.role == role.value,
                                cast(User.extra_roles, String).like(f'%"{role.value}"%')))
    if wanted.state:
        if wanted.state not in STATES:
            raise UserError(f"unknown state {wanted.state!r}", hint="Choose active or disabled")
        query = query.where(User.disabled.is_(wanted.state == "disabled"))
    if wanted.source:
        if wanted.source not in SOURCES:
            raise UserError(f"unknown source {wanted.source!r}", hint="Choose local or ldap")
        query = query.where(User.source == wanted.source)
    if wanted.name:
        query = query.where(User.name.contains(wanted.name.strip().lower(), autoescape=True))
    return query


def _sort_key(sort: str) -> Any:
    return {"name": User.name, "role": User.role, "source": User.source,
            "state": User.disabled, "second_factor": User.totp_secret.is_not(None),
            "tokens": _ACTIVE_TOKENS, "last_used": _LAST_USED,
            "created": User.created_at}[sort]


def _hashed(password: str) -> str:
    try:
        return passwords.hash_password(password)
    except passwords.PasswordRefused as exc:
        raise UserError(exc.reason, hint=exc.hint) from None


def roles_of(role: str, extra_roles: builtins.list[str] | None) -> frozenset[Role]:
    """A user's roles: ``role``, and for an LDAP user the others their groups gave."""
    return frozenset({Role(role), *(Role(r) for r in extra_roles or ())})


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"user name {name!r} is not allowed",
                        hint="Use 2 to 64 characters from a-z, 0-9, '.', '_' and '-'")


def checked_display_name(display_name: str | None) -> str | None:
    """A display name as kept: spaces trimmed, None when empty; refused when too long
    or holding control characters (a line break would break the page it is on)."""
    shown = (display_name or "").strip()
    if len(shown) > DISPLAY_NAME_LENGTH:
        raise UserError(f"the display name is longer than {DISPLAY_NAME_LENGTH} characters")
    if _CONTROL.search(shown):
        raise UserError("the display name holds a line break or another control character",
                        hint="Type it on one line")
    return shown or None


def checked_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(sorted(r.value for r in Role))
        raise UserError(f"unknown role {role!r}", hint=f"Choose one of: {choices}") from None


def _local(session: Session, name: str, hint: str) -> User:
    """The user ``name``, who must sign in with a local password: the directory keeps
    a directory user's password and roles (``hint`` says where to change them)."""
    user = _existing(session, name)
    if user.source != "local":
        raise UserError(f"user {name!r} signs in through the directory", hint=hint)
    return user


def _end_sessions(session: Session, user_id: int, at: datetime) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                 ConsoleSession.ended_at.is_(None))
                    .values(ended_at=at))


def _existing(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise _unknown(name)
    return user


def _unknown(name: str) -> UserError:
    return UserError(f"no such user: {name!r}", hint="See `switchboard users list`")


def _duplicate(name: str) -> UserError:
    return UserError(f"user {name!r} already exists",
                     hint="Choose another name, or issue the user a new token")

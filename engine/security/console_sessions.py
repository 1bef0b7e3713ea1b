"""Console sessions, kept in the store: the browser's cookie holds only a random token,
whose hash names the row. A session ends at sign-out, after ``idle`` without a request,
``absolute`` after sign-in, or as soon as its user is disabled, on every web process at
once, because each request reads the row."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from engine.security.audit import Clock, now_utc
from engine.security.identity import Principal
from engine.security.roles import Role
from engine.security.tokens import hash_token
from engine.store.models import ConsoleSession, User

SIGNED_IN = "signed_in"
SECOND_FACTOR = "second_factor"  # password accepted; the TOTP code is still to come
ENROL = "enrol"  # password accepted; an admin must enrol a second factor first
# Password (and any second factor) accepted, but an admin set that password: the user
# chooses their own before anything else.
CHANGE_PASSWORD = "change_password"
# last_seen_at is written at most this often, so reading pages is not a write each time.
TOUCH_RESOLUTION = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class ConsoleUser:
    """Who a live session belongs to, and how far their sign-in has got."""

    principal: Principal
    stage: str
    theme: str
    session_id: int
    display_name: str | None = None

    @property
    def shown_name(self) -> str:
        """Their display name where one is set, else their login name."""
        return self.display_name or self.principal.name

    @property
    def signed_in(self) -> bool:
        return self.stage == SIGNED_IN


class ConsoleSessions:
    def __init__(self, engine: Engine, policy: SessionPolicy | None = None,
                 clock: Clock = now_utc) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.policy = policy or SessionPolicy()
        self._clock = clock

    def start(self, user_id: int, roles: frozenset[Role], source: str, stage: str,
              address: str | None) -> str:
        """A new session; return its token, which only the browser keeps."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions.begin() as session:
            session.add(ConsoleSession(
                token_hash=hash_token(token), user_id=user_id,
                roles=sorted(r.value for r in roles), source=source, stage=stage,
                address=(address or "")[:64] or None, created_at=now, last_seen_at=now))
        return token

    def resolve(self, token: str | None) -> ConsoleUser | None:
        """The live session a cookie names, touched; None when there is none or it has
        ended, timed out or its user is disabled."""
        if not token or len(token) > 128:
            return None
        now = self._clock()
        with self._sessions.begin() as session:
            found = session.execute(
                select(ConsoleSession, User).join(User, ConsoleSession.user_id == User.id)
                .where(ConsoleSession.token_hash == hash_token(token))).one_or_none()
            if found is None:
                return None
            row, user = found
            if row.ended_at is not None:
                return None
            if (user.disabled or now - row.last_seen_at >= self.policy.idle
                    or now - row.created_at >= self.policy.absolute):
                row.ended_at = now
                return None
            if now - row.last_seen_at >= TOUCH_RESOLUTION:
                row.last_seen_at = now
            principal = Principal(user.name, frozenset(Role(r) for r in row.roles), row.source)
            return ConsoleUser(principal, row.stage, user.theme, row.id, user.display_name)

    def advance(self, session_id: int, stage: str) -> None:
        with self._sessions.begin() as session:
            session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id)
                            .values(stage=stage))

    def end(self, token: str | None) -> None:
        if not token:
            return
        with self._sessions.begin() as session:
            session.execute(update(ConsoleSession)
                            .where(ConsoleSession.token_hash == hash_token(token),
                                   ConsoleSession.ended_at.is_(None))
                            .values(ended_at=self._clock()))

    def end_all(self, user_id: int) -> None:
        """End every session of a user: on disable, a password or role change."""
        with self._sessions.begin() as session:
            session.execute(update(ConsoleSession)
                            .where(ConsoleSession.user_id == user_id,
                                   ConsoleSession.ended_at.is_(None))
                            .values(ended_at=self._clock()))

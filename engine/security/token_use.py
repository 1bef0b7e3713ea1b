"""When each API token was last used, written in batches off the request path.

Authenticating a token only reads: a write on every API call would, on SQLite, queue
each call for the store's one writer lock behind the journal's commits. A use is
remembered in memory instead, and a background flusher writes what it remembers once
per interval, in one transaction, and once more when the store is closed or the
process exits cleanly. A failed flush keeps the uses for the next one; it never
reaches a request.
"""

from __future__ import annotations

import atexit
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, bindparam, or_, update
from sqlalchemy.exc import SQLAlchemyError

from engine.store.models import ApiToken

log = logging.getLogger("switchboard.users")
_TOKENS: Table = ApiToken.__table__  # type: ignore[assignment]
# Conditional, so engines sharing a store write each token at most once a resolution.
_WRITE = (update(_TOKENS)
          .where(_TOKENS.c.id == bindparam("token_id"),
                 or_(_TOKENS.c.last_used_at.is_(None),
                     _TOKENS.c.last_used_at <= bindparam("stale_before")))
          .values(last_used_at=bindparam("used_at")))


class TokenUse:
    """Token uses remembered in memory and written by one background thread every
    ``resolution``; safe to call from many threads."""

    def __init__(self, engine: Engine, resolution: timedelta) -> None:
        self._engine = engine
        self._resolution = resolution
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None

    def note(self, token_id: int, used_at: datetime) -> None:
        """Remember a use; the flusher writes it within ``resolution``."""
        with self._lock:
            if token_id not in self._pending or self._pending[token_id] < used_at:
                self._pending[token_id] = used_at
            if self._flusher is None and not self._closed.is_set():
                self._flusher = threading.Thread(target=self._flush_forever,
                                                 name="token-use-flusher", daemon=True)
                self._flusher.start()
                atexit.register(self.close)

    def flush(self) -> None:
        """Write the remembered uses now; keep them for the next flush if the store
        cannot take them."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        rows: list[dict[str, Any]] = [
            {"token_id": token_id, "used_at": used_at,
             "stale_before": used_at - self._resolution}
            for token_id, used_at in pending.items()]
        try:
            with self._engine.begin() as connection:
                connection.execute(_WRITE, rows)
        except SQLAlchemyError:
            log.warning("token last-used times not written; kept for the next flush",
                        exc_info=True)
            for token_id, used_at in pending.items():
                self.note(token_id, used_at)

    def close(self) -> None:
        """Stop the flusher and write what it has not written yet."""
        self._closed.set()
        with self._lock:
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()
        self.flush()
        atexit.unregister(self.close)

    def _flush_forever(self) -> None:
        while not self._closed.wait(self._resolution.total_seconds()):
            self.flush()

"""A delivery worker's claims, kept alive while it sends: a thread renews the lease of
every claim the worker still holds, every quarter of the lease, so a destination slower
than the lease is not sent the same delivery by a second engine while the first is
still waiting for its answer. Only a worker that stops renewing (its process died, or
the store was out of reach for most of a lease) lets its claims lapse.

Before each send the worker asks ``holds``: a claim whose lease is more than half gone
(a renewal or two missed) may be taken over any moment, so the chain stops there
rather than race the engine that takes it over.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from engine.journal import now_utc
from engine.outbox import Outbox
from engine.store.availability import error_name

log = logging.getLogger("switchboard.delivery")


class ClaimLeases:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._lease: timedelta = outbox.lease
        self._expiry: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, token: str, claimed_at: datetime) -> None:
        """Keep renewing the claim ``token``, taken at ``claimed_at``."""
        with self._lock:
            if self._stop.is_set():
                return
            self._expiry[token] = claimed_at + self._lease
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_until_stopped,
                                                name="claim-leases", daemon=True)
                self._thread.start()

    def release(self, token: str) -> None:
        """The claim's outcomes are recorded: it needs no more renewing."""
        with self._lock:
            self._expiry.pop(token, None)

    def holds(self, token: str) -> bool:
        """Whether the claim is safely this worker's to send under, for now."""
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and now_utc() + self._lease / 2 < expiry

    def stop(self) -> None:
        """Renew nothing more: the claims lapse, as a dead process's would."""
        self._stop.set()
        with self._lock:
            self._expiry.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._lease.total_seconds() / 4):
            self.renew()

    def renew(self) -> None:
        with self._lock:
            tokens = list(self._expiry)
        if not tokens:
            return
        at = now_utc()
        try:
            held = self._outbox.renew(tokens, at)
        except Exception as error:  # the store is away: try again next time
            log.warning("delivery claims could not be renewed",
                        extra={"error": error_name(error)})
            return
        with self._lock:
            for token in tokens:
                if token not in self._expiry:
                    continue  # released meanwhile
                if token in held:
                    self._expiry[token] = at + self._lease
                else:  # nothing of it is in flight under it any more
                    del self._expiry[token]

"""Which of two versions of one FHIR resource is the newer, from what each says of
itself: meta.versionId when both are whole numbers, else meta.lastUpdated when both
carry one, else the one that arrived later (a FHIR server takes a PUT the same way).
The same versionId on both is the same version. Pure: the journal asks it about each
version posted under a ``Type/id`` it already holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# FHIR's id type, which meta.versionId is, holds at most 64 characters; the journal's
# column holds that many.
VERSION_ID_LENGTH = 64
_WHOLE_NUMBER = re.compile(r"[0-9]+")


class Order(StrEnum):
    NEWER = "newer"
    OLDER = "older"
    SAME = "same"


class DecidedBy(StrEnum):
    VERSION_ID = "versionId"
    LAST_UPDATED = "lastUpdated"
    ARRIVAL = "arrival"


@dataclass(frozen=True)
class Version:
    """What a resource says of its own version; either may be missing."""

    version_id: str | None = None
    last_updated: datetime | None = None
    """An aware instant, in UTC."""

    def named(self, decided_by: DecidedBy) -> str:
        """This version in a reason's words, by what told it apart."""
        if decided_by == DecidedBy.VERSION_ID and self.version_id is not None:
            return f"versionId {self.version_id}"
        if decided_by == DecidedBy.LAST_UPDATED and self.last_updated is not None:
            return f"lastUpdated {self.last_updated.isoformat()}"
        return "the version without a versionId or lastUpdated to compare"


@dataclass(frozen=True)
class Comparison:
    order: Order
    decided_by: DecidedBy


def version_of(document: Mapping[str, Any]) -> Version:
    """The version ``document`` (validated FHIR JSON) says it is."""
    meta = document.get("meta")
    if not isinstance(meta, Mapping):
        return Version()
    version_id = meta.get("versionId")
    return Version(version_id if isinstance(version_id, str) and version_id else None,
                   _instant(meta.get("lastUpdated")))


def _instant(value: Any) -> datetime | None:
    """A FHIR instant as an aware UTC datetime (fractions past microseconds dropped),
    or None when Python cannot hold it (a leap second): arrival then decides."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def compare(incoming: Version, newest: Version) -> Comparison:
    """How ``incoming``, which arrived after ``newest``, stands to it."""
    ours, theirs = incoming.version_id, newest.version_id
    if ours is not None and theirs is not None:
        if ours == theirs:
            return Comparison(Order.SAME, DecidedBy.VERSION_ID)
        if _WHOLE_NUMBER.fullmatch(ours) and _WHOLE_NUMBER.fullmatch(theirs):
            if int(ours) == int(theirs):  # "02" and "2"
                return Comparison(Order.SAME, DecidedBy.VERSION_ID)
            return Comparison(Order.NEWER if int(ours) > int(theirs) else Order.OLDER,
                              DecidedBy.VERSION_ID)
    if (incoming.last_updated is not None and newest.last_updated is not None
            and incoming.last_updated != newest.last_updated):
        return Comparison(
            Order.NEWER if incoming.last_updated > newest.last_updated else Order.OLDER,
            DecidedBy.LAST_UPDATED)
    return Comparison(Order.NEWER, DecidedBy.ARRIVAL)

"""A Bundle's entries in the making, and what each section's encoder shares.

Ids are deterministic, so a retried delivery carries the same ones, and each entry is
put at its id (``PUT Observation/<id>``) unless its encoder asks for a conditional
create (a Patient or party the receiver may know by a URI-system identifier):

- an entry of the message (an Observation, a Condition) is keyed by the message id and
  its place in the record (``result/3``);
- a party the message only names (a practitioner, an organization, a location, an
  application) is keyed by what identifies it (``Practitioner`` + authority + number),
  not by the message, so the same practitioner in another message gets the same id;
  and it is added once however often the message names it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

Json = dict[str, Any]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://switchboard.invalid/fhir/bundle")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))``, computed directly: a Bundle needs one per
    entry, and building UUID objects only to print them was a tenth of encoding's time."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Entries:
    """The Bundle's entries, each under a stable key."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.entries: list[Json] = []
        self._shared: dict[str, Json] = {}

    def url(self, key: str) -> str:
        return f"urn:uuid:{_uuid5_text(f'{self.message_id}/{key}')}"

    def uuid(self, key: str) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.message_id}/{key}")

    def add(self, key: str, resource: Json, request: Json | None = None) -> Json:
        """Add ``resource``; returns a Reference to it."""
        return self._append(self.url(key), resource, request)

    def add_shared(self, identity: str, resource: Json, request: Json | None = None) -> Json:
        """Add a party named by ``identity`` (its type and what identifies it), once;
        returns a Reference to it, the same in every message."""
        key = f"{resource['resourceType']}|{identity}"
        if key not in self._shared:
            url = f"urn:uuid:{_uuid5_text(key)}"
            self._shared[key] = self._append(url, resource, request)
        return dict(self._shared[key])

    def resource(self, reference: Json | None) -> Json | None:
        """The resource a Reference returned by :meth:`add` points at, for an encoder
        that adds to another's resource (a Condition to its Encounter's diagnoses)."""
        url = (reference or {}).get("reference")
        return next((entry["resource"] for entry in self.entries
                     if url and entry["fullUrl"] == url), None)

    def _append(self, url: str, resource: Json, request: Json | None) -> Json:
        if request is None:
            # Put at its deterministic id: a server creates it the first time and
            # replaces it with the same content on a retry, so nothing is duplicated.
            resource["id"] = url.removeprefix("urn:uuid:")
            request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return {"reference": url}


@dataclass
class Context:
    """What every section's encoder is given: the entries, the whole record, and
    References to the resources others point at (None when the record has none)."""

    entries: Entries
    record: Mapping[str, Any]
    subject: Json | None = None
    encounter: Json | None = None
    # References by role, for encoders that point at what another made: "sender"
    # (the sending facility's Organization), an order's ServiceRequest by placer id...
    made: dict[str, Json] = field(default_factory=dict)


def search_value(value: str) -> str:
    """A token for a FHIR search: its special characters escaped, then URL-encoded."""
    for special in ("\\", "|", ",", "$"):
        value = value.replace(special, "\\" + special)
    return quote(value, safe=":/")
